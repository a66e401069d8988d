"""Goal-conditioned planners as TorchRL MPC planners: GRASP and its baselines."""

from torchrl_grasp.planners._common import PlanResult
from torchrl_grasp.planners.collocation import CollocationPlanner
from torchrl_grasp.planners.gradient import GradientPlanner
from torchrl_grasp.planners.grasp import GRASPPlanner
from torchrl_grasp.planners.sampling import GoalCEMPlanner, GoalMPPIPlanner

__all__ = [
    "CollocationPlanner",
    "GoalCEMPlanner",
    "GoalMPPIPlanner",
    "GRASPPlanner",
    "GradientPlanner",
    "PlanResult",
]
