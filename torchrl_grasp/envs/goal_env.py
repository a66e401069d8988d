"""Any gymnasium goal env as the planners see it: the state, the goal and the env's own success.

A gymnasium-robotics goal env (``PointMaze``, ``AntMaze``, ``Fetch``) observes a dict:
``observation`` (the robot's state), ``achieved_goal`` (what the goal is compared to, a function
of the state) and ``desired_goal``, and reports ``info["success"]``. :class:`EnvLayout` names
those entries; :func:`make_goal_env` makes the TorchRL env in which

* the **state** is ``layout.model_state_keys``: the achieved goal first, then the state entries
  (a model of the env predicts all of them, so the goal can be compared to its prediction);
* the **goal** is ``("goal", achieved_key)``: the desired goal, under the key of the state
  entry it constrains, which is what the planners read
  (:func:`~torchrl_grasp.planners.problem.read_problem` takes a goal over some state keys);
* ``"is_success"`` is the env's own success signal, as a bool;
* floats are float32 and each action is repeated ``layout.frame_skip`` times.

Nothing in it is specific to one env; an env whose observation is a flat array has no goal
entries (``goal_key=None``) and plans by reward or with a goal over its whole state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium
import numpy as np
import torch
from tensordict import NestedKey
from torchrl.envs import Compose, DoubleToFloat, EnvBase, GymWrapper, RenameTransform, TransformedEnv

from torchrl_grasp.envs.torchrl_env import SUCCESS_KEY, read_success, sync_vector_env

GOAL_KEY = "goal"


@dataclass(frozen=True)
class EnvLayout:
    """Which entries of a gymnasium env's observation are the state, the goal and what it is compared to.

    Args:
        state_keys (tuple of str): the observation entries the world model predicts besides the
            achieved goal. Defaults to ``("observation",)``.
        goal_key (str, optional): the entry holding the desired goal; ``None`` for an env
            without one. Defaults to ``"desired_goal"``.
        achieved_key (str, optional): the entry the goal is compared to. Defaults to
            ``"achieved_goal"``.
        success_key (str, optional): the ``info`` entry that says the task is solved (copied to
            ``"is_success"``); ``None`` for none. Defaults to ``"success"`` (gymnasium-robotics';
            Fetch's is ``"is_success"``).
        frame_skip (int): each action is repeated this many times. Defaults to ``1``.

    Examples:
        >>> layout = EnvLayout(frame_skip=2)
        >>> layout.model_state_keys, layout.goal_entry
        (('achieved_goal', 'observation'), ('goal', 'achieved_goal'))
        >>> EnvLayout(goal_key=None, achieved_key=None).model_state_keys  # a flat env: its observation only
        ('observation',)
        >>> EnvLayout(goal_key="desired_goal", achieved_key=None)
        Traceback (most recent call last):
        ValueError: goal_key='desired_goal' needs achieved_key: the state entry the goal is compared to.
    """

    state_keys: tuple[str, ...] = ("observation",)
    goal_key: str | None = "desired_goal"
    achieved_key: str | None = "achieved_goal"
    success_key: str | None = "success"
    frame_skip: int = 1

    def __post_init__(self):
        object.__setattr__(self, "state_keys", tuple(self.state_keys))
        if not self.state_keys and self.achieved_key is None:
            raise ValueError("The layout has no state: give state_keys or achieved_key.")
        if self.goal_key is not None and self.achieved_key is None:
            raise ValueError(
                f"goal_key={self.goal_key!r} needs achieved_key: the state entry the goal is compared to."
            )
        if not isinstance(self.frame_skip, int) or self.frame_skip < 1:
            raise ValueError(f"frame_skip must be a positive int, got {self.frame_skip!r}.")

    @property
    def model_state_keys(self) -> tuple[str, ...]:
        """The state a world model of the env predicts: the achieved goal, then the state entries."""
        first = () if self.achieved_key is None else (self.achieved_key,)
        return first + tuple(key for key in self.state_keys if key != self.achieved_key)

    @property
    def goal_entry(self) -> NestedKey | None:
        """Where the env's tensordicts hold the goal: ``("goal", achieved_key)``."""
        return None if self.goal_key is None else (GOAL_KEY, self.achieved_key)

    @property
    def position_key(self) -> str:
        """The state entry a distance to the goal is measured on (the first model state key)."""
        return self.model_state_keys[0]


class SuccessInfo(gymnasium.Wrapper):
    """Copies ``info[source]`` to ``info["is_success"]`` as a ``numpy.bool_`` (what TorchRL's info
    reader takes; gymnasium-robotics reports a Python ``bool``), ``False`` where it is missing.

    Examples:
        >>> import torchrl_grasp.envs
        >>> env = SuccessInfo(gymnasium.make("WallDoor-v0"), "is_success")
        >>> _, info = env.reset(seed=0)
        >>> type(info["is_success"]).__name__
        'bool'
    """

    def __init__(self, env: gymnasium.Env, source: str):
        super().__init__(env)
        self.source = source

    def _convert(self, info: dict) -> dict:
        return {**info, SUCCESS_KEY: np.bool_(bool(info.get(self.source, False)))}

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        return observation, self._convert(info)

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, reward, terminated, truncated, self._convert(info)


def make_goal_env(
    env_id: str,
    layout: EnvLayout = EnvLayout(),
    *,
    num_envs: int | None = None,
    device: torch.device | str = "cpu",
    **kwargs,
) -> EnvBase:
    """The TorchRL env of a gymnasium env id with the state, goal and success as ``layout`` says (see the module).

    ``num_envs`` runs gymnasium's ``SyncVectorEnv`` with its autoreset off (TorchRL resets
    finished sub-envs itself), for collecting data. ``reset``'s keyword arguments go to the
    gymnasium env's (``env.reset(seed=3, options={"goal_cell": ...})``).

    Examples:
        >>> import torchrl_grasp.envs
        >>> env = make_goal_env("WallDoor-v0", EnvLayout(goal_key=None, achieved_key=None, success_key="is_success"))
        >>> td = env.reset(options={"start": [-0.5, 0.5], "goal": [0.5, 0.5]})
        >>> td["observation"].dtype, td["is_success"].shape, "goal" in td.keys()
        (torch.float32, torch.Size([]), True)
    """
    wrappers = [] if layout.success_key is None else [lambda env: SuccessInfo(env, layout.success_key)]
    if num_envs is None:
        gym_env = gymnasium.make(env_id, **kwargs)
        for wrap in wrappers:
            gym_env = wrap(gym_env)
    else:
        gym_env = sync_vector_env(env_id, num_envs, wrappers, **kwargs)
    env = GymWrapper(gym_env, frame_skip=layout.frame_skip, device=device)
    if layout.success_key is not None:
        read_success(env)
    transforms = []
    doubles = _float64_keys(env)
    if doubles:
        transforms.append(DoubleToFloat(in_keys=doubles, in_keys_inv=["action"] if _float64_action(env) else []))
    if layout.goal_key is not None:
        transforms.append(RenameTransform([layout.goal_key], [layout.goal_entry]))
    return TransformedEnv(env, Compose(*transforms)) if transforms else env


def _float64_keys(env: EnvBase) -> Sequence[NestedKey]:
    return [key for key, spec in env.observation_spec.items(True, True) if spec.dtype == torch.float64]


def _float64_action(env: EnvBase) -> bool:
    return env.full_action_spec["action"].dtype == torch.float64
