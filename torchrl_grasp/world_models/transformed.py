"""A model-based env behind TorchRL transforms: the world model to plan on, and the reward's transform."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor
from torchrl.envs import (
    EnvBase,
    InitTracker,
    RewardScaling,
    RewardSum,
    StepCounter,
    TensorDictPrimer,
    TransformedEnv,
)
from torchrl.envs.model_based import ModelBasedEnvBase

#: Transforms that change nothing a plan is scored by: the planners ignore them.
NEUTRAL_TRANSFORMS = (StepCounter, InitTracker, TensorDictPrimer, RewardSum)

RewardTransform = Callable[[Tensor], Tensor]


def model_based_env(env: EnvBase) -> tuple[ModelBasedEnvBase, RewardTransform | None]:
    """The model-based env a planner plans on, and what ``env``'s transforms do to its reward.

    A :class:`~torchrl.envs.TransformedEnv` around a ``ModelBasedEnvBase`` is accepted: the
    planners call the base env's ``world_model``, apply :class:`~torchrl.envs.RewardScaling` to
    the reward it predicts, and ignore the transforms that change nothing a plan is scored by
    (:data:`NEUTRAL_TRANSFORMS`: step counters, init trackers, primers, reward sums). Any other
    transform (an observation transform, say) changes what the model sees in a way a plan on the
    base model cannot follow, and is refused by name.

    Examples:
        >>> import torch
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import TransitionModelEnv
        >>> model_env = TransitionModelEnv(lambda s, a: s + a, Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> base, reward = model_based_env(TransformedEnv(model_env, RewardScaling(loc=1.0, scale=2.0)))
        >>> base is model_env, reward(torch.tensor([0.5]))
        (True, tensor([2.]))
        >>> from torchrl.envs import ObservationNorm
        >>> model_based_env(TransformedEnv(model_env, ObservationNorm(loc=0.0, scale=2.0, in_keys=["observation"])))
        Traceback (most recent call last):
        ValueError: The planners plan on the base env's world model, and ObservationNorm changes what that model sees or predicts; plan on env.base_env (states in its units), or leave the transform out. Applied: RewardScaling; ignored: StepCounter, InitTracker, TensorDictPrimer, RewardSum.
    """
    if isinstance(env, ModelBasedEnvBase):
        return env, None
    base = env.base_env if isinstance(env, TransformedEnv) else env
    if not isinstance(base, ModelBasedEnvBase):
        raise ValueError(
            f"env must be a ModelBasedEnvBase with a world_model, got {type(env).__name__}: the planners "
            "differentiate a world model, not a simulator. Wrap a differentiable model, "
            "TransitionModelEnv(model, state_spec, action_spec), or learn one "
            "(torchrl_grasp.world_models.learned.load_or_train)."
        )
    scalings = []
    for transform in _leaves(env.transform):
        if isinstance(transform, RewardScaling):
            scalings.append(transform)
        elif not isinstance(transform, NEUTRAL_TRANSFORMS):
            raise ValueError(
                f"The planners plan on the base env's world model, and {type(transform).__name__} changes what "
                "that model sees or predicts; plan on env.base_env (states in its units), or leave the transform "
                "out. Applied: RewardScaling; ignored: StepCounter, InitTracker, TensorDictPrimer, RewardSum."
            )
    if not scalings:
        return base, None

    def reward(value: Tensor) -> Tensor:
        for scaling in scalings:  # in the order the env applies them
            if bool(scaling.standard_normal):
                value = (value - scaling.loc) / scaling.scale
            else:
                value = value * scaling.scale + scaling.loc
        return value

    return base, reward


def _leaves(transform):
    """The transforms of a (nested) ``Compose``, in order."""
    children = getattr(transform, "transforms", None)
    if children is None:
        yield transform
        return
    for child in children:
        yield from _leaves(child)
