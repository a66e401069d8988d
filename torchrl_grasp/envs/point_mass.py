"""Point-mass goal reaching in ``[-1, 1]^2``: what WallDoor and ObstacleNav share.

A task is a subclass of :class:`PointMassGoalEnv` that says where its obstacles are
(:meth:`~PointMassGoalEnv.blocked`, :meth:`~PointMassGoalEnv.segment_is_free`), how a batch of
points moves (:meth:`~PointMassGoalEnv.dynamics`) and how long the shortest feasible path is
(:meth:`~PointMassGoalEnv.path_lengths`). Everything else lives here once: the spaces, reset
options and their validation, reward and success, the random start/goal pairs, ``sample_task``,
numpy rendering, and :class:`PointMassVectorEnv`, which runs the same ``dynamics`` over a batch.

State is kept in float64 but always rounded to float32 numbers (and obstacle faces are float32
numbers too), so the float32 observation ``{"observation": [2], "goal": [2]}`` is the state exactly.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

ARENA_LOW, ARENA_HIGH = -1.0, 1.0
BACKGROUND_COLOR = np.array([235, 235, 235], dtype=np.uint8)
OBSTACLE_COLOR = np.array([70, 70, 70], dtype=np.uint8)
GOAL_COLOR = np.array([40, 170, 70], dtype=np.uint8)
AGENT_COLOR = np.array([30, 90, 220], dtype=np.uint8)
MARKER_RADIUS = 0.075  # world units (2.4 pixels at 64x64); at least 1.5 pixels at any render_size


def round_to_float32(values: np.ndarray) -> np.ndarray:
    """``values`` rounded to the nearest float32 numbers, as float64.

    Examples:
        >>> float(round_to_float32(np.array(0.1))) == float(np.float32(0.1))
        True
    """
    return np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)


def world_to_pixel(points: np.ndarray, render_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels holding ``points`` ``[*B, 2]`` in a ``render_size`` image.

    Row 0 is the top of the arena (``y = 1``), column 0 its left edge (``x = -1``).

    Examples:
        >>> world_to_pixel(np.array([[-1.0, 1.0], [0.99, -0.99], [0.0, 0.0]]), 64)
        (array([ 0, 63, 32]), array([ 0, 63, 32]))
    """
    points = np.asarray(points, dtype=np.float64)
    scale = render_size / (ARENA_HIGH - ARENA_LOW)
    rows = np.floor((ARENA_HIGH - points[..., 1]) * scale).astype(int)
    cols = np.floor((points[..., 0] - ARENA_LOW) * scale).astype(int)
    return np.clip(rows, 0, render_size - 1), np.clip(cols, 0, render_size - 1)


def pixel_centers(render_size: int) -> np.ndarray:
    """World coordinates ``[render_size, render_size, 2]`` of the centres of an image's pixels.

    Examples:
        >>> pixel_centers(2)[0, 0], pixel_centers(2)[1, 1]
        (array([-0.5,  0.5]), array([ 0.5, -0.5]))
    """
    pixel = (ARENA_HIGH - ARENA_LOW) / render_size
    coords = ARENA_LOW + (np.arange(render_size) + 0.5) * pixel
    cols, rows = np.meshgrid(coords, coords[::-1])
    return np.stack([cols, rows], axis=-1)


