"""Exploration for a Push-T world model: the scripted pusher as a TorchRL collector policy.

Random actions, held or not, rarely touch Push-T's block, so a model trained on them learns an
agent that moves and a block that stays put. :class:`PushTExploration` makes the collector run
:class:`~torchrl_grasp.envs.pusht_pushing.BlockPushingPolicy`, which pushes the block about half
of the time, the policy whose demonstrations also define the benchmark's Push-T tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tensordict import NestedKey, TensorDictBase, unravel_key
from tensordict.nn import TensorDictModuleBase
from torchrl.data import TensorSpec

from torchrl_grasp.envs.pusht_coordinates import NORMALIZED_SIZE, physical_state
from torchrl_grasp.envs.pusht_pushing import BlockPushingPolicy


class PushTExplorationPolicy(TensorDictModuleBase):
    """:class:`BlockPushingPolicy` as a TorchRL policy: reads the observation, writes the action.

    The observation may be the physical state ``[*B, 7]`` or its normalised form ``[*B, 8]``
    (``PushTState-v0``'s ``observation_format``); the two are told apart by their size.

    Args:
        pushing (BlockPushingPolicy): the scripted policy, with its random generator.

    Keyword Args:
        observation_key (NestedKey): Defaults to ``"observation"``.
        action_key (NestedKey): Defaults to ``"action"``.

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl_grasp.envs.pusht_coordinates import normalize_state
        >>> state = np.array([[100.0, 100.0, 300.0, 300.0, 0.0, 0.0, 0.0]] * 3)
        >>> policy = PushTExplorationPolicy(BlockPushingPolicy(0, push_probability=1.0, action_noise_std=0.0))
        >>> normalized = torch.as_tensor(normalize_state(state), dtype=torch.float32)
        >>> policy(TensorDict(observation=normalized, batch_size=[3]))["action"]
        tensor([[1., 1.],
                [1., 1.],
                [1., 1.]])
    """

    def __init__(
        self,
        pushing: BlockPushingPolicy,
        *,
        observation_key: NestedKey = "observation",
        action_key: NestedKey = "action",
    ):
        super().__init__()
        self.pushing = pushing
        self.observation_key, self.action_key = unravel_key(observation_key), unravel_key(action_key)
        self.in_keys, self.out_keys = [self.observation_key], [self.action_key]

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        observation = tensordict.get(self.observation_key)
        states = observation.detach().cpu().double().numpy()
        if states.shape[-1] == NORMALIZED_SIZE:
            states = physical_state(states)
        action = torch.as_tensor(self.pushing(states), device=observation.device)
        return tensordict.set(self.action_key, action)


@dataclass(frozen=True)
class PushTExploration:
    """A :class:`~torchrl_grasp.world_models.data.CollectionConfig` ``exploration``: collect with
    :class:`BlockPushingPolicy` (its arguments, with its defaults).

    Args:
        push_probability (float): Defaults to ``0.5``.
        min_hold_steps (int): Defaults to ``3``.
        max_hold_steps (int): Defaults to ``12``.
        action_noise_std (float): Defaults to ``0.2``.

    Examples:
        >>> from torchrl.data import Bounded
        >>> policy = PushTExploration().make_policy(Bounded(-1.0, 1.0, (2,)), generator=torch.Generator())
        >>> type(policy).__name__, policy.pushing.push_probability
        ('PushTExplorationPolicy', 0.5)
    """

    push_probability: float = 0.5
    min_hold_steps: int = 3
    max_hold_steps: int = 12
    action_noise_std: float = 0.2

    def make_policy(
        self, action_spec: TensorSpec, *, action_key: NestedKey = "action", generator: torch.Generator
    ) -> PushTExplorationPolicy:
        """The collector's policy; its numpy generator is seeded from ``generator``.

        ``action_spec`` is the env's ``[-1, 1]^2``, which the policy keeps to by construction.
        """
        seed = int(torch.randint(2**62, (1,), generator=generator))
        pushing = BlockPushingPolicy(
            np.random.default_rng(seed),
            push_probability=self.push_probability,
            min_hold_steps=self.min_hold_steps,
            max_hold_steps=self.max_hold_steps,
            action_noise_std=self.action_noise_std,
        )
        return PushTExplorationPolicy(pushing, action_key=action_key)
