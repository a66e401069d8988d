"""World models for the planners: adapters, and learned models trained on the package's envs."""

from torchrl_grasp.world_models.env import TransitionModelEnv
from torchrl_grasp.world_models.learned import (
    OBSTACLENAV_MODEL,
    PUSHT_MODEL,
    WALLDOOR_MODEL,
    LearnedWorldModel,
    ModelConfig,
    fit_world_model,
    goal_env_model,
    load_or_train,
    model_env,
    point_mass_model,
    pusht_model,
    quick_model,
)
from torchrl_grasp.world_models.mlp import NetworkConfig, ResidualMLP
from torchrl_grasp.world_models.pusht_exploration import PushTExploration
from torchrl_grasp.world_models.step import WorldModelStep, infer_state_keys
from torchrl_grasp.world_models.validation import ValidationReport, trajectory_open_loop_errors, validate

__all__ = [
    "OBSTACLENAV_MODEL",
    "PUSHT_MODEL",
    "WALLDOOR_MODEL",
    "LearnedWorldModel",
    "ModelConfig",
    "NetworkConfig",
    "PushTExploration",
    "ResidualMLP",
    "TransitionModelEnv",
    "ValidationReport",
    "WorldModelStep",
    "fit_world_model",
    "goal_env_model",
    "infer_state_keys",
    "load_or_train",
    "model_env",
    "point_mass_model",
    "pusht_model",
    "quick_model",
    "trajectory_open_loop_errors",
    "validate",
]
