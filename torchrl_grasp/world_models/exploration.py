"""A temporally-correlated random policy that explores a state space, walls and corners included."""

from __future__ import annotations

from typing import Protocol

import torch
from tensordict import NestedKey, TensorDictBase, unravel_key
from tensordict.nn import TensorDictModuleBase
from torch import Tensor
from torchrl.data import TensorSpec


class ExplorationConfig(Protocol):
    """How a :class:`~torchrl_grasp.world_models.data.CollectionConfig` names another exploration policy.

    A frozen dataclass (so that its fields are part of the model's cache name) with one method.

    Examples:
        >>> from dataclasses import dataclass
        >>> from torchrl.envs import GymEnv
        >>> from torchrl_grasp.world_models.data import CollectionConfig, collect_transitions
        >>> @dataclass(frozen=True)
        ... class FullThrottle:  # always the largest action
        ...     def make_policy(self, action_spec, *, action_key, generator):
        ...         high = action_spec.space.high
        ...         return lambda td: td.set(action_key, high.expand(*td.batch_size, *high.shape).clone())
        >>> config = CollectionConfig(num_frames=50, frames_per_batch=50, exploration=FullThrottle())
        >>> actions = collect_transitions(lambda: GymEnv("Pendulum-v1"), config)[:]["action"]
        >>> actions.shape, actions.unique().tolist()
        (torch.Size([50, 1]), [2.0])
    """

    def make_policy(
        self, action_spec: TensorSpec, *, action_key: NestedKey, generator: torch.Generator
    ) -> TensorDictModuleBase:
        """The collector's policy for an env with this (unbatched) action spec, seeded from ``generator``."""


class HeldRandomActionPolicy(TensorDictModuleBase):
    """Draws a uniform random action and holds it for a random number of steps, per batch element.

    Held actions travel far and push into walls and contacts for many steps in a row, where
    a fresh random action at every step would jitter in place. Each batch element draws its
    action uniformly within the action spec's bounds and its hold length uniformly in
    ``[min_hold_steps, max_hold_steps]``; both restart whenever the batch shape changes.
    Usable as a collector's policy (it reads nothing but the batch shape).

    Args:
        action_spec (TensorSpec): a bounded spec, without the env's batch dimensions.

    Keyword Args:
        min_hold_steps (int): Defaults to ``1``.
        max_hold_steps (int): Defaults to ``20``.
        action_key (NestedKey): where the action is written. Defaults to ``"action"``.
        generator (torch.Generator, optional): the only source of randomness; defaults to a new
            generator seeded with 0.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded
        >>> policy = HeldRandomActionPolicy(Bounded(-1.0, 1.0, (2,)), min_hold_steps=3, max_hold_steps=3)
        >>> actions = [policy(TensorDict(batch_size=[4]))["action"] for _ in range(6)]
        >>> torch.equal(actions[0], actions[2]), torch.equal(actions[2], actions[3])
        (True, False)
        >>> bool(actions[0].abs().max() <= 1)
        True
    """

    def __init__(
        self,
        action_spec: TensorSpec,
        *,
        min_hold_steps: int = 1,
        max_hold_steps: int = 20,
        action_key: NestedKey = "action",
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if not 1 <= min_hold_steps <= max_hold_steps:
            raise ValueError(
                f"Need 1 <= min_hold_steps <= max_hold_steps, got {min_hold_steps}, {max_hold_steps}."
            )
        space = getattr(action_spec, "space", None)
        if not hasattr(space, "low"):
            raise ValueError(
                f"HeldRandomActionPolicy needs a bounded action spec, got {type(action_spec).__name__}."
            )
        self.low, self.high = space.low.clone(), space.high.clone()
        self.min_hold_steps, self.max_hold_steps = min_hold_steps, max_hold_steps
        self.action_key = unravel_key(action_key)
        self.in_keys, self.out_keys = [], [self.action_key]
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self._action: Tensor | None = None
        self._steps_left: Tensor | None = None

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        batch_shape = tensordict.batch_size
        if self._action is None or self._steps_left.shape != batch_shape:
            self._action = torch.zeros(*batch_shape, *self.low.shape, dtype=self.low.dtype)
            self._steps_left = torch.zeros(batch_shape, dtype=torch.long)
        expired = self._steps_left <= 0
        fresh = self.low + (self.high - self.low) * torch.rand(self._action.shape, generator=self.generator)
        holds = torch.randint(
            self.min_hold_steps, self.max_hold_steps + 1, batch_shape, generator=self.generator
        )
        mask = expired.reshape(*batch_shape, *[1] * self.low.ndim)
        self._action = torch.where(mask, fresh, self._action)
        self._steps_left = torch.where(expired, holds, self._steps_left) - 1
        return tensordict.set(self.action_key, self._action.clone().to(tensordict.device or self.low.device))
