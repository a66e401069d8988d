"""``WallDoor-v0``: a point mass must cross a wall through its one door."""

from __future__ import annotations

import numpy as np

from torchrl_grasp.envs.point_mass import (
    ARENA_HIGH,
    ARENA_LOW,
    PointMassGoalEnv,
    PointMassVectorEnv,
    round_to_float32,
)


def segment_rectangle_entry(
    starts: np.ndarray, ends: np.ndarray, rectangle: tuple[float, float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where segments ``starts -> ends`` ``[N, 2]`` enter an open box ``(x_low, x_high, y_low, y_high)``.

    Liang-Barsky clipping: on each axis the segment ``p + t d`` is strictly inside the slab for
    ``t`` in an open interval; the segment enters the rectangle if the intersection of both
    intervals with ``[0, 1]`` is not empty. Touching the boundary is not entering it.

    Returns:
        ``(hit [N] bool, t [N] entry fraction, axis [N])``: ``axis`` is ``0`` where the segment
        enters through a vertical face (``x = x_low`` or ``x_high``), ``1`` through a horizontal one
        (ties, i.e. corners, count as vertical).

    Examples:
        >>> starts, ends = np.array([[-1.0, 0.0], [-1.0, 2.0]]), np.array([[1.0, 0.0], [1.0, 2.0]])
        >>> hit, t, axis = segment_rectangle_entry(starts, ends, (-0.1, 0.1, -1.0, 1.0))
        >>> hit, t[0], axis[0]
        (array([ True, False]), np.float64(0.45), np.int64(0))
    """
    starts, ends = np.broadcast_arrays(np.asarray(starts, np.float64), np.asarray(ends, np.float64))
    delta = ends - starts
    enter, leave = [], []
    for axis, (low, high) in enumerate((rectangle[:2], rectangle[2:])):
        p, d = starts[..., axis], delta[..., axis]
        with np.errstate(divide="ignore", invalid="ignore"):
            t_low, t_high = (low - p) / d, (high - p) / d
        inside = (p > low) & (p < high)
        still = d == 0
        enter.append(np.where(still, np.where(inside, -np.inf, np.inf), np.minimum(t_low, t_high)))
        leave.append(np.where(still, np.where(inside, np.inf, -np.inf), np.maximum(t_low, t_high)))
    t_enter = np.maximum(np.maximum(enter[0], enter[1]), 0.0)
    t_leave = np.minimum(np.minimum(leave[0], leave[1]), 1.0)
    return t_enter < t_leave, t_enter, (enter[1] > enter[0]).astype(np.int64)


class WallDoorEnv(PointMassGoalEnv):
    """A point in ``[-1, 1]^2``, a wall at ``x = 0`` and one door in it: ``WallDoor-v0``.

    The wall is the slab ``|x| < wall_thickness / 2`` except the door opening
    ``|y - door_center| <= door_width / 2``; ``door_width`` is the difficulty knob. A move that
    would enter the wall is stopped at the face it would enter through (``x`` clipped to the
    wall face, the ``y`` motion kept; or, inside the door, ``y`` clipped to the door's edge), so
    the point never ends inside the wall. The arena's edges clip it too. Deterministic.

    See :class:`~torchrl_grasp.envs.point_mass.PointMassGoalEnv` for the observation, reward,
    reset options and rendering shared with the other point-mass tasks.

    Keyword Args:
        door_center (float): ``y`` of the door's centre. Defaults to ``0.5``, off the middle, so most
            straight lines between the halves are blocked.
        door_width (float): height of the door opening. Defaults to ``0.2``.
        wall_thickness (float): thickness of the wall. Defaults to ``0.05``.
        **kwargs: :class:`~torchrl_grasp.envs.point_mass.PointMassGoalEnv` keywords
            (``max_step=0.05``, ``success_threshold=0.05``, ``render_mode=None``, ``render_size=64``).

    Examples:
        >>> import numpy as np
        >>> env = WallDoorEnv()
        >>> obs, info = env.reset(options={"start": [-0.5, -0.5], "goal": [0.5, -0.5]})
        >>> obs["observation"], obs["goal"], bool(info["is_success"])
        (array([-0.5, -0.5], dtype=float32), array([ 0.5, -0.5], dtype=float32), False)
        >>> for _ in range(20):
        ...     obs, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0], np.float32))
        >>> obs["observation"]  # stopped at the wall's face
        array([-0.025, -0.5  ], dtype=float32)
        >>> start, goal = env.sample_task(np.random.default_rng(0), horizon=40)
        >>> bool(env.segment_is_free(start, goal)[0])
        False
    """

    def __init__(
        self, *, door_center: float = 0.5, door_width: float = 0.2, wall_thickness: float = 0.05, **kwargs
    ):
        super().__init__(**kwargs)
        if door_width <= 0 or wall_thickness <= 0:
            raise ValueError(
                f"door_width ({door_width}) and wall_thickness ({wall_thickness}) must be positive."
            )
        if not ARENA_LOW <= door_center <= ARENA_HIGH:
            raise ValueError(f"door_center must lie in [{ARENA_LOW}, {ARENA_HIGH}], got {door_center}.")
        self.door_center, self.door_width = float(door_center), float(door_width)
        self.wall_thickness = float(wall_thickness)
        # float32 numbers, so that positions stopped at a face are float32 numbers (see round_to_float32)
        half = self.wall_half_thickness = float(round_to_float32(wall_thickness / 2))
        self.door_low = float(round_to_float32(door_center - door_width / 2))
        self.door_high = float(round_to_float32(door_center + door_width / 2))
        self.wall_pieces = ((-half, half, -np.inf, self.door_low), (-half, half, self.door_high, np.inf))
        door_y = np.clip([self.door_low, self.door_high], ARENA_LOW, ARENA_HIGH)
        self.door_corners = np.array([[x, y] for x in (-half, half) for y in door_y])

    def blocked(self, points: np.ndarray) -> np.ndarray:
        x, y = points[..., 0], points[..., 1]
        return (np.abs(x) < self.wall_half_thickness) & ((y < self.door_low) | (y > self.door_high))

    def segment_is_free(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        starts, ends = np.atleast_2d(starts), np.atleast_2d(ends)
        hits = [segment_rectangle_entry(starts, ends, piece)[0] for piece in self.wall_pieces]
        return ~np.logical_or(*hits)

    def dynamics(self, positions: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Move by ``max_step * a``, stopped at the face of the wall piece the move enters first."""
        positions = np.asarray(positions, dtype=np.float64)
        proposed = self.proposed_positions(positions, actions)
        delta = proposed - positions
        first_t = np.full(len(positions), np.inf)
        stopped = proposed.copy()
        for x_low, x_high, y_low, y_high in self.wall_pieces:
            hit, t, axis = segment_rectangle_entry(positions, proposed, (x_low, x_high, y_low, y_high))
            first = hit & (t < first_t)
            first_t = np.where(first, t, first_t)
            face_x = np.where(delta[:, 0] > 0, x_low, x_high)
            face_y = np.where(delta[:, 1] > 0, y_low, y_high)
            stopped[first] = proposed[first]
            stopped[first & (axis == 0), 0] = face_x[first & (axis == 0)]
            stopped[first & (axis == 1), 1] = face_y[first & (axis == 1)]
        return self.keep_free(positions, stopped)

    def path_lengths(self, start: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """Exact shortest path lengths ``[N]``: Floyd-Warshall on the visibility graph of start, door, goal.

        The wall's only corners a path can bend around are the door's four corners, so the
        shortest path is a polyline through some of them.

        Examples:
            >>> env = WallDoorEnv()  # door from y = 0.4 to 0.6, wall faces at x = -0.025 and 0.025
            >>> length = env.path_lengths(np.array([-0.5, -0.5]), np.array([[0.5, -0.5]]))[0]
            >>> bool(np.isclose(length, 2 * np.hypot(0.475, 0.9) + 0.05))  # via (-0.025, 0.4), (0.025, 0.4)
            True
        """
        goals = np.atleast_2d(np.asarray(goals, dtype=np.float64))
        count = len(goals)
        corners = np.broadcast_to(self.door_corners, (count, *self.door_corners.shape))
        start = np.broadcast_to(np.asarray(start, dtype=np.float64), (count, 1, 2))
        nodes = np.concatenate([start, corners, goals[:, None]], axis=1)  # [N, 6, 2]
        a, b = np.broadcast_arrays(nodes[:, :, None], nodes[:, None, :])
        free = self.segment_is_free(a.reshape(-1, 2), b.reshape(-1, 2)).reshape(a.shape[:-1])
        dist = np.where(free, np.linalg.norm(a - b, axis=-1), np.inf)
        for k in range(nodes.shape[1]):
            dist = np.minimum(dist, dist[:, :, k, None] + dist[:, None, k, :])
        return dist[:, 0, -1]


class WallDoorVectorEnv(PointMassVectorEnv):
    """``num_envs`` copies of :class:`WallDoorEnv` stepped together in numpy: ``WallDoor-v0``'s vector env.

    See :class:`~torchrl_grasp.envs.point_mass.PointMassVectorEnv`.

    Examples:
        >>> import gymnasium as gym
        >>> import numpy as np
        >>> import torchrl_grasp.envs
        >>> envs = gym.make_vec("WallDoor-v0", num_envs=3, vectorization_mode="vector_entry_point")
        >>> obs, info = envs.reset(seed=0, options={"start": [-0.5, -0.5], "goal": [0.5, 0.5]})
        >>> obs["observation"].shape, info["is_success"]
        ((3, 2), array([False, False, False]))
        >>> obs, reward, terminated, truncated, info = envs.step(np.ones((3, 2), np.float32))
        >>> obs["observation"][0]
        array([-0.45, -0.45], dtype=float32)
    """

    task_class = WallDoorEnv
