"""GRASP: parallel stochastic gradient-based planning for learned world models, in TorchRL."""

from torchrl_grasp.ops import collocation_loss, collocation_loss_reference
from torchrl_grasp.planners import CollocationPlanner, GradientPlanner, GRASPPlanner, PlanResult
from torchrl_grasp.world_models import TransitionModelEnv

__all__ = [
    "CollocationPlanner",
    "GRASPPlanner",
    "GradientPlanner",
    "PlanResult",
    "TransitionModelEnv",
    "collocation_loss",
    "collocation_loss_reference",
]
__version__ = "0.1.0"
