"""Transitions for learning a world model: collected by a TorchRL collector, split by trajectory."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tensordict import NestedKey, TensorDictBase
from torch import Tensor
from torchrl.data import LazyTensorStorage, ReplayBuffer
from torchrl.envs import EnvBase

from torchrl_grasp.world_models.exploration import ExplorationConfig, HeldRandomActionPolicy

TRAJECTORY_KEY = ("collector", "traj_ids")


@dataclass(frozen=True)
class CollectionConfig:
    """How much data to collect, and how to explore.

    Args:
        num_frames (int): transitions to collect. Defaults to ``100_000``.
        frames_per_batch (int): transitions per collector batch (a multiple of the env's batch
            size). Defaults to ``2_000``.
        max_steps_per_trajectory (int): the collector resets an env after this many steps, so
            episodes start from fresh (random) states often. Defaults to ``100``.
        min_hold_steps (int): see :class:`HeldRandomActionPolicy`. Defaults to ``1``.
        max_hold_steps (int): see :class:`HeldRandomActionPolicy`. Defaults to ``20``.
        validation_fraction (float): the share of whole trajectories held out. Defaults to ``0.1``.
        exploration (ExplorationConfig, optional): a frozen dataclass whose ``make_policy`` gives the
            collector's policy (such as
            :class:`~torchrl_grasp.world_models.pusht_exploration.PushTExploration`); ``None`` for
            :class:`HeldRandomActionPolicy` with the hold steps above. Defaults to ``None``.

    Examples:
        >>> from torchrl.envs import GymEnv
        >>> config = CollectionConfig(num_frames=300, frames_per_batch=100, max_steps_per_trajectory=60)
        >>> buffer = collect_transitions(lambda: GymEnv("Pendulum-v1"), config)
        >>> ids = buffer[:]["collector", "traj_ids"]
        >>> len(buffer), ids.unique().tolist(), (ids == 0).sum().item()  # reset every 60 steps
        (300, [0, 1, 2, 3, 4], 60)
    """

    num_frames: int = 100_000
    frames_per_batch: int = 2_000
    max_steps_per_trajectory: int = 100
    min_hold_steps: int = 1
    max_hold_steps: int = 20
    validation_fraction: float = 0.1
    exploration: ExplorationConfig | None = None


def collect_transitions(
    make_env: Callable[[], EnvBase],
    config: CollectionConfig,
    *,
    seed: int = 0,
    state_keys: Sequence[NestedKey] = ("observation",),
    action_key: NestedKey = "action",
) -> ReplayBuffer:
    """Runs the exploration policy in the env with a TorchRL ``Collector``; returns the transitions.

    The policy is ``config.exploration``'s, or :class:`HeldRandomActionPolicy` without one.

    The env's own reset draws the start states (random starts cover the state space); the
    collector resets every ``config.max_steps_per_trajectory`` steps. The replay buffer holds
    ``[config.num_frames]`` transitions in collection order, each with the state entries, the
    action, the next state entries and the trajectory id ``("collector", "traj_ids")``.

    Args:
        make_env (callable): returns a TorchRL env, batched or not, with the state at ``state_keys``.
        config (CollectionConfig): how much, and how to explore.

    Keyword Args:
        seed (int): seeds the env and the policy. Defaults to ``0``.
        state_keys (sequence of NestedKey): the entries of the state. Defaults to ``("observation",)``.
        action_key (NestedKey): Defaults to ``"action"``.

    Examples:
        >>> from torchrl.envs import GymEnv
        >>> config = CollectionConfig(num_frames=200, frames_per_batch=100, max_steps_per_trajectory=50)
        >>> buffer = collect_transitions(lambda: GymEnv("Pendulum-v1"), config)
        >>> len(buffer), buffer[:]["next", "observation"].shape, int(buffer[:]["collector", "traj_ids"].max())
        (200, torch.Size([200, 3]), 3)
    """
    from torchrl.collectors import Collector  # here: importing it warns (torchrl's own deprecations)

    env = make_env()
    # Seed before the collector's first reset: seeding a stateful env (gymnasium) resets it, and a
    # reset after the collector read its first observation would make the first transitions wrong.
    env.set_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    action_spec = env.full_action_spec[action_key]
    action_spec = action_spec[(0,) * env.batch_dims] if env.batch_dims else action_spec
    if config.exploration is None:
        policy = HeldRandomActionPolicy(
            action_spec,
            min_hold_steps=config.min_hold_steps,
            max_hold_steps=config.max_hold_steps,
            action_key=action_key,
            generator=generator,
        )
    else:
        policy = config.exploration.make_policy(action_spec, action_key=action_key, generator=generator)
    collector = Collector(
        env,
        policy,
        frames_per_batch=config.frames_per_batch,
        total_frames=config.num_frames,
        max_frames_per_traj=config.max_steps_per_trajectory,
        auto_register_policy_transforms=False,
    )
    buffer = ReplayBuffer(storage=LazyTensorStorage(config.num_frames), batch_size=1)
    keys = [*state_keys, action_key, *[("next", key) for key in state_keys], TRAJECTORY_KEY]
    try:
        for batch in collector:
            # [*env_batch, T] -> [N]: each env's steps stay contiguous and in time order.
            buffer.extend(batch.select(*keys).reshape(-1))
    finally:
        collector.shutdown()
        if not env.is_closed:
            env.close()
    return buffer


@dataclass
class TransitionData:
    """Transitions as flat tensors, grouped by trajectory and in time order within each.

    Attributes:
        states (Tensor): ``[N, D]``.
        actions (Tensor): ``[N, A]``.
        next_states (Tensor): ``[N, D]``.
        trajectory_ids (Tensor): ``[N]``, sorted.

    Examples:
        >>> ids = torch.tensor([0, 0, 0, 1, 1])
        >>> states = torch.arange(6.0)[:, None]
        >>> data = TransitionData(states[:5], torch.ones(5, 1), states[1:], ids)
        >>> len(data), data.num_trajectories
        (5, 2)
        >>> start, actions, targets = data.windows(data.window_starts(2), 2)  # 2-step windows
        >>> start.flatten().tolist(), targets[..., 0].tolist()  # no window spans two trajectories
        ([0.0, 1.0, 3.0], [[1.0, 2.0], [2.0, 3.0], [4.0, 5.0]])
    """

    states: Tensor
    actions: Tensor
    next_states: Tensor
    trajectory_ids: Tensor

    @classmethod
    def from_tensordict(
        cls,
        data: TensorDictBase,
        *,
        state_keys: Sequence[NestedKey] = ("observation",),
        action_key: NestedKey = "action",
    ) -> TransitionData:
        """Reads flat transitions in collection order (as :func:`collect_transitions` stores them).

        A stable sort by trajectory id groups each trajectory and keeps its steps in order. The
        state is the ``state_keys`` entries concatenated, in that order.

        Examples:
            >>> from tensordict import TensorDict
            >>> states = torch.tensor([[0.0], [10.0], [1.0], [11.0]])  # two envs, interleaved
            >>> flat = TensorDict(
            ...     {"observation": states, "action": torch.zeros(4, 1), ("next", "observation"): states + 1,
            ...      ("collector", "traj_ids"): torch.tensor([0, 1, 0, 1])}, batch_size=[4])
            >>> data = TransitionData.from_tensordict(flat)
            >>> data.states.flatten().tolist(), data.trajectory_ids.tolist()
            ([0.0, 1.0, 10.0, 11.0], [0, 0, 1, 1])
        """
        order = torch.sort(data.get(TRAJECTORY_KEY), stable=True).indices
        data = data[order]
        def state(prefix: tuple) -> Tensor:
            return torch.cat([data.get((*prefix, *_as_tuple(key))).float() for key in state_keys], dim=-1)

        return cls(
            states=state(()),
            actions=data.get(action_key).float(),
            next_states=state(("next",)),
            trajectory_ids=data.get(TRAJECTORY_KEY),
        )

    def __len__(self) -> int:
        return self.states.shape[0]

    @property
    def num_trajectories(self) -> int:
        return int(self.trajectory_ids.unique().numel())

    def select(self, rows: Tensor) -> TransitionData:
        """The transitions at ``rows`` (a mask or sorted indices)."""
        return TransitionData(
            self.states[rows], self.actions[rows], self.next_states[rows], self.trajectory_ids[rows]
        )

    def window_starts(self, steps: int) -> Tensor:
        """The rows ``i`` whose transitions ``i, ..., i + steps - 1`` lie in one trajectory, ``[W]``.

        Examples:
            >>> import torch
            >>> ids = torch.tensor([0, 0, 0, 1, 1, 2])
            >>> data = TransitionData(torch.zeros(6, 1), torch.zeros(6, 1), torch.zeros(6, 1), ids)
            >>> data.window_starts(2)
            tensor([0, 1, 3])
        """
        if steps > len(self):
            return torch.zeros(0, dtype=torch.long)
        last = torch.arange(steps - 1, len(self))
        return torch.nonzero(self.trajectory_ids[last] == self.trajectory_ids[: len(last)]).squeeze(-1)

    def windows(self, starts: Tensor, steps: int) -> tuple[Tensor, Tensor, Tensor]:
        """Windows of ``steps`` transitions from ``starts`` ``[W]``: start states ``[W, D]``, actions
        ``[W, steps, A]`` and the real states after them ``[W, steps, D]``."""
        rows = starts[:, None] + torch.arange(steps)
        return self.states[starts], self.actions[rows], self.next_states[rows]

    def concat(self, other: TransitionData) -> TransitionData:
        """Both sets of transitions, ``other``'s trajectories renumbered after this one's.

        Examples:
            >>> one = TransitionData(torch.zeros(2, 1), torch.zeros(2, 1), torch.ones(2, 1), torch.tensor([0, 0]))
            >>> both = one.concat(one)
            >>> len(both), both.trajectory_ids.tolist()
            (4, [0, 0, 1, 1])
        """
        offset = int(self.trajectory_ids.max()) + 1 if len(self) else 0
        return TransitionData(
            torch.cat([self.states, other.states]),
            torch.cat([self.actions, other.actions]),
            torch.cat([self.next_states, other.next_states]),
            torch.cat([self.trajectory_ids, other.trajectory_ids - int(other.trajectory_ids.min()) + offset]),
        )

    def digest(self) -> str:
        """A 16-hex-digit hash of the transitions' values: what names a model fitted on them.

        Examples:
            >>> data = TransitionData(torch.zeros(2, 1), torch.zeros(2, 1), torch.ones(2, 1), torch.tensor([0, 0]))
            >>> len(data.digest()), data.digest() == data.digest(), data.digest() == data.concat(data).digest()
            (16, True, False)
        """
        hasher = hashlib.sha256()
        for tensor in (self.states, self.actions, self.next_states, self.trajectory_ids):
            hasher.update(str(tuple(tensor.shape)).encode())
            hasher.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return hasher.hexdigest()[:16]

    def split_trajectories(
        self, validation_fraction: float, generator: torch.Generator
    ) -> tuple[TransitionData, TransitionData]:
        """Holds out a random ``validation_fraction`` of whole trajectories: ``(train, validation)``.

        Examples:
            >>> import torch
            >>> ids = torch.arange(10).repeat_interleave(3)
            >>> data = TransitionData(torch.zeros(30, 1), torch.zeros(30, 1), torch.zeros(30, 1), ids)
            >>> train, validation = data.split_trajectories(0.2, torch.Generator().manual_seed(0))
            >>> len(train), len(validation), validation.num_trajectories
            (24, 6, 2)
        """
        ids = self.trajectory_ids.unique()
        count = max(1, round(validation_fraction * len(ids)))
        held_out = ids[torch.randperm(len(ids), generator=generator)[:count]]
        is_validation = torch.isin(self.trajectory_ids, held_out)
        return self.select(~is_validation), self.select(is_validation)


def _as_tuple(key: NestedKey) -> tuple:
    return key if isinstance(key, tuple) else (key,)
