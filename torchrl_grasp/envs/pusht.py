"""``PushTState-v0``: Push-T (``gym-pusht``) from its Markov state, with settable start and goal.

Needs the ``pusht`` extra: ``pip install torchrl-grasp[pusht]`` (``gym-pusht``, which brings
pymunk, pygame, opencv and shapely).

What the package does, and what this wrapper changes (read from ``gym_pusht/envs/pusht.py``):

* Its ``obs_type="state"`` observation ``[agent_x, agent_y, block_x, block_y, block_angle]`` leaves
  out the agent's velocity, which its PD controller carries from step to step. The block's
  velocity need not be observed: the space's ``damping=0`` wipes it at every physics sub-step.
  So ``[*state, agent_vx, agent_vy]`` is Markov, and it is the observation here.
* ``reset(options={"reset_to_state": ...})`` sets the block's position *before* its angle; the
  block's centre of gravity is not its origin, so the rotation moves it, and the reset then runs a
  physics step. The state does not round-trip. Here the agent's position and velocity, then the
  block's angle, then its position are set on a fresh space, with no physics step: the
  observation after ``reset(options={"start": s})`` is exactly ``s``. Replaying a step from an
  observed state reproduces the original to about 1e-4 px without contact; with contact, to
  within about 1 px, as pymunk warm-starts contacts with impulses cached from the previous step,
  which a state does not carry.
* The goal pose is fixed at ``(256, 256, pi / 4)`` by ``_setup()``, which every reset calls, but it is
  a plain attribute (``goal_pose``) that coverage, success and rendering all read. Setting it after
  the reset moves the goal, so goals can be chosen freely.
* Success is the package's: the T covers more than 95 % of the goal T (``info["is_success"]``,
  ``terminated``); the reward is the package's too, ``clip(coverage / 0.95, 0, 1)``, not a distance.

And what it adds: ``observation_format="normalized"`` observes the state (and the goal) in the
form where Euclidean distances mean something (:mod:`~torchrl_grasp.envs.pusht_coordinates`),
for planners and learned models; :meth:`PushTStateEnv.sample_task` draws tasks of a given
horizon, whose goal a scripted pushing policy (:mod:`~torchrl_grasp.envs.pusht_pushing`) reaches.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from torchrl_grasp.envs.pusht_coordinates import ARENA_SIZE, NORMALIZED_SIZE, STATE_SIZE, normalize_state
from torchrl_grasp.envs.pusht_pushing import BlockPushingPolicy

AGENT_RADIUS = 15.0  # the package's agent disc
PACKAGE_GOAL_POSE = (256.0, 256.0, np.pi / 4)
OBSERVATION_SIZES = {"pixels": STATE_SIZE, "normalized": NORMALIZED_SIZE}


def _import_pusht():
    """gym_pusht's ``PushTEnv`` and ``pymunk_to_shapely``, shapely's ``Point``; or an ImportError."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        from gym_pusht.envs.pusht import PushTEnv, pymunk_to_shapely
        from shapely.geometry import Point
    except ImportError as err:
        raise ImportError(
            "PushTState-v0 needs gym-pusht: pip install 'torchrl-grasp[pusht]' (or 'gym-pusht')."
        ) from err
    return PushTEnv, pymunk_to_shapely, Point


def _as_state(values) -> np.ndarray:
    """``values`` ``[7]`` as float64 holding float32 numbers, the block angle wrapped to ``[0, 2 pi)``."""
    state = np.asarray(values, dtype=np.float64).copy()
    state[4] %= 2 * np.pi
    state = state.astype(np.float32).astype(np.float64)  # the observation repeats the state exactly
    state[4] %= 2 * np.pi
    return state


