"""Gymnasium environments for long-horizon goal reaching, and their TorchRL form.

Importing this package registers (once; importing again is harmless):

* ``WallDoor-v0`` (:class:`WallDoorEnv`, vector: :class:`WallDoorVectorEnv`): cross a wall through a door.
* ``ObstacleNav-v0`` (:class:`ObstacleNavEnv`, vector: :class:`ObstacleNavVectorEnv`): "ball navigation"
  between circular obstacles.
* ``PushTState-v0`` (:class:`PushTStateEnv`): Push-T from its state (or its normalised form), with
  tasks that a scripted pusher solves in a given horizon; needs the ``pusht`` extra
  (``pip install torchrl-grasp[pusht]``).
* ``ReacherGoal-v0`` (:func:`~torchrl_grasp.envs.flat_goal.make_reacher_goal`): gymnasium's
  ``Reacher-v5`` as a goal env, the fingertip to the target; needs MuJoCo (the ``robotics`` extra).

Every env observes ``{"observation": state, "goal": state-shaped goal}`` in float32, acts in
``[-1, 1]^d`` and reports ``info["is_success"]``; ``reset(options={"start": ..., "goal": ...})`` sets
both exactly. :func:`make_env` returns the TorchRL env.

Examples:
    >>> import gymnasium as gym
    >>> import torchrl_grasp.envs
    >>> env = gym.make("WallDoor-v0")
    >>> env.spec.max_episode_steps, sorted(env.observation_space.spaces)
    (200, ['goal', 'observation'])
"""

import gymnasium

from torchrl_grasp.envs.obstacles import DEFAULT_DISCS, ObstacleNavEnv, ObstacleNavVectorEnv
from torchrl_grasp.envs.point_mass import PointMassGoalEnv, PointMassVectorEnv
from torchrl_grasp.envs.pusht import PushTStateEnv  # gym-pusht itself is imported when an env is made
from torchrl_grasp.envs.torchrl_env import make_env
from torchrl_grasp.envs.walldoor import WallDoorEnv, WallDoorVectorEnv

_REGISTRATIONS = {
    "WallDoor-v0": {
        "entry_point": "torchrl_grasp.envs.walldoor:WallDoorEnv",
        "vector_entry_point": "torchrl_grasp.envs.walldoor:WallDoorVectorEnv",
        "max_episode_steps": 200,
    },
    "ObstacleNav-v0": {
        "entry_point": "torchrl_grasp.envs.obstacles:ObstacleNavEnv",
        "vector_entry_point": "torchrl_grasp.envs.obstacles:ObstacleNavVectorEnv",
        "max_episode_steps": 200,
    },
    "PushTState-v0": {"entry_point": "torchrl_grasp.envs.pusht:PushTStateEnv", "max_episode_steps": 300},
    # Reacher-v5 (MuJoCo, the robotics extra) as a goal env; its own time limit (50 steps) applies.
    "ReacherGoal-v0": {"entry_point": "torchrl_grasp.envs.flat_goal:make_reacher_goal"},
}


def register_envs() -> None:
    """Register this package's env ids with gymnasium, skipping those already registered.

    Importing :mod:`torchrl_grasp.envs` calls it; calling it again changes nothing.

    Examples:
        >>> count = len(gymnasium.registry)
        >>> register_envs()
        >>> len(gymnasium.registry) == count, gymnasium.spec("PushTState-v0").max_episode_steps
        (True, 300)
    """
    for env_id, spec in _REGISTRATIONS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, **spec)


register_envs()

__all__ = [
    "DEFAULT_DISCS",
    "ObstacleNavEnv",
    "ObstacleNavVectorEnv",
    "PointMassGoalEnv",
    "PointMassVectorEnv",
    "PushTStateEnv",
    "WallDoorEnv",
    "WallDoorVectorEnv",
    "make_env",
    "register_envs",
]
