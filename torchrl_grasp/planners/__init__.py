"""Planners: GRASP, as TorchRL MPC planners."""

from torchrl_grasp.planners._common import PlanResult
from torchrl_grasp.planners.grasp import GRASPPlanner

__all__ = ["GRASPPlanner", "PlanResult"]
