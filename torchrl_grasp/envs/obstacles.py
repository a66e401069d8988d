"""``ObstacleNav-v0``: a point mass navigates between circular obstacles ("ball navigation")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from torchrl_grasp.envs.point_mass import ARENA_HIGH, ARENA_LOW, PointMassGoalEnv, PointMassVectorEnv

#: Default discs ``(x, y, radius)``: two staggered columns whose gaps do not line up, so the way
#: from one half to the other zigzags (through a gap of the left column, along the corridor
#: ``|x| < 0.05`` between the columns, then through a gap of the right column).
DEFAULT_DISCS = (
    (-0.25, -0.6, 0.2),
    (-0.25, 0.0, 0.2),
    (-0.25, 0.6, 0.2),
    (0.25, -0.9, 0.2),
    (0.25, -0.3, 0.2),
    (0.25, 0.3, 0.2),
    (0.25, 0.9, 0.2),
)
PATH_GRID_SIZE = 101  # cells per side of the grid path_lengths searches (spacing 0.02)
_PROJECTION_MARGIN = 1e-6  # relative: projected points land outside their disc even after float32 rounding


def _shifted(array: np.ndarray, di: int, dj: int, fill) -> np.ndarray:
    """``out[i, j] = array[i - di, j - dj]``, ``fill`` where that index is off the grid."""
    out = np.full_like(array, fill)
    rows, cols = array.shape
    out[max(di, 0) : rows + min(di, 0), max(dj, 0) : cols + min(dj, 0)] = array[
        max(-di, 0) : rows - max(di, 0), max(-dj, 0) : cols - max(dj, 0)
    ]
    return out


class ObstacleNavEnv(PointMassGoalEnv):
    """A point in ``[-1, 1]^2`` among circular obstacles: ``ObstacleNav-v0`` (the paper's "ball navigation").

    A move that would end inside a disc is projected onto that disc's boundary (the point slides
    around it); if the projection lands outside the arena or inside another disc, the point
    stays where it was. The point therefore never ends inside a disc. Discs must have radius at
    least ``max_step``, so no step jumps across one (a step may still clip a disc's edge).

    See :class:`~torchrl_grasp.envs.point_mass.PointMassGoalEnv` for the observation, reward,
    reset options and rendering shared with the other point-mass tasks.

    Keyword Args:
        discs (sequence of (x, y, radius)): the obstacles. Defaults to :data:`DEFAULT_DISCS`, seven
            discs of radius 0.2 in two staggered columns at ``x = -0.25`` and ``x = 0.25``.
        **kwargs: :class:`~torchrl_grasp.envs.point_mass.PointMassGoalEnv` keywords
            (``max_step=0.05``, ``success_threshold=0.05``, ``render_mode=None``, ``render_size=64``).

    Examples:
        >>> import numpy as np
        >>> env = ObstacleNavEnv()
        >>> obs, _ = env.reset(options={"start": [-0.6, 0.0], "goal": [0.6, 0.0]})
        >>> for _ in range(10):
        ...     obs, *_ = env.step(np.array([1.0, 0.0], np.float32))
        >>> bool(np.hypot(obs["observation"][0] + 0.25, obs["observation"][1]) >= 0.2)  # on the disc's edge
        True
        >>> start, goal = env.sample_task(np.random.default_rng(0), horizon=40)
        >>> bool(env.segment_is_free(start, goal)[0])
        False
    """

    def __init__(self, *, discs: Sequence[Sequence[float]] = DEFAULT_DISCS, **kwargs):
        super().__init__(**kwargs)
        discs = np.asarray(discs, dtype=np.float64).reshape(-1, 3)
        if not np.isfinite(discs).all() or len(discs) == 0:
            raise ValueError(f"discs must be a non-empty [K, 3] array of finite (x, y, radius), got {discs}.")
        if (discs[:, 2] < self.max_step).any():
            raise ValueError(
                f"Every disc radius must be at least max_step={self.max_step}, got {discs[:, 2]}."
            )
        self.discs = discs
        self._grid = None

    def blocked(self, points: np.ndarray) -> np.ndarray:
        offsets = np.asarray(points, dtype=np.float64)[..., None, :] - self.discs[:, :2]
        return (np.linalg.norm(offsets, axis=-1) < self.discs[:, 2]).any(axis=-1)

    def segment_is_free(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Whether each segment keeps its distance to every disc centre at least the radius."""
        starts, ends = np.broadcast_arrays(np.atleast_2d(starts).astype(np.float64), np.atleast_2d(ends))
        delta = (ends - starts)[:, None, :]
        to_center = self.discs[:, :2] - starts[:, None, :]
        length2 = (delta**2).sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(length2 > 0, (to_center * delta).sum(-1) / length2, 0.0)
        closest = starts[:, None, :] + np.clip(t, 0.0, 1.0)[..., None] * delta
        distance = np.linalg.norm(closest - self.discs[:, :2], axis=-1)
        return (distance >= self.discs[:, 2]).all(axis=-1)

    def dynamics(self, positions: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Move by ``max_step * a``; an end point inside a disc is projected onto its boundary, ``[N, 2]``."""
        positions = np.asarray(positions, dtype=np.float64)
        proposed = self.proposed_positions(positions, actions)
        for x, y, radius in self.discs:
            center = np.array([x, y])
            offset = proposed - center
            distance = np.linalg.norm(offset, axis=-1, keepdims=True)
            inside = distance[:, 0] < radius
            if not inside.any():
                continue
            fallback = positions - center  # only used if the move ends exactly at the centre
            direction = np.where(distance > 0, offset, fallback)
            direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
            proposed[inside] = center + direction[inside] * radius * (1 + _PROJECTION_MARGIN)
        proposed = np.clip(proposed, ARENA_LOW, ARENA_HIGH)
        return self.keep_free(positions, proposed)

    def _path_grid(self):
        """Cell centres ``[G, G, 2]``, spacing and 16-neighbour moves ``(length, di, dj, allowed [G, G])``."""
        if self._grid is None:
            coords = np.linspace(ARENA_LOW, ARENA_HIGH, PATH_GRID_SIZE)
            spacing = coords[1] - coords[0]
            xs, ys = np.meshgrid(coords, coords)  # [i, j] -> (x_j, y_i)
            centers = np.stack([xs, ys], axis=-1)
            free = ~self.blocked(centers.reshape(-1, 2)).reshape(xs.shape)
            moves = []
            for di in range(-2, 3):
                for dj in range(-2, 3):
                    if (
                        (di, dj) == (0, 0)
                        or (abs(di) == 2 and abs(dj) != 1)
                        or (abs(dj) == 2 and abs(di) != 1)
                    ):
                        continue  # keep the 8 neighbours and the 8 knight moves
                    allowed = free & _shifted(free, di, dj, False)
                    # the cells around the move's midpoint must be free too (no cutting corners)
                    for vi in {int(np.floor(di / 2)), int(np.ceil(di / 2))}:
                        for vj in {int(np.floor(dj / 2)), int(np.ceil(dj / 2))}:
                            allowed &= _shifted(free, vi, vj, False)
                    moves.append((spacing * np.hypot(di, dj), di, dj, allowed))
            self._grid = (centers, spacing, moves)
        return self._grid

    def _nearby_cells(self, points: np.ndarray) -> np.ndarray:
        """Indices ``[N, 25, 2]`` of the 5x5 grid cells around each point, clipped to the grid."""
        _, spacing, _ = self._path_grid()
        nearest = np.rint((points[:, ::-1] - ARENA_LOW) / spacing).astype(int)  # (row, col)
        window = np.stack(np.meshgrid(np.arange(-2, 3), np.arange(-2, 3), indexing="ij"), -1).reshape(-1, 2)
        return np.clip(nearest[:, None, :] + window, 0, PATH_GRID_SIZE - 1)

    def path_lengths(self, start: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """Approximate shortest path lengths ``[N]`` from a geodesic distance field on a grid.

        The arena is a ``PATH_GRID_SIZE``-square grid (spacing 0.02) of cells, free when their
        centre is. Distances from ``start`` spread over 16-neighbour moves (the 8 neighbours and the
        8 knight moves, each needing the cells around its midpoint free) by repeated numpy
        relaxation until nothing changes; the start and goals join the grid through the free,
        visible cells of their 5x5 neighbourhoods. The 16-neighbour metric overestimates a straight
        run by at most about 3 %; a straight visible segment is used as is.

        Examples:
            >>> env = ObstacleNavEnv(discs=[(0.0, 0.0, 0.5)])
            >>> exact = 2 * np.sqrt(0.9**2 - 0.5**2) + 0.5 * (np.pi - 2 * np.arccos(0.5 / 0.9))
            >>> estimate = env.path_lengths(np.array([-0.9, 0.0]), np.array([[0.9, 0.0]]))[0]
            >>> bool(abs(estimate / exact - 1) < 0.03)
            True
        """
        start = np.asarray(start, dtype=np.float64)
        goals = np.atleast_2d(np.asarray(goals, dtype=np.float64))
        centers, _, moves = self._path_grid()
        dist = np.full(centers.shape[:2], np.inf)
        cells = self._nearby_cells(start[None])[0]
        cell_points = centers[cells[:, 0], cells[:, 1]]
        reach = np.where(
            self.segment_is_free(start, cell_points), np.linalg.norm(cell_points - start, axis=-1), np.inf
        )
        np.minimum.at(dist, (cells[:, 0], cells[:, 1]), reach)
        while True:
            relaxed = dist
            for length, di, dj, allowed in moves:
                relaxed = np.minimum(
                    relaxed, np.where(allowed, _shifted(dist, di, dj, np.inf) + length, np.inf)
                )
            if np.array_equal(relaxed, dist):
                break
            dist = relaxed
        cells = self._nearby_cells(goals)  # [N, 25, 2]
        cell_points = centers[cells[..., 0], cells[..., 1]]
        visible = self.segment_is_free(np.repeat(goals, cells.shape[1], 0), cell_points.reshape(-1, 2))
        via_grid = dist[cells[..., 0], cells[..., 1]] + np.linalg.norm(cell_points - goals[:, None], axis=-1)
        via_grid = np.where(visible.reshape(cells.shape[:2]), via_grid, np.inf).min(axis=1)
        straight = np.where(
            self.segment_is_free(start, goals), np.linalg.norm(goals - start, axis=-1), np.inf
        )
        return np.minimum(via_grid, straight)


class ObstacleNavVectorEnv(PointMassVectorEnv):
    """``num_envs`` copies of :class:`ObstacleNavEnv` stepped in numpy: ``ObstacleNav-v0``'s vector env.

    See :class:`~torchrl_grasp.envs.point_mass.PointMassVectorEnv`.

    Examples:
        >>> import gymnasium as gym
        >>> import torchrl_grasp.envs
        >>> envs = gym.make_vec("ObstacleNav-v0", num_envs=4, vectorization_mode="vector_entry_point")
        >>> obs, info = envs.reset(seed=0)
        >>> obs["observation"].shape, obs["goal"].dtype
        ((4, 2), dtype('float32'))
    """

    task_class = ObstacleNavEnv