class PointMassGoalEnv(gym.Env):
    """Base class: a point in ``[-1, 1]^2`` that must reach a goal around obstacles.

    An action ``a`` in ``[-1, 1]^2`` is a velocity: the point moves by ``max_step * a`` per step,
    then the subclass's obstacles and the arena's edges stop it (:meth:`dynamics`).
    The reward is minus the distance to the goal; the episode terminates with
    ``info["is_success"]`` when that distance is below ``success_threshold``.

    ``reset(options={"start": [2], "goal": [2]})`` sets the start and goal exactly (either may be
    left out). Otherwise both are drawn from ``np_random``, on opposite halves of the arena
    (``x < 0`` and ``x > 0``, in random order) with the straight segment between them blocked,
    so reaching the goal needs a non-greedy path.

    Subclasses implement :meth:`blocked`, :meth:`segment_is_free`, :meth:`dynamics` and
    :meth:`path_lengths`.

    Args:
        max_step (float): distance moved per step along each axis at full action.
            Defaults to ``0.05``.
        success_threshold (float): goal distance under which the episode succeeds.
            Defaults to ``0.05``.
        render_mode (str, optional): ``"rgb_array"`` or ``None``. Defaults to ``None``.
        render_size (int): side of the square rendered image, in pixels. Defaults to ``64``.

    Examples:
        >>> from torchrl_grasp.envs import WallDoorEnv  # a subclass: a wall at x = 0, a door at y = 0.5
        >>> env = WallDoorEnv()
        >>> obs, info = env.reset(options={"start": [-0.5, 0.5], "goal": [-0.5, 0.58]})
        >>> obs["observation"].tolist(), bool(info["is_success"])
        ([-0.5, 0.5], False)
        >>> obs, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], np.float32))
        >>> round(float(obs["observation"][1]), 3), round(reward, 3), terminated, bool(info["is_success"])
        (0.55, -0.03, True, True)
        >>> starts, push_right = np.array([[-0.04, -0.5], [-0.04, 0.5]]), np.array([[1.0, 0.0], [1.0, 0.0]])
        >>> env.dynamics(starts, push_right).round(3).tolist()  # stopped by the wall; through the door
        [[-0.025, -0.5], [0.01, 0.5]]
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        *,
        max_step: float = 0.05,
        success_threshold: float = 0.05,
        render_mode: str | None = None,
        render_size: int = 64,
    ):
        if max_step <= 0 or success_threshold <= 0:
            raise ValueError(
                f"max_step ({max_step}) and success_threshold ({success_threshold}) must be positive."
            )
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}."
            )
        if render_size < 8:
            raise ValueError(f"render_size must be at least 8 pixels, got {render_size}.")
        self.max_step = float(max_step)
        self.success_threshold = float(success_threshold)
        self.render_mode = render_mode
        self.render_size = int(render_size)
        point = spaces.Box(ARENA_LOW, ARENA_HIGH, shape=(2,), dtype=np.float32)
        self.observation_space = spaces.Dict({"observation": point, "goal": point})
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._position: np.ndarray | None = None
        self._goal: np.ndarray | None = None
        self._background: np.ndarray | None = None

    # ------------------------------------------------------------------ geometry (subclasses)
    def blocked(self, points: np.ndarray) -> np.ndarray:
        """Whether each point ``[N, 2]`` lies inside an obstacle (open set), ``[N]`` bool."""
        raise NotImplementedError

    def segment_is_free(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Whether each segment ``starts[i] -> ends[i]`` (``[N, 2]``, broadcast) avoids the obstacles."""
        raise NotImplementedError

    def dynamics(self, positions: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Next positions ``[N, 2]`` (float64) from free ``positions`` and ``actions`` ``[N, 2]``."""
        raise NotImplementedError

    def path_lengths(self, start: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """Length ``[N]`` of the shortest feasible path from ``start`` ``[2]`` to each goal ``[N, 2]``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared helpers
    def keep_free(self, positions: np.ndarray, proposed: np.ndarray) -> np.ndarray:
        """``proposed`` rounded to float32 where that is free, else ``positions``: ends each :meth:`dynamics`.

        Rounding keeps every state exactly representable as its float32 observation, so an
        observation is always a valid ``reset`` start and obeys the same collision rules.
        """
        proposed = round_to_float32(proposed)
        return np.where(self.blocked(proposed)[:, None], positions, proposed)

    def proposed_positions(self, positions: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """``clip(positions + max_step * clip(actions, -1, 1), -1, 1)``, before obstacles, ``[N, 2]``."""
        step = self.max_step * np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        return np.clip(np.asarray(positions, dtype=np.float64) + step, ARENA_LOW, ARENA_HIGH)

    def goal_feedback(self, positions: np.ndarray, goals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reward ``-|position - goal|`` and success ``distance < success_threshold``, each ``[N]``."""
        distance = np.linalg.norm(positions - goals, axis=-1)
        return -distance, distance < self.success_threshold

    def check_points(self, name: str, value: Any, count: int = 1) -> np.ndarray:
        """``value`` as a float64 ``[count, 2]`` array of free points in the arena, or a ``ValueError``.

        A ``[2]`` value is broadcast to all ``count`` rows.
        """
        points = np.asarray(value, dtype=np.float64)
        if points.shape == (2,):
            points = np.broadcast_to(points, (count, 2))
        if points.shape != (count, 2):
            expected = "(2,)" if count == 1 else f"(2,) or ({count}, 2)"
            raise ValueError(f"options[{name!r}] must have shape {expected}, got {points.shape}.")
        points = round_to_float32(points)
        if not np.isfinite(points).all():
            raise ValueError(f"options[{name!r}] must be finite, got {points}.")
        if ((points < ARENA_LOW) | (points > ARENA_HIGH)).any():
            raise ValueError(
                f"options[{name!r}] must lie in the arena [{ARENA_LOW}, {ARENA_HIGH}]^2, got {points}."
            )
        inside = self.blocked(points)
        if inside.any():
            raise ValueError(f"options[{name!r}] lies inside an obstacle: {points[inside]}.")
        return points

    def sample_free_points(self, rng: np.random.Generator, count: int, side: int) -> np.ndarray:
        """``count`` free points ``[count, 2]``, uniform in the left (``side=0``, ``x < 0``) or right half.

        Points are rounded to float32 (and kept in float64) so that observations repeat them exactly.
        """
        found: list[np.ndarray] = []
        total = 0
        for _ in range(1000):
            x = rng.uniform(0.0, ARENA_HIGH, size=2 * count) * (1.0 if side else -1.0)
            y = rng.uniform(ARENA_LOW, ARENA_HIGH, size=2 * count)
            points = round_to_float32(np.stack([x, y], -1))
            points = points[~self.blocked(points)]
            found.append(points)
            total += len(points)
            if total >= count:
                return np.concatenate(found)[:count]
        raise RuntimeError(f"{type(self).__name__}: could not find free points in half {side} of the arena.")

    def sample_start_goal(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` random (start, goal) pairs, ``[count, 2]`` each: opposite halves, straight line blocked.

        Each pair's start is on the left or the right with equal probability.
        """
        starts, goals, total = [], [], 0
        for _ in range(1000):
            left, right = self.sample_free_points(rng, count, 0), self.sample_free_points(rng, count, 1)
            keep = ~self.segment_is_free(left, right)
            swap = rng.random(count) < 0.5
            starts.append(np.where(swap[:, None], right, left)[keep])
            goals.append(np.where(swap[:, None], left, right)[keep])
            total += int(keep.sum())
            if total >= count:
                return np.concatenate(starts)[:count], np.concatenate(goals)[:count]
        raise RuntimeError(
            f"{type(self).__name__}: its obstacles block almost no straight line between the halves."
        )

    def sample_task(
        self, rng: np.random.Generator | int | None, horizon: int, *, tolerance: float = 0.1
    ) -> tuple[np.ndarray, np.ndarray]:
        """A (start, goal) pair, float32 ``[2]`` each, whose shortest path needs about ``horizon`` steps.

        "About ``horizon`` steps" means the shortest feasible path has Euclidean length
        ``L`` (see :meth:`path_lengths`) with ``|L - horizon * max_step| <= tolerance * horizon * max_step``.
        At full speed (``|a| = 1`` on the path's major axis) the point covers between ``max_step`` and
        ``sqrt(2) * max_step`` per step, so an optimal controller needs between ``L / (sqrt(2) max_step)``
        and ``L / max_step`` steps. The start and goal are on opposite halves and the straight segment
        between them is blocked. The longest such paths are about 3.3 (WallDoor) and 2.8 (ObstacleNav)
        long, so the default ``max_step=0.05`` reaches horizons of about 60: use a smaller ``max_step``
        for longer ones (``max_step=0.025`` for ``horizon=100``).

        Args:
            rng (np.random.Generator, int or None): random generator, or a seed for one.
            horizon (int): number of steps the pair should need.

        Keyword Args:
            tolerance (float): relative tolerance on the path length. Defaults to ``0.1``.

        Returns:
            ``(start, goal)``, float32 arrays of shape ``[2]``.

        Raises:
            ValueError: when no pair of the requested length was found.
        """
        rng = np.random.default_rng(rng)
        target = horizon * self.max_step
        longest = 0.0
        for _ in range(200):
            side = int(rng.integers(2))
            start = self.sample_free_points(rng, 1, side)[0]
            goals = self.sample_free_points(rng, 256, 1 - side)
            goals = goals[~self.segment_is_free(start, goals)]
            if len(goals) == 0:
                continue
            lengths = self.path_lengths(start, goals)
            longest = max(longest, float(lengths.max()))
            fits = np.flatnonzero(np.abs(lengths - target) <= tolerance * target)
            if len(fits):
                return start.astype(np.float32), goals[rng.choice(fits)].astype(np.float32)
        raise ValueError(
            f"No start/goal pair with a path of {target:.3f} ({horizon} steps of {self.max_step}) was found; "
            f"the longest seen was {longest:.3f}. Lower max_step for long horizons."
        )

    # ------------------------------------------------------------------ gymnasium API
    def observe(self, positions: np.ndarray, goals: np.ndarray) -> dict[str, np.ndarray]:
        """The observation dict (float32) of positions and goals of any matching shape."""
        return {"observation": positions.astype(np.float32), "goal": goals.astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"start", "goal"}
        if unknown:
            raise ValueError(f"Unknown reset options {sorted(unknown)}; expected 'start' and/or 'goal'.")
        start, goal = (options.get(key) for key in ("start", "goal"))
        if start is None or goal is None:
            random_start, random_goal = self.sample_start_goal(self.np_random, 1)
            start = random_start if start is None else start
            goal = random_goal if goal is None else goal
        self._position = self.check_points("start", start)[0]
        self._goal = self.check_points("goal", goal)[0]
        _, success = self.goal_feedback(self._position, self._goal)
        return self.observe(self._position, self._goal), {"is_success": np.bool_(success)}

    def step(self, action):
        if self._position is None:
            raise RuntimeError("Call reset() before step().")
        self._position = self.dynamics(self._position[None], np.asarray(action)[None])[0]
        reward, success = self.goal_feedback(self._position, self._goal)
        info = {"is_success": np.bool_(success)}
        return self.observe(self._position, self._goal), float(reward), bool(success), False, info

    # ------------------------------------------------------------------ rendering
    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self.render_frame(self._position, self._goal)

    def render_frame(self, position: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """An RGB uint8 image ``[render_size, render_size, 3]``: obstacles, goal, then the agent on top.

        Examples:
            >>> from torchrl_grasp.envs import WallDoorEnv
            >>> frame = WallDoorEnv().render_frame(np.array([-0.5, 0.0]), np.array([0.5, 0.0]))
            >>> frame.shape, frame.dtype
            ((64, 64, 3), dtype('uint8'))
        """
        size = self.render_size
        centers = pixel_centers(size)
        if self._background is None:
            mask = self.blocked(centers.reshape(-1, 2)).reshape(size, size)
            self._background = np.where(mask[..., None], OBSTACLE_COLOR, BACKGROUND_COLOR).astype(np.uint8)
        frame = self._background.copy()
        pixel = (ARENA_HIGH - ARENA_LOW) / size
        for point, color, radius in (
            (goal, GOAL_COLOR, max(self.success_threshold, MARKER_RADIUS, 1.5 * pixel)),
            (position, AGENT_COLOR, max(MARKER_RADIUS, 1.5 * pixel)),
        ):
            if point is not None:
                frame[np.linalg.norm(centers - np.asarray(point), axis=-1) <= radius] = color
        return frame


class PointMassVectorEnv(VectorEnv):
    """A batch of one point-mass task in numpy, moved by the single env's :meth:`~PointMassGoalEnv.dynamics`.

    Subclasses set ``task_class`` (a :class:`PointMassGoalEnv`); its constructor keywords pass through.
    Follows gymnasium 1.x vector semantics. With ``autoreset_mode=NEXT_STEP`` (the default), the
    step after a sub-env terminates or truncates resets it (random start and goal), ignores its
    action and returns reward 0. With ``DISABLED``, the caller resets sub-envs with
    ``reset(options={"reset_mask": [N] bool})``.

    ``reset(options=...)`` also takes ``"start"`` and ``"goal"``, each ``[2]`` (same for all) or
    ``[N, 2]``; with a ``reset_mask``, only the masked rows are used. ``info["is_success"]`` is
    ``[N]`` bool (with the ``"_is_success"`` mask gymnasium's vector infos carry).

    Args:
        num_envs (int): number of sub-environments.

    Keyword Args:
        max_episode_steps (int, optional): truncate each episode after this many steps.
            Defaults to ``None`` (never).
        autoreset_mode (AutoresetMode or str): ``NEXT_STEP`` or ``DISABLED``. Defaults to ``NEXT_STEP``.
        render_mode (str, optional): ``"rgb_array"`` or ``None``. Defaults to ``None``.
        **task_kwargs: constructor keywords of ``task_class``.

    Examples:
        >>> from torchrl_grasp.envs import WallDoorVectorEnv  # task_class = WallDoorEnv
        >>> envs = WallDoorVectorEnv(3, max_step=0.1)
        >>> obs, info = envs.reset(seed=0, options={"start": [-0.5, 0.5]})  # one start for all, random goals
        >>> obs["observation"].shape, obs["goal"].shape, info["is_success"].tolist()
        ((3, 2), (3, 2), [False, False, False])
        >>> obs, reward, terminated, truncated, info = envs.step(np.ones((3, 2), np.float32))
        >>> obs["observation"]  # float32, as the observation space says
        array([[-0.4,  0.6],
               [-0.4,  0.6],
               [-0.4,  0.6]], dtype=float32)
    """

    task_class: type[PointMassGoalEnv] = PointMassGoalEnv

    def __init__(
        self,
        num_envs: int,
        *,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        **task_kwargs,
    ):
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        if self.autoreset_mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED):
            raise ValueError(f"autoreset_mode must be NEXT_STEP or DISABLED, got {self.autoreset_mode}.")
        self.task = self.task_class(render_mode=render_mode, **task_kwargs)
        self.num_envs = int(num_envs)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.metadata = {**self.task.metadata, "autoreset_mode": self.autoreset_mode}
        self.single_observation_space = self.task.observation_space
        self.single_action_space = self.task.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.positions = np.zeros((self.num_envs, 2))
        self.goals = np.zeros((self.num_envs, 2))
        self.elapsed_steps = np.zeros(self.num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)

    def _reset_rows(self, mask: np.ndarray, start: Any = None, goal: Any = None) -> None:
        count = int(mask.sum())
        random_start = random_goal = None
        if start is None or goal is None:
            random_start, random_goal = self.task.sample_start_goal(self.np_random, count)
        for name, given, random, target in (
            ("start", start, random_start, self.positions),
            ("goal", goal, random_goal, self.goals),
        ):
            if given is not None:
                given = np.asarray(given, dtype=np.float64)
                given = given[mask] if given.ndim == 2 and given.shape[0] == self.num_envs else given
                random = self.task.check_points(name, given, count)
            target[mask] = random
        self.elapsed_steps[mask] = 0
        self._needs_reset[mask] = False

    def _info(self, success: np.ndarray) -> dict[str, np.ndarray]:
        return {"is_success": success, "_is_success": np.ones(self.num_envs, dtype=bool)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"start", "goal", "reset_mask"}
        if unknown:
            raise ValueError(
                f"Unknown reset options {sorted(unknown)}; expected 'start', 'goal', 'reset_mask'."
            )
        mask = options.get("reset_mask")
        mask = (
            np.ones(self.num_envs, dtype=bool) if mask is None else np.asarray(mask, dtype=bool).reshape(-1)
        )
        if mask.shape != (self.num_envs,):
            raise ValueError(f"options['reset_mask'] must have shape ({self.num_envs},), got {mask.shape}.")
        if mask.any():
            self._reset_rows(mask, options.get("start"), options.get("goal"))
        _, success = self.task.goal_feedback(self.positions, self.goals)
        return self.task.observe(self.positions, self.goals), self._info(success)

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, 2)
        restarting = self._needs_reset.copy() if self.autoreset_mode == AutoresetMode.NEXT_STEP else None
        self.positions = self.task.dynamics(self.positions, actions)
        self.elapsed_steps += 1
        if restarting is not None and restarting.any():
            self._reset_rows(restarting)
        reward, success = self.task.goal_feedback(self.positions, self.goals)
        terminated = success.copy()
        truncated = np.zeros(self.num_envs, dtype=bool)
        if self.max_episode_steps is not None:
            truncated = self.elapsed_steps >= self.max_episode_steps
        if restarting is not None:
            reward[restarting], terminated[restarting], truncated[restarting] = 0.0, False, False
            self._needs_reset = terminated | truncated
        obs = self.task.observe(self.positions, self.goals)
        return obs, reward, terminated, truncated, self._info(success)

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode != "rgb_array":
            return None
        return tuple(self.task.render_frame(p, g) for p, g in zip(self.positions, self.goals))
