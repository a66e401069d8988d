"""Tasks drawn by an env's own reset: a seed per task, the start and goal read from the first observation."""

from __future__ import annotations

import gymnasium
import numpy as np

from torchrl_grasp.benchmark.episodes import Task


def seeded_task(env: gymnasium.Env, rng: np.random.Generator, horizon: int) -> Task:
    """A task of a goal env whose reset samples the goal (``ReacherGoal-v0``): a seed from ``rng``;
    the start and goal are the achieved and desired goals after that reset (``horizon`` is not used).

    Examples:
        >>> import torchrl_grasp.envs
        >>> from torchrl_grasp.envs.flat_goal import FlatGoal
        >>> walldoor = gymnasium.make("WallDoor-v0").unwrapped  # its reset draws a random start and goal
        >>> env = FlatGoal(walldoor, lambda o: o["observation"], lambda o: o["goal"], 0.05)
        >>> task = seeded_task(env, np.random.default_rng(0), horizon=40)
        >>> sorted(task.reset), task.start.shape, task.goal.shape
        (['seed'], (2,), (2,))
    """
    seed = int(rng.integers(2**31))
    observation, _ = env.reset(seed=seed)
    return Task({"seed": seed}, observation["achieved_goal"], observation["desired_goal"])
