"""Pixel episodes of a point-mass task: positions and actions kept, images rendered per minibatch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tensordict import TensorDict
from torch import Tensor

from torchrl_grasp.dreamer.pixels import PointMassPixels
from torchrl_grasp.envs.point_mass import PointMassGoalEnv


def distance_reward(positions: Tensor, target: tuple[float, float]) -> Tensor:
    """Minus the distance to ``target``, ``[*B, 1]``: the reward the pixel world model learns.

    Examples:
        >>> distance_reward(torch.tensor([[0.0, 0.0], [0.5, -0.5]]), (0.5, -0.5))
        tensor([[-0.7071],
                [-0.0000]])
    """
    return -(positions - torch.tensor(target, dtype=positions.dtype)).norm(dim=-1, keepdim=True)


@dataclass
class PixelEpisodes:
    """Episodes under held random actions, as Dreamer's sequences: a reset step, then the steps.

    Step ``0`` of an episode is the reset: action zero, next position the start. Step ``t > 0``
    takes action ``a_{t-1}`` to position ``p_t``. So a window of steps from the zero latent
    starts as TorchRL's Dreamer starts an episode (see :meth:`windows`).

    Attributes:
        actions (Tensor): ``[E, L + 1, 2]``, row 0 of each episode zero.
        positions (Tensor): ``[E, L + 1, 2]``, the position after each step's action.

    Examples:
        >>> import torch
        >>> from torchrl_grasp.dreamer import PointMassPixels
        >>> from torchrl_grasp.envs import WallDoorEnv
        >>> data = PixelEpisodes.collect(WallDoorEnv(), 8, 20, generator=torch.Generator().manual_seed(0))
        >>> train, held_out = data.split(2)
        >>> len(train.actions), len(held_out.actions)
        (6, 2)
        >>> batch = train.windows(4, 5, PointMassPixels(WallDoorEnv()), (0.5, -0.5), (16, 64), generator=torch.Generator())
        >>> batch.batch_size, batch["next", "pixels"].shape, batch["next", "reward"].shape
        (torch.Size([4, 5]), torch.Size([4, 5, 3, 64, 64]), torch.Size([4, 5, 1]))
    """

    actions: Tensor
    positions: Tensor

    @classmethod
    def collect(
        cls,
        task: PointMassGoalEnv,
        episodes: int,
        steps: int,
        *,
        max_hold_steps: int = 10,
        generator: torch.Generator,
    ) -> PixelEpisodes:
        """``episodes`` episodes of ``steps`` steps from uniform free starts, all run at once with ``task.dynamics``.

        Actions are uniform in ``[-1, 1]^2``, each held for 1 to ``max_hold_steps`` steps.

        Examples:
            >>> import torch
            >>> from torchrl_grasp.envs import WallDoorEnv
            >>> data = PixelEpisodes.collect(WallDoorEnv(), 4, 10, generator=torch.Generator().manual_seed(0))
            >>> data.actions.shape, data.positions.shape, bool(data.actions[:, 0].eq(0).all())
            (torch.Size([4, 11, 2]), torch.Size([4, 11, 2]), True)
        """
        rng = np.random.default_rng(int(torch.randint(2**62, (), generator=generator)))
        sides = rng.integers(2, size=episodes)
        position = np.empty((episodes, 2))
        for side in (0, 1):
            position[sides == side] = task.sample_free_points(rng, int((sides == side).sum()), side)
        actions = np.zeros((episodes, steps + 1, 2))
        positions = np.zeros((episodes, steps + 1, 2))
        positions[:, 0] = position
        held, left = np.zeros((episodes, 2)), np.zeros(episodes, dtype=int)
        for t in range(1, steps + 1):
            fresh = left <= 0
            held[fresh] = rng.uniform(-1.0, 1.0, size=(int(fresh.sum()), 2))
            left[fresh] = rng.integers(1, max_hold_steps + 1, size=int(fresh.sum()))
            left -= 1
            actions[:, t] = held
            positions[:, t] = position = task.dynamics(position, held)
        return cls(torch.as_tensor(actions, dtype=torch.float32), torch.as_tensor(positions, dtype=torch.float32))

    def split(self, held_out: int) -> tuple[PixelEpisodes, PixelEpisodes]:
        """The first ``len - held_out`` episodes and the last ``held_out``."""
        cut = len(self.actions) - held_out
        return (
            PixelEpisodes(self.actions[:cut], self.positions[:cut]),
            PixelEpisodes(self.actions[cut:], self.positions[cut:]),
        )

    def windows(
        self,
        count: int,
        length: int,
        render: PointMassPixels,
        reward_target: tuple[float, float],
        latent_dims: tuple[int, int],
        *,
        generator: torch.Generator,
    ) -> TensorDict:
        """``count`` random windows of ``length`` steps, as the ``[count, length]`` tensordict Dreamer trains on.

        Keys: ``state`` and ``belief`` (zeros: every window starts from the zero latent),
        ``action``, and under ``"next"``: ``pixels``, ``reward`` (:func:`distance_reward`) and
        ``position``. Windows start anywhere, so the posterior learns to place the latent from
        the image alone, as it must for a goal image.
        """
        episodes, steps = self.actions.shape[:2]
        rows = torch.randint(episodes, (count,), generator=generator)
        starts = torch.randint(steps - length + 1, (count,), generator=generator)
        index = starts[:, None] + torch.arange(length)
        positions = self.positions[rows[:, None], index]
        state_dim, belief_dim = latent_dims
        return TensorDict(
            state=self.actions.new_zeros(count, length, state_dim),
            belief=self.actions.new_zeros(count, length, belief_dim),
            action=self.actions[rows[:, None], index],
            next=TensorDict(
                pixels=render(positions),
                reward=distance_reward(positions, reward_target),
                position=positions,
                batch_size=[count, length],
            ),
            batch_size=[count, length],
        )
