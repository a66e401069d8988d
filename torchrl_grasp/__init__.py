"""GRASP: parallel stochastic gradient-based planning for learned world models, in TorchRL."""

from torchrl_grasp.ops import collocation_loss, collocation_loss_reference
from torchrl_grasp.objectives import GoalObjective, RewardObjective
from torchrl_grasp.planners import (
    CEMSync,
    CollocationPlanner,
    GDSync,
    GradientPlanner,
    GRASPPlanner,
    ParallelGDSync,
    PlanResult,
)
from torchrl_grasp.policies import RecedingHorizonPolicy
from torchrl_grasp.world_models import TransitionModelEnv

__all__ = [
    "CEMSync",
    "CollocationPlanner",
    "GDSync",
    "GoalObjective",
    "RewardObjective",
    "GRASPPlanner",
    "GradientPlanner",
    "ParallelGDSync",
    "PlanResult",
    "RecedingHorizonPolicy",
    "TransitionModelEnv",
    "collocation_loss",
    "collocation_loss_reference",
]
__version__ = "0.1.0"
