"""GRASP: parallel stochastic gradient-based planning for learned world models, in TorchRL."""

from torchrl_grasp.ops import collocation_loss, collocation_loss_reference
from torchrl_grasp.planners import GRASPPlanner, PlanResult
from torchrl_grasp.world_models import TransitionModelEnv

__all__ = ["GRASPPlanner", "PlanResult", "TransitionModelEnv", "collocation_loss", "collocation_loss_reference"]
__version__ = "0.1.0"
