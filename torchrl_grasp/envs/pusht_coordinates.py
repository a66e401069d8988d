"""Push-T's state in pixels and radians, and a normalised form where Euclidean distances mean something.

The physical state of ``PushTState-v0`` is ``[agent_x, agent_y, block_x, block_y, block_angle,
agent_vx, agent_vy]``: pixels in ``[0, 512]``, an angle wrapped to ``[0, 2 pi)`` and pixels per
second. Planners measure how far a state is from the goal with one Euclidean distance over all
features, which these units make meaningless (a pixel weighs as much as a radian), and the
wrapped angle jumps by ``2 pi`` where the block turns through zero. :func:`normalize_state`
maps it to eight features where distances mean something:

* the agent's position, ``(p - 256) / 256``, in ``[-1, 1]``;
* the T's centroid, in the same units, and ``(r cos(theta), r sin(theta))`` with ``r`` the T's
  radius of gyration about its centroid (:data:`BLOCK_RADIUS`, in the same units). The
  Euclidean distance between two such block encodings is then exactly the root-mean-square
  distance between corresponding points of the two T's (divided by 256), the quantity the
  package's coverage success measures, with no jump at ``theta = 0``;
* the agent's velocity as the distance it covers in one control step, in the same units.

:func:`physical_state` inverts it.
"""

from __future__ import annotations

import numpy as np

STATE_SIZE = 7  # [agent_x, agent_y, block_x, block_y, block_angle, agent_vx, agent_vy]
NORMALIZED_SIZE = 8  # what normalize_state makes of it
ARENA_SIZE = 512.0
ARENA_CENTER = ARENA_SIZE / 2
POSITION_SCALE = 256.0  # pixels per normalised unit
CONTROL_PERIOD = 0.1  # seconds per env step (the package's 10 Hz control)

# The T of gym_pusht's ``add_tee`` (scale 30, length 4) in its body frame, pixels: (x0, y0, x1, y1)
# of the bar and of the stem. The body's position is the middle of the bar's top edge.
T_RECTANGLES = np.array([[-60.0, 0.0, 60.0, 30.0], [-15.0, 30.0, 15.0, 120.0]])


def t_area_moments() -> tuple[np.ndarray, float]:
    """The T's centroid ``[2]`` in its body frame and its radius of gyration about it, in pixels.

    Examples:
        >>> centroid, radius = t_area_moments()
        >>> centroid.round(2).tolist(), round(radius, 2)
        ([0.0, 40.71], 43.95)
    """
    low, high = T_RECTANGLES[:, :2], T_RECTANGLES[:, 2:]
    areas = (high - low).prod(-1)
    centers = (low + high) / 2
    mean_squares = (low**2 + low * high + high**2).sum(-1) / 3  # E|x|^2 over each rectangle
    centroid = (areas[:, None] * centers).sum(0) / areas.sum()
    radius_squared = (areas * mean_squares).sum() / areas.sum() - centroid @ centroid
    return centroid, float(np.sqrt(radius_squared))


BLOCK_CENTROID, _BLOCK_RADIUS_PX = t_area_moments()
BLOCK_RADIUS = _BLOCK_RADIUS_PX / POSITION_SCALE  # normalised units


