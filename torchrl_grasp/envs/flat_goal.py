"""A flat-observation gymnasium env as a goal env: the achieved and desired goals read from its observation.

Gymnasium's MuJoCo arms observe one flat array with the target inside it. :class:`FlatGoal`
gives them the goal-env layout that :mod:`torchrl_grasp.envs.goal_env` reads (``observation``,
``achieved_goal``, ``desired_goal`` and ``info["success"]`` within a radius), from two slices of
the observation; ``ReacherGoal-v0`` is ``Reacher-v5`` so, with the fingertip as the achieved
goal and the target as the desired one (registered by :mod:`torchrl_grasp.envs`; it needs MuJoCo,
the ``robotics`` extra).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium
import numpy as np

Reading = Callable[[np.ndarray], np.ndarray]


class FlatGoal(gymnasium.ObservationWrapper):
    """``env``'s flat observation as ``{"observation", "achieved_goal", "desired_goal"}`` and a success radius.

    Args:
        env (gymnasium.Env): an env with a flat ``Box`` observation.
        achieved (callable): ``observation -> achieved goal``.
        desired (callable): ``observation -> desired goal``.
        success_radius (float): ``info["success"]`` is whether the goals are within it.

    Examples:
        >>> import torchrl_grasp.envs
        >>> env = FlatGoal(gymnasium.make("WallDoor-v0").unwrapped, lambda o: o["observation"], lambda o: o["goal"], 0.05)
        >>> observation, info = env.reset(options={"start": [-0.5, 0.0], "goal": [-0.47, 0.0]})
        >>> sorted(observation), info["success"]
        (['achieved_goal', 'desired_goal', 'observation'], True)
    """

    def __init__(self, env: gymnasium.Env, achieved: Reading, desired: Reading, success_radius: float):
        super().__init__(env)
        self.achieved, self.desired, self.success_radius = achieved, desired, success_radius
        sample = self._layout(env.observation_space.sample())

        def box(value):
            return gymnasium.spaces.Box(-np.inf, np.inf, np.shape(value), np.float64)

        self.observation_space = gymnasium.spaces.Dict({key: box(value) for key, value in sample.items()})

    def _layout(self, observation) -> dict:
        flat = observation if not isinstance(observation, dict) else observation.get("observation")
        return {
            "observation": np.asarray(flat, dtype=np.float64),
            "achieved_goal": np.asarray(self.achieved(observation), dtype=np.float64),
            "desired_goal": np.asarray(self.desired(observation), dtype=np.float64),
        }

    def observation(self, observation):
        return self._layout(observation)

    def _success(self, observation: dict) -> bool:
        return bool(np.linalg.norm(observation["achieved_goal"] - observation["desired_goal"]) <= self.success_radius)

    def reset(self, **kwargs):
        observation, info = super().reset(**kwargs)
        return observation, {**info, "success": self._success(observation)}

    def step(self, action):
        observation, reward, terminated, truncated, info = super().step(action)
        return observation, reward, terminated, truncated, {**info, "success": self._success(observation)}


#: Reacher-v5's observation: cos and sin of the two joints [0:4], the target [4:6], the joint
#: velocities [6:8] and the fingertip minus the target [8:11] (x, y, z).
def reacher_fingertip(observation: np.ndarray) -> np.ndarray:
    """The fingertip's ``(x, y)``: the target plus the fingertip-to-target vector."""
    return observation[4:6] + observation[8:10]


def reacher_target(observation: np.ndarray) -> np.ndarray:
    """The target's ``(x, y)``."""
    return observation[4:6]


def make_reacher_goal(success_radius: float = 0.02, **kwargs) -> gymnasium.Env:
    """``Reacher-v5`` as a goal env (``ReacherGoal-v0``): reach the target with the fingertip within ``success_radius``."""
    return FlatGoal(gymnasium.make("Reacher-v5", **kwargs), reacher_fingertip, reacher_target, success_radius)
