"""Goal-conditioned planners as TorchRL MPC planners: GRASP and its baselines."""

from torchrl_grasp.planners.collocation import CollocationPlanner
from torchrl_grasp.planners.gradient import GradientPlanner
from torchrl_grasp.planners.grasp import GRASPPlanner
from torchrl_grasp.planners.problem import PlanningProblem, read_problem
from torchrl_grasp.planners.result import PlanResult
from torchrl_grasp.planners.sampling import GoalCEMPlanner, GoalICEMPlanner, GoalMPPIPlanner, Population
from torchrl_grasp.planners.schedules import SyncPhaseDecay
from torchrl_grasp.planners.state_steps import AdamStates, NewtonStates
from torchrl_grasp.planners.syncs import CEMSync, GDSync, ParallelGDSync

__all__ = [
    "AdamStates",
    "CEMSync",
    "CollocationPlanner",
    "GDSync",
    "GoalCEMPlanner",
    "GoalICEMPlanner",
    "GoalMPPIPlanner",
    "GRASPPlanner",
    "GradientPlanner",
    "NewtonStates",
    "ParallelGDSync",
    "PlanResult",
    "PlanningProblem",
    "Population",
    "read_problem",
    "SyncPhaseDecay",
]