def rotate(vectors: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """``vectors`` ``[*B, 2]`` rotated by ``angles`` ``[*B]`` counter-clockwise (pymunk's convention).

    Examples:
        >>> rotate(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([np.pi / 2, np.pi])).round(6) + 0.0
        array([[ 0.,  1.],
               [ 0., -2.]])
    """
    cos, sin = np.cos(angles), np.sin(angles)
    x, y = vectors[..., 0], vectors[..., 1]
    return np.stack([cos * x - sin * y, sin * x + cos * y], axis=-1)


def normalize_state(state: np.ndarray) -> np.ndarray:
    """The normalised encoding ``[*B, 8]`` of physical states ``[*B, 7]`` (see the module's docstring).

    Layout: ``[agent_x, agent_y, centroid_x, centroid_y, r cos(theta), r sin(theta), agent_vx, agent_vy]``.

    Examples:
        >>> state = np.array([256.0, 384.0, 256.0, 256.0, 0.0, 100.0, 0.0])
        >>> normalize_state(state).round(3).tolist()
        [0.0, 0.5, 0.0, 0.159, 0.172, 0.0, 0.039, 0.0]
        >>> turned = state + [0, 0, 0, 0, 2 * np.pi - 1e-6, 0, 0]  # a full turn: the same pose
        >>> bool(np.abs(normalize_state(turned) - normalize_state(state)).max() < 1e-5)
        True
    """
    state = np.asarray(state, dtype=np.float64)
    angle = state[..., 4]
    centroid = state[..., 2:4] + rotate(np.broadcast_to(BLOCK_CENTROID, state[..., 2:4].shape), angle)
    features = [
        (state[..., 0:2] - ARENA_CENTER) / POSITION_SCALE,
        (centroid - ARENA_CENTER) / POSITION_SCALE,
        BLOCK_RADIUS * np.stack([np.cos(angle), np.sin(angle)], axis=-1),
        state[..., 5:7] * CONTROL_PERIOD / POSITION_SCALE,
    ]
    return np.concatenate(features, axis=-1)


def physical_state(normalized: np.ndarray) -> np.ndarray:
    """The physical states ``[*B, 7]`` of normalised ones ``[*B, 8]``: the inverse of :func:`normalize_state`.

    The angle comes back in ``[0, 2 pi)``; the length of ``(r cos, r sin)`` is ignored.

    Examples:
        >>> state = np.array([[100.0, 200.0, 300.0, 400.0, 5.0, -30.0, 70.0]])
        >>> bool(np.allclose(physical_state(normalize_state(state)), state))
        True
    """
    normalized = np.asarray(normalized, dtype=np.float64)
    angle = np.arctan2(normalized[..., 5], normalized[..., 4]) % (2 * np.pi)
    centroid = normalized[..., 2:4] * POSITION_SCALE + ARENA_CENTER
    block = centroid - rotate(np.broadcast_to(BLOCK_CENTROID, centroid.shape), angle)
    return np.concatenate(
        [
            normalized[..., 0:2] * POSITION_SCALE + ARENA_CENTER,
            block,
            angle[..., None],
            normalized[..., 6:8] * POSITION_SCALE / CONTROL_PERIOD,
        ],
        axis=-1,
    )


# DINO-WM's Push-T success test (Zhou et al., 2024; the one GRASP's paper reports): the agent's and
# the block's positions together within 20 pixels of the goal's, and the block's angle within pi / 9.
DINO_WM_POSITION_PX = 20.0
DINO_WM_ANGLE = np.pi / 9


def angle_error(angle: np.ndarray, goal_angle: np.ndarray) -> np.ndarray:
    """``|angle - goal_angle|`` wrapped to ``[0, pi]``, radians.

    Examples:
        >>> round(float(angle_error(0.1, 2 * np.pi - 0.2)), 6)  # across zero
        0.3
    """
    return np.abs((np.asarray(angle) - goal_angle + np.pi) % (2 * np.pi) - np.pi)


def dino_wm_success(state: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """DINO-WM's success test of physical states ``[*B, 7]`` against their goals: the distance
    between ``[agent_x, agent_y, block_x, block_y]`` and the goal's below :data:`DINO_WM_POSITION_PX`
    pixels (one norm over the four numbers, as DINO-WM's ``eval_state``), and the block's angle
    within :data:`DINO_WM_ANGLE` of the goal's. Far looser than the package's coverage test
    (coverage above 0.95: about 2 pixels and 0.03 rad).

    Examples:
        >>> goal = np.array([200.0, 200.0, 300.0, 300.0, 0.1, 0.0, 0.0])
        >>> near = np.array([210.0, 205.0, 305.0, 295.0, 2 * np.pi - 0.2, 5.0, 0.0])  # 13 px, 0.3 rad
        >>> turned = np.array([200.0, 200.0, 300.0, 300.0, 0.5, 0.0, 0.0])  # 0.4 rad
        >>> bool(dino_wm_success(near, goal)), bool(dino_wm_success(turned, goal))
        (True, False)
    """
    state, goal = np.asarray(state), np.asarray(goal)
    positions = np.linalg.norm(state[..., 0:4] - goal[..., 0:4], axis=-1)
    return (positions < DINO_WM_POSITION_PX) & (angle_error(state[..., 4], goal[..., 4]) < DINO_WM_ANGLE)
