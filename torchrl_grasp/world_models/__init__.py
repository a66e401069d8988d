"""Adapters that turn world models into what the planners take."""

from torchrl_grasp.world_models.env import TransitionModelEnv
from torchrl_grasp.world_models.step import WorldModelStep, infer_state_keys

__all__ = ["TransitionModelEnv", "WorldModelStep", "infer_state_keys"]
