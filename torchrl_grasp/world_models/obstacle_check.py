"""Does a learned point-mass model let the point through obstacles? Its rollouts against the real geometry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tensordict import TensorDict
from torchrl.data import Bounded

from torchrl_grasp.world_models.exploration import HeldRandomActionPolicy
from torchrl_grasp.world_models.validation import Model


@dataclass(frozen=True)
class ObstacleCheck:
    """The share of rollouts that went through an obstacle, in the model and in the real env.

    Attributes:
        model_rate (float): share of the model's rollouts with a violation.
        real_rate (float): the same for the real dynamics from the same starts and actions
            (zero for a correct check).
        num_rollouts (int): rollouts.
        steps (int): steps per rollout.
        tolerance (float): how deep inside an obstacle a state must be to count.

    Examples:
        >>> from torchrl_grasp.envs import WallDoorEnv
        >>> check = obstacle_violations(lambda s, a: s + 0.05 * a, WallDoorEnv(), num_rollouts=100, steps=40)
        >>> check.num_rollouts, check.steps, check.tolerance, check.real_rate
        (100, 40, 0.01, 0.0)
    """

    model_rate: float
    real_rate: float
    num_rollouts: int
    steps: int
    tolerance: float


def deep_inside(task, points: np.ndarray, tolerance: float) -> np.ndarray:
    """Whether each point ``[..., 2]`` and its 4 neighbours ``tolerance`` away on the axes are all blocked.

    Examples:
        >>> from torchrl_grasp.envs import WallDoorEnv
        >>> task = WallDoorEnv(wall_thickness=0.05)  # the wall: |x| < 0.025, but for the door
        >>> points = np.array([[0.0, -0.8], [0.02, -0.8], [0.0, task.door_center], [0.5, -0.8]])
        >>> deep_inside(task, points, tolerance=0.01).tolist()  # mid-wall, its skin, the door, free space
        [True, False, False, False]
    """
    flat = points.reshape(-1, 2)
    offsets = tolerance * np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]], dtype=np.float64)
    inside = np.all([task.blocked(flat + offset) for offset in offsets], axis=0)
    return inside.reshape(points.shape[:-1])


def _violations(task, before: np.ndarray, after: np.ndarray, tolerance: float) -> np.ndarray:
    """Steps ``before -> after`` ``[N, 2]`` that pass deeper than ``tolerance`` into an obstacle, ``[N]``.

    The step is checked at points ``tolerance / 2`` or less apart along it.
    """
    length = np.linalg.norm(after - before, axis=-1).max(initial=0.0)
    fractions = np.linspace(0.0, 1.0, int(np.ceil(2 * length / tolerance)) + 2)
    points = before[:, None] + fractions[None, :, None] * (after - before)[:, None]
    return deep_inside(task, points, tolerance).any(-1)


@torch.no_grad()
def obstacle_violations(
    model: Model,
    task,
    *,
    num_rollouts: int = 2_000,
    steps: int = 100,
    tolerance: float = 0.01,
    max_hold_steps: int = 30,
    seed: int = 0,
) -> ObstacleCheck:
    """Rolls out the model and the real dynamics under held random actions from random free starts.

    A rollout violates the obstacles when one of its steps passes deeper than ``tolerance`` into an
    obstacle: a point of the segment from one state to the next and its four neighbours at
    ``tolerance`` along the axes are all inside. A smooth model cuts the corners of obstacles a
    little, which ``tolerance`` forgives; it catches a point that creeps or jumps through a wall
    (thicker than ``2 * tolerance``). Held actions
    (:class:`HeldRandomActionPolicy`) push into walls for many steps in a row, where a model
    that leaks a little per step creeps through.

    Args:
        model (callable): ``model(state [N, 2], action [N, 2]) -> next_state [N, 2]``.
        task: a point-mass task, :class:`~torchrl_grasp.envs.point_mass.PointMassGoalEnv`: its
            ``blocked``, ``segment_is_free``, ``dynamics`` and ``sample_free_points``.

    Keyword Args:
        num_rollouts (int): Defaults to ``2_000``.
        steps (int): Defaults to ``100``.
        tolerance (float): Defaults to ``0.01``.
        max_hold_steps (int): the longest hold of a random action. Defaults to ``30``.
        seed (int): Defaults to ``0``.

    Examples:
        >>> from torchrl_grasp.envs import WallDoorEnv
        >>> task = WallDoorEnv()
        >>> check = obstacle_violations(lambda s, a: s + 0.05 * a, task, num_rollouts=200, steps=50)
        >>> check.real_rate, check.model_rate > 0.2  # free motion ignores the wall
        (0.0, True)
    """
    rng = np.random.default_rng(seed)
    half = num_rollouts // 2
    starts = np.concatenate(
        [task.sample_free_points(rng, half, 0), task.sample_free_points(rng, num_rollouts - half, 1)]
    )
    policy = HeldRandomActionPolicy(
        Bounded(-1.0, 1.0, (2,)), max_hold_steps=max_hold_steps, generator=torch.Generator().manual_seed(seed)
    )
    model_states, real_states = torch.as_tensor(starts, dtype=torch.float32), starts
    model_bad = np.zeros(num_rollouts, dtype=bool)
    real_bad = np.zeros(num_rollouts, dtype=bool)
    for _ in range(steps):
        actions = policy(TensorDict(batch_size=[num_rollouts]))["action"]
        next_model = model(model_states, actions)
        next_real = task.dynamics(real_states, actions.numpy())
        model_bad |= _violations(task, model_states.double().numpy(), next_model.double().numpy(), tolerance)
        real_bad |= _violations(task, real_states, next_real, tolerance)
        model_states, real_states = next_model, next_real
    return ObstacleCheck(float(model_bad.mean()), float(real_bad.mean()), num_rollouts, steps, tolerance)
