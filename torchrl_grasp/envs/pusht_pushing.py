"""A scripted policy that pushes Push-T's block: what random actions, which rarely touch it, do not."""

from __future__ import annotations

import numpy as np

from torchrl_grasp.envs.pusht_coordinates import ARENA_SIZE, T_RECTANGLES, rotate


def points_in_t(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` points drawn uniformly over the T's area, in its body frame (pixels), ``[count, 2]``.

    Examples:
        >>> points = points_in_t(np.random.default_rng(0), 1000)
        >>> bool((points[:, 1] >= 0).all() and (points[:, 1] <= 120).all())
        True
        >>> bool((np.abs(points[points[:, 1] > 30, 0]) <= 15).all())  # below the bar, only the stem
        True
    """
    low, high = T_RECTANGLES[:, :2], T_RECTANGLES[:, 2:]
    areas = (high - low).prod(-1)
    which = rng.choice(len(areas), size=count, p=areas / areas.sum())
    return low[which] + (high[which] - low[which]) * rng.random((count, 2))


class BlockPushingPolicy:
    """Pushes the T, and walks around it: the agent heads for a target point held for a few steps.

    For each batch element the policy holds a target for between ``min_hold_steps`` and
    ``max_hold_steps`` steps: with probability ``push_probability`` a point drawn uniformly over
    the T's area, which moves with the block, otherwise a point drawn uniformly in the arena
    (``[margin, 512 - margin]^2``). The action heads the agent's PD target at it,
    ``clip((target - agent) / max_target_offset, -1, 1)``, plus Gaussian noise of std
    ``action_noise_std``, clipped again. The agent cannot reach a point inside the block, so once it
    touches the T it keeps pushing it: the block slides and turns, depending on the point it aims
    at; the arena targets bring the agent to other sides of the block.

    Args:
        rng (np.random.Generator, int or None): the only source of randomness, or a seed for one.

    Keyword Args:
        push_probability (float): the share of targets inside the T. Defaults to ``0.5``.
        min_hold_steps (int): Defaults to ``3``.
        max_hold_steps (int): Defaults to ``12``.
        action_noise_std (float): Defaults to ``0.2``.
        max_target_offset (float): the env's PD target distance for a full action, pixels.
            Defaults to ``50.0`` (``PushTStateEnv``'s).
        margin (float): arena targets keep this far from the edges, pixels. Defaults to ``50.0``.

    Examples:
        >>> policy = BlockPushingPolicy(0, push_probability=1.0, action_noise_std=0.0)
        >>> state = np.array([100.0, 100.0, 300.0, 300.0, 0.0, 0.0, 0.0])  # the T below and to the right
        >>> policy(state).tolist()
        [1.0, 1.0]
        >>> policy(np.stack([state, state])).shape  # any batch shape, [*B, 7] -> [*B, 2]
        (2, 2)
    """

    def __init__(
        self,
        rng: np.random.Generator | int | None = None,
        *,
        push_probability: float = 0.5,
        min_hold_steps: int = 3,
        max_hold_steps: int = 12,
        action_noise_std: float = 0.2,
        max_target_offset: float = 50.0,
        margin: float = 50.0,
    ):
        if not 1 <= min_hold_steps <= max_hold_steps:
            raise ValueError(
                f"Need 1 <= min_hold_steps <= max_hold_steps, got {min_hold_steps}, {max_hold_steps}."
            )
        if not 0.0 <= push_probability <= 1.0:
            raise ValueError(f"push_probability must lie in [0, 1], got {push_probability}.")
        self.rng = np.random.default_rng(rng)
        self.push_probability = float(push_probability)
        self.min_hold_steps, self.max_hold_steps = min_hold_steps, max_hold_steps
        self.action_noise_std = float(action_noise_std)
        self.max_target_offset = float(max_target_offset)
        self.margin = float(margin)
        self._targets = np.zeros((0, 2))  # in the block's frame where _pushing, else in the arena's
        self._pushing = np.zeros(0, dtype=bool)
        self._steps_left = np.zeros(0, dtype=np.int64)

    def _draw_targets(self, rows: np.ndarray) -> None:
        count = len(rows)
        pushing = self.rng.random(count) < self.push_probability
        in_arena = self.margin + (ARENA_SIZE - 2 * self.margin) * self.rng.random((count, 2))
        self._targets[rows] = np.where(pushing[:, None], points_in_t(self.rng, count), in_arena)
        self._pushing[rows] = pushing
        self._steps_left[rows] = self.rng.integers(self.min_hold_steps, self.max_hold_steps + 1, count)

    def __call__(self, states: np.ndarray) -> np.ndarray:
        """Actions ``[*B, 2]`` (float32, in ``[-1, 1]``) for physical states ``[*B, 7]``."""
        states = np.asarray(states, dtype=np.float64)
        flat = states.reshape(-1, states.shape[-1])
        if len(self._targets) != len(flat):
            self._targets = np.zeros((len(flat), 2))
            self._pushing = np.zeros(len(flat), dtype=bool)
            self._steps_left = np.zeros(len(flat), dtype=np.int64)
        self._draw_targets(np.flatnonzero(self._steps_left <= 0))
        self._steps_left -= 1
        on_block = flat[:, 2:4] + rotate(self._targets, flat[:, 4])
        target = np.where(self._pushing[:, None], on_block, self._targets)
        action = (target - flat[:, 0:2]) / self.max_target_offset
        action = action + self.action_noise_std * self.rng.standard_normal(action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32).reshape(*states.shape[:-1], 2)
