"""Smooth analytic world models: known, differentiable dynamics for tests, demos and sanity checks."""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torch import Tensor, nn


class SmoothWallDoor(nn.Module):
    r"""A point mass in the plane with a wall at ``x = 0`` and a door in it, smooth everywhere.

    ``s' = s + dt * a * gate(s)`` where the gate damps the x-velocity near the wall outside the door:

    .. math::

        \text{gate}_x(s) = 1 - \sigma\big((|y| - w_d) / \tau\big)\, \exp\!\big(-(x / w_w)^2\big)

    so the straight line between two points on opposite sides of the wall (away from the
    door) is blocked, and a plan must detour through the door. Actions are velocities.

    Args:
        dt (float): step length. Defaults to ``0.05``.
        door_half_width (float): :math:`w_d`. Defaults to ``0.15``.
        wall_half_width (float): :math:`w_w`. Defaults to ``0.08``.
        sharpness (float): :math:`\tau`. Defaults to ``0.03``.

    Examples:
        >>> import torch
        >>> model = SmoothWallDoor()
        >>> through_door = model(torch.tensor([[-0.01, 0.0]]), torch.tensor([[1.0, 0.0]]))
        >>> into_wall = model(torch.tensor([[-0.01, 0.5]]), torch.tensor([[1.0, 0.0]]))
        >>> bool(through_door[0, 0] > 0.03), bool(into_wall[0, 0] < -0.009)
        (True, True)
    """

    def __init__(self, dt: float = 0.05, door_half_width: float = 0.15, wall_half_width: float = 0.08, sharpness: float = 0.03):
        super().__init__()
        self.dt, self.door_half_width, self.wall_half_width, self.sharpness = dt, door_half_width, wall_half_width, sharpness

    def forward(self, state: Tensor, action: Tensor) -> Tensor:
        x, y = state[..., 0], state[..., 1]
        outside_door = torch.sigmoid((y.abs() - self.door_half_width) / self.sharpness)
        in_wall = torch.exp(-((x / self.wall_half_width) ** 2))
        gate = torch.stack([1 - outside_door * in_wall, torch.ones_like(x)], dim=-1)
        return state + self.dt * action * gate


def wall_crossing_pairs(count: int, seed: int = 1) -> TensorDict:
    """Start (left of the wall) and goal (right of it) pairs for :class:`SmoothWallDoor`, ``[count]``.

    Heights are drawn in ``0.3 <= |y| <= 0.8``, away from the door, so most straight lines are blocked.

    Examples:
        >>> pairs = wall_crossing_pairs(4)
        >>> pairs.batch_size, bool((pairs["observation"][:, 0] < 0).all() and (pairs["goal"][:, 0] > 0).all())
        (torch.Size([4]), True)
    """
    gen = torch.Generator().manual_seed(seed)
    heights = torch.rand(count, 2, generator=gen) * 0.5 + 0.3
    sign = torch.where(torch.rand(count, 2, generator=gen) > 0.5, 1.0, -1.0)
    start = torch.stack([-0.5 - 0.2 * torch.rand(count, generator=gen), heights[:, 0] * sign[:, 0]], -1)
    goal = torch.stack([0.5 + 0.2 * torch.rand(count, generator=gen), heights[:, 1] * sign[:, 1]], -1)
    return TensorDict(observation=start, goal=goal, batch_size=[count])