class PushTStateEnv(gym.Env):
    """Push-T from its state, with start and goal set exactly through ``reset`` options.

    State (``"observation"``, float32 ``[7]``): ``[agent_x, agent_y, block_x, block_y,
    block_angle, agent_vx, agent_vy]``, in the package's pixels (``[0, 512]``) and radians
    (``block_angle`` wrapped to ``[0, 2 pi)``). ``"goal"`` has the same layout; only its block pose
    ``goal[2:5]`` decides success, the rest is carried for planners that compare whole states.

    An action ``a`` in ``[-1, 1]^2`` moves the PD controller's target to
    ``clip(agent_position + max_target_offset * a, 0, 512)`` (the package's action is that target).

    With ``observation_format="normalized"``, ``"observation"`` and ``"goal"`` are float32 ``[8]``
    instead, the :func:`~torchrl_grasp.envs.pusht_coordinates.normalize_state` of those states;
    the reset options stay in pixels and radians.

    ``reset(options={"start": [7], "goal": [7]})`` sets either or both. Without a start, one is
    drawn from ``np_random`` like the package's (agent in ``[50, 450)^2``, block in
    ``[100, 400)^2``, any angle, zero velocity); without a goal, the block goal is the package's
    ``(256, 256, pi / 4)`` and the agent part is the start's agent position at rest.
    A start whose agent centre lies within half the agent's radius of the T is rejected.

    Keyword Args:
        max_target_offset (float): PD target distance, in pixels, for a full action.
            Defaults to ``50.0``.
        success_coverage (float): coverage of the goal above which the episode succeeds.
            Defaults to ``0.95``, the package's.
        render_mode (str, optional): ``"rgb_array"`` or ``None``. Defaults to ``None``.
        render_size (int): side of the rendered image (the package's drawing, resized). Defaults to ``64``.
        observation_format (str): ``"pixels"`` (the state ``[7]`` as above) or ``"normalized"``
            (its normalised form ``[8]``). Defaults to ``"pixels"``.

    Examples:
        >>> import pytest
        >>> _ = pytest.importorskip("gym_pusht")
        >>> env = PushTStateEnv()
        >>> start = np.array([100.0, 100.0, 300.0, 300.0, 1.0, 0.0, 0.0], np.float32)
        >>> obs, info = env.reset(options={"start": start})
        >>> bool((obs["observation"] == start).all()), obs["goal"][2:5]  # the package's goal pose by default
        (True, array([256.       , 256.       ,   0.7853982], dtype=float32))
        >>> obs, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0], np.float32))
        >>> bool(obs["observation"][5] > 0), bool(info["is_success"])  # the agent accelerates to the right
        (True, False)
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        *,
        max_target_offset: float = 50.0,
        success_coverage: float = 0.95,
        render_mode: str | None = None,
        render_size: int = 64,
        observation_format: str = "pixels",
    ):
        pusht_class, self._block_geometry, self._point = _import_pusht()
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}."
            )
        if observation_format not in OBSERVATION_SIZES:
            raise ValueError(
                f"observation_format must be one of {sorted(OBSERVATION_SIZES)}, got {observation_format!r}."
            )
        self.pusht = pusht_class(
            obs_type="state",
            render_mode="rgb_array",
            observation_width=render_size,
            observation_height=render_size,
            visualization_width=render_size,
            visualization_height=render_size,
        )
        self.pusht.success_threshold = float(success_coverage)
        self.max_target_offset = float(max_target_offset)
        self.render_mode = render_mode
        self.render_size = int(render_size)
        self.observation_format = observation_format
        state = spaces.Box(-np.inf, np.inf, shape=(OBSERVATION_SIZES[observation_format],), dtype=np.float32)
        self.observation_space = spaces.Dict({"observation": state, "goal": state})
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._goal: np.ndarray | None = None
        self._task_simulator: PushTStateEnv | None = None

    def _check_state(self, name: str, value: Any) -> np.ndarray:
        state = np.asarray(value, dtype=np.float64)
        if state.shape != (7,):
            raise ValueError(f"options[{name!r}] must have shape (7,), got {state.shape}.")
        if not np.isfinite(state).all():
            raise ValueError(f"options[{name!r}] must be finite, got {state}.")
        positions = state[:4]
        if ((positions < 0) | (positions > ARENA_SIZE)).any():
            raise ValueError(
                f"options[{name!r}] positions (agent, block) must lie in [0, {ARENA_SIZE}], got {positions}."
            )
        return _as_state(state)

    def _set_state(self, state: np.ndarray) -> None:
        """Set the physics to ``state`` on a fresh space; the block's angle before its position."""
        self.pusht._setup()
        self.pusht._last_action = None
        self.pusht.agent.position = state[:2].tolist()
        self.pusht.agent.velocity = state[5:7].tolist()
        self.pusht.block.angle = float(state[4])
        self.pusht.block.position = state[2:4].tolist()
        self.pusht.block.velocity = (0.0, 0.0)
        self.pusht.block.angular_velocity = 0.0

    def _agent_overlaps_block(self) -> bool:
        block = self._block_geometry(self.pusht.block, self.pusht.block.shapes)
        agent = self.pusht.agent.position
        return block.distance(self._point(agent.x, agent.y)) < AGENT_RADIUS / 2

    def _observe(self) -> dict[str, np.ndarray]:
        state = np.concatenate([self.pusht.get_obs(), np.asarray(self.pusht.agent.velocity)])
        goal = self._goal
        if self.observation_format == "normalized":
            state, goal = normalize_state(state), normalize_state(goal)
        return {"observation": state.astype(np.float32), "goal": goal.astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"start", "goal"}
        if unknown:
            raise ValueError(f"Unknown reset options {sorted(unknown)}; expected 'start' and/or 'goal'.")
        if options.get("start") is not None:
            start = self._check_state("start", options["start"])
            self._set_state(start)
            if self._agent_overlaps_block():
                raise ValueError(f"options['start'] puts the agent inside the block: {start}.")
        else:
            start = self._random_start(self.np_random)
        if options.get("goal") is not None:
            self._goal = self._check_state("goal", options["goal"])
        else:
            self._goal = _as_state([*start[:2], *PACKAGE_GOAL_POSE, 0.0, 0.0])
        self.pusht.goal_pose = self._goal[2:5].copy()
        coverage = self.pusht._get_coverage()
        info = {"is_success": np.bool_(coverage > self.pusht.success_threshold), "coverage": coverage}
        return self._observe(), info

    def _random_start(self, rng: np.random.Generator) -> np.ndarray:
        """A random start (see the class docstring), left set in the physics."""
        for _ in range(1000):
            agent, block = rng.integers(50, 450, size=2), rng.integers(100, 400, size=2)
            start = _as_state([*agent, *block, rng.uniform(0.0, 2 * np.pi), 0.0, 0.0])
            self._set_state(start)
            if not self._agent_overlaps_block():
                return start
        raise RuntimeError("Could not draw a start with the agent clear of the block.")

    def sample_demonstration(
        self, rng: np.random.Generator | int | None, horizon: int, *, max_start_coverage: float = 0.8
    ) -> tuple[np.ndarray, np.ndarray]:
        """``horizon`` steps of :class:`~torchrl_grasp.envs.pusht_pushing.BlockPushingPolicy` from a random
        start, that move the block: the states ``[horizon + 1, 7]`` and the actions ``[horizon, 2]``, float32.

        A demonstration is kept when the block at the start covers at most ``max_start_coverage``
        of the block at the end (and every position stays in the arena); otherwise another
        start is drawn. Replaying the actions after ``reset(options={"start": states[0]})``
        reproduces the states exactly. The rollout runs on a private copy of the env, so this
        env's episode is untouched.

        Args:
            rng (np.random.Generator, int or None): random generator, or a seed for one.
            horizon (int): steps.

        Keyword Args:
            max_start_coverage (float): the most the start may already cover of the goal.
                Defaults to ``0.8``: a block that slid by about 8 pixels or turned by about 0.12 rad
                (success, ``0.95``, is about 2 pixels or 0.03 rad).

        Raises:
            RuntimeError: when 100 starts in a row gave no demonstration that moves the block enough.
        """
        rng = np.random.default_rng(rng)
        simulator = self._simulator()
        for _ in range(100):
            policy = BlockPushingPolicy(rng, max_target_offset=self.max_target_offset)
            obs, _ = simulator.reset(options={"start": simulator._random_start(rng)})
            states, actions = [obs["observation"]], []
            for _ in range(horizon):
                actions.append(policy(states[-1]))
                obs, *_ = simulator.step(actions[-1])
                states.append(obs["observation"])
            try:
                _, info = simulator.reset(options={"start": states[0], "goal": states[-1]})
            except ValueError:  # the agent overshot the arena's edge
                continue
            if info["coverage"] <= max_start_coverage:
                return np.stack(states), np.stack(actions)
        raise RuntimeError(
            f"No {horizon}-step demonstration moved the block below a start coverage of {max_start_coverage}."
        )

    def sample_task(
        self, rng: np.random.Generator | int | None, horizon: int, *, max_start_coverage: float = 0.8
    ) -> tuple[np.ndarray, np.ndarray]:
        """A (start, goal) pair, physical states float32 ``[7]``, that ``horizon`` steps of pushing connect.

        The first and last states of :meth:`sample_demonstration`: a solution of ``horizon``
        steps exists (the scripted one), and the start is not already a success (it covers at most
        ``max_start_coverage`` of the goal's block). As DINO-WM and GRASP evaluate Push-T, the goal is
        a whole state, agent included, though success only asks for the block's pose.

        Examples:
            >>> import pytest
            >>> _ = pytest.importorskip("gym_pusht")
            >>> env = PushTStateEnv()
            >>> start, goal = env.sample_task(0, horizon=20)
            >>> start.shape, goal.dtype
            ((7,), dtype('float32'))
            >>> _, info = env.reset(options={"start": start, "goal": goal})
            >>> bool(info["coverage"] <= 0.8)
            True
        """
        states, _ = self.sample_demonstration(rng, horizon, max_start_coverage=max_start_coverage)
        return states[0], states[-1]

    def _simulator(self) -> PushTStateEnv:
        """The private env (in pixels) that :meth:`sample_demonstration` rolls out on, made once."""
        if self._task_simulator is None:
            self._task_simulator = PushTStateEnv(
                max_target_offset=self.max_target_offset, success_coverage=self.pusht.success_threshold
            )
        return self._task_simulator

    def step(self, action):
        if self._goal is None:
            raise RuntimeError("Call reset() before step().")
        offset = self.max_target_offset * np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        target = np.clip(np.asarray(self.pusht.agent.position) + offset, 0.0, ARENA_SIZE)
        _, reward, terminated, _, package_info = self.pusht.step(target)
        info = {"is_success": np.bool_(package_info["is_success"]), "coverage": package_info["coverage"]}
        return self._observe(), float(reward), bool(terminated), False, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self.pusht._render(visualize=False)  # the package's drawing, without the action marker

    def close(self):
        self.pusht.close()
        if self._task_simulator is not None:
            self._task_simulator.close()
