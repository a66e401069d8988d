"""The benchmark's environments: the real env, its learned world model, and tasks of a given horizon."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import gymnasium
import numpy as np
from torch import Tensor
from torchrl.envs import EnvBase

import torchrl_grasp.envs  # noqa: F401  (registers the env ids)
from torchrl_grasp.benchmark.episodes import Task
from torchrl_grasp.benchmark.maze_tasks import MazeTasks
from torchrl_grasp.benchmark.seeded_tasks import seeded_task
from torchrl_grasp.benchmark.views import PixelView, StateView
from torchrl_grasp.dreamer.readout import ReadoutConfig, load_or_fit_position_readout
from torchrl_grasp.dreamer.rssm import RSSMSize
from torchrl_grasp.dreamer.training import PixelModelConfig, load_or_train_pixel_model
from torchrl_grasp.envs import make_env
from torchrl_grasp.envs.goal_env import EnvLayout
from torchrl_grasp.envs.pusht_coordinates import dino_wm_success, physical_state
from torchrl_grasp.world_models.learned import (
    PUSHT_MODEL,
    ModelConfig,
    default_env_factory,
    goal_env_model,
    load_or_train,
    point_mass_model,
    quick_model,
)


class SuccessTest(NamedTuple):
    """A tier's second success test, scored on each episode's final position against its goal
    (the view's :meth:`~torchrl_grasp.benchmark.views.StateView.position` and ``goal``), beside
    the real env's own.

    Examples:
        >>> test = SUITE["pusht"].second_test
        >>> test.name
        "DINO-WM's test"
    """

    name: str
    passed: Callable[[Tensor, Tensor], bool]


def _dino_wm_test(final: Tensor, goal: Tensor) -> bool:
    """DINO-WM's Push-T test on the normalised states the planners see."""
    return bool(dino_wm_success(physical_state(final.double().numpy()), physical_state(goal.double().numpy())))


@dataclass(frozen=True)
class BenchmarkEnv:
    """One environment of the benchmark.

    Attributes:
        name (str): its name on the command line.
        env_id (str): the gymnasium id (see :mod:`torchrl_grasp.envs`).
        env_kwargs (dict): constructor arguments of the real env; the world model is trained
            on the same env.
        model (ModelConfig): the learned state model the planners plan with, or ``None``.
        pixel_model (PixelModelConfig): the pixel world model whose latent space the planners plan
            in instead (the planners see images only), or ``None``.
        task_sampler (callable, optional): ``(gym_env, rng, horizon) -> Task``; defaults to the
            env's own ``sample_task`` (this package's envs).
        success_radius (float, optional): the real env's success radius where the env does not
            say it (``env.success_threshold``). Defaults to ``None``.
        package (str, optional): the module whose import registers the env id
            (``"gymnasium_robotics"``), and the extra that installs it. Defaults to ``None``.
        second_test (SuccessTest, optional): a success test reported beside the real env's own
            (Push-T: DINO-WM's, the one GRASP's paper reports). Defaults to ``None``.
        position_readout (ReadoutConfig, optional): with a pixel model, the planners reach for the
            goal image's position, read off their imagined latents by a readout fitted this way
            (:mod:`torchrl_grasp.dreamer.readout`), instead of for its latent. Defaults to ``None``.

    Examples:
        >>> walldoor = SUITE["walldoor"]
        >>> walldoor.env_id, walldoor.env_kwargs, walldoor.success_threshold
        ('WallDoor-v0', {'max_step': 0.025}, 0.05)
        >>> task, _ = walldoor.sample_tasks(horizon=40, count=2, seed=0)
        >>> [round(float(x), 2) for x in task.start], [round(float(x), 2) for x in task.goal]  # either side of x = 0
        ([-0.59, -0.31], [0.14, 0.43])
        >>> bool((walldoor.sample_tasks(40, 2, seed=0)[0].start == task.start).all())  # the seed fixes the tasks
        True
    """

    name: str
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig | None = None
    pixel_model: PixelModelConfig | None = None
    task_sampler: Callable[[gymnasium.Env, np.random.Generator, int], Task] | None = None
    success_radius: float | None = None
    package: tuple[str, str] | None = None
    second_test: SuccessTest | None = None
    position_readout: ReadoutConfig | None = None

    def load_view(self, *, progress: bool = True) -> StateView | PixelView:
        """The tier's world model, loaded from the cache or trained, as its planners see it."""
        self.register()
        if self.pixel_model is not None:
            pixel_model = load_or_train_pixel_model(self.pixel_model, progress=progress)
            readout = None
            if self.position_readout is not None:
                readout = load_or_fit_position_readout(pixel_model, self.position_readout, progress=progress)
            return PixelView(pixel_model, readout)
        return StateView.of(load_or_train(self.model, progress=progress))

    def with_ensemble(self, members: int) -> BenchmarkEnv:
        """The same tier with its state model trained as an ensemble of ``members`` networks, whose
        model env writes their disagreement for planners with a ``penalty_weight``.

        Examples:
            >>> SUITE["walldoor"].with_ensemble(5).model.network.num_members
            5
        """
        if self.model is None:
            raise ValueError(f"The {self.name} tier plans on a pixel model, which has no ensemble: leave out --ensemble.")
        return replace(self, model=replace(self.model, network=replace(self.model.network, num_members=members)))

    def with_model_seed(self, seed: int) -> BenchmarkEnv:
        """The same tier with its world model trained (or loaded) from ``seed``: another training of
        the same recipe, to see how much one trained model decides a table.

        Examples:
            >>> SUITE["walldoor"].with_model_seed(1).model.seed, SUITE["walldoor-pixels"].with_model_seed(2).pixel_model.seed
            (1, 2)
        """
        if self.pixel_model is not None:
            return replace(self, pixel_model=replace(self.pixel_model, seed=seed))
        return replace(self, model=replace(self.model, seed=seed))

    def with_pixel_model(self, config: PixelModelConfig) -> BenchmarkEnv:
        """The same tier on the pixel model of ``config`` (one of :data:`PIXEL_MODEL_RECIPES`, say);
        a tier without a pixel model is returned as it is.

        Examples:
            >>> SUITE["walldoor-pixels"].with_pixel_model(OVERSHOOTING_PIXEL_MODEL).pixel_model.overshooting_steps
            23
            >>> SUITE["walldoor"].with_pixel_model(OVERSHOOTING_PIXEL_MODEL) == SUITE["walldoor"]
            True
        """
        return self if self.pixel_model is None else replace(self, pixel_model=config)

    def real_env(self) -> EnvBase:
        """The real env as the planners' episodes run it (TorchRL), with ``"is_success"``."""
        self.register()
        if self.model is not None:
            return default_env_factory(self.model)(None)
        return make_env(self.env_id, **self.env_kwargs)

    def gym_env(self) -> gymnasium.Env:
        """The real env, as gymnasium makes it (unwrapped)."""
        self.register()
        return gymnasium.make(self.env_id, **self.env_kwargs).unwrapped

    def register(self) -> None:
        """Imports the package that registers the env id; its absence raises an ImportError naming the extra."""
        if self.package is None:
            return
        module, extra = self.package
        try:
            registering = importlib.import_module(module)
        except ImportError as error:
            raise ImportError(
                f"The {self.name} tier needs {module}: pip install 'torchrl-grasp[{extra}]'."
            ) from error
        gymnasium.register_envs(registering)

    def check_installed(self) -> None:
        """Makes and closes the real env once: an env whose optional dependencies are missing
        raises its ImportError (which names the extra to install) here, before any training."""
        self.gym_env().close()

    @property
    def success_threshold(self) -> float | None:
        """The real env's success radius; ``None`` where success is not a distance to the goal
        (Push-T's is the block's coverage of the goal block)."""
        if self.success_radius is not None:
            return self.success_radius
        env = self.gym_env()
        try:
            return getattr(env, "success_threshold", None)
        finally:
            env.close()

    def sample_tasks(self, horizon: int, count: int, seed: int) -> list[Task]:
        """``count`` tasks of ``horizon`` steps, the env's own ``sample_task``, reproducible
        from ``seed``: for the point masses, the shortest path needs about ``horizon`` steps and is not
        a straight line; for Push-T, ``horizon`` steps of a scripted pusher lead from start to goal."""
        self.register()
        env = gymnasium.make(self.env_id, **self.env_kwargs)  # wrapped: a sampler may reset it
        rng = np.random.default_rng([seed, horizon])
        try:
            if self.task_sampler is not None:
                return [self.task_sampler(env, rng, horizon) for _ in range(count)]
            return [Task.exact(*env.unwrapped.sample_task(rng, horizon)) for _ in range(count)]
        finally:
            env.close()


# Half the default step, so that paths of 80+ steps fit in the [-1, 1]^2 arena.
POINT_MASS_KWARGS = {"max_step": 0.025}

SUITE = {
    "walldoor": BenchmarkEnv(
        "walldoor", "WallDoor-v0", POINT_MASS_KWARGS, point_mass_model("WallDoor-v0", POINT_MASS_KWARGS)
    ),
    "obstacles": BenchmarkEnv(
        "obstacles", "ObstacleNav-v0", POINT_MASS_KWARGS, point_mass_model("ObstacleNav-v0", POINT_MASS_KWARGS)
    ),
    # Needs the pusht extra; planners see the normalised state, whose distances mean something.
    # DINO-WM's test beside the package's coverage test: GRASP's paper reports DINO-WM's.
    "pusht": BenchmarkEnv(
        "pusht",
        "PushTState-v0",
        dict(PUSHT_MODEL.env_kwargs),
        PUSHT_MODEL,
        second_test=SuccessTest("DINO-WM's test", _dino_wm_test),
    ),
    # The planners see 64 x 64 images of WallDoor and plan in a Dreamer world model's latent space.
    # Success within 0.1 (3 pixels): the decoded filtered latent holds the position to about 0.03;
    # the prior's open loop is off by a median 0.09 after 20 steps and 0.16 after 40 (docs/benchmarks.md).
    # GRASP's settings are every tier's: in step lengths they match the method's own learning rate
    # on the latent state, which this tier used until 2026-12-03 (docs/tuning.md, "Settings per scale").
    "walldoor-pixels": BenchmarkEnv(
        "walldoor-pixels",
        "WallDoor-v0",
        {**POINT_MASS_KWARGS, "success_threshold": 0.1},
        # Without latent overshooting: models trained with it rolled out closer to the truth and
        # planned no better; the latent goal caps this tier (docs/benchmarks.md, "The pixel model").
        pixel_model=PixelModelConfig(env_kwargs=POINT_MASS_KWARGS),
    ),
}
# PlaNet's latent overshooting over windows of 24 steps, trained twice as long; with the learning
# rate decayed to 1e-4 it drifts a third as far as the plain recipe after 40 steps (a mean 0.064
# from the truth, inside the 0.1 radius, against 0.23; about 41 minutes on one core;
# docs/benchmarks.md, "A goal position through a readout, and a model that drifts less").
OVERSHOOTING_PIXEL_MODEL = replace(
    SUITE["walldoor-pixels"].pixel_model, overshooting_steps=23, window=24, batch_size=4, train_steps=16_000
)
DECAYED_OVERSHOOTING_PIXEL_MODEL = replace(OVERSHOOTING_PIXEL_MODEL, final_lr=1e-4)
#: The pixel tiers' model recipes, by name (the benchmark's ``--pixel-model``).
PIXEL_MODEL_RECIPES = {
    "plain": SUITE["walldoor-pixels"].pixel_model,
    "overshooting": OVERSHOOTING_PIXEL_MODEL,
    "overshooting-decay": DECAYED_OVERSHOOTING_PIXEL_MODEL,
    # Training actions held up to 30 steps, not 10: data that goes farther and straighter, as plans do.
    "overshooting-decay-long-holds": replace(DECAYED_OVERSHOOTING_PIXEL_MODEL, max_hold_steps=30),
}
# The same tasks, the goal given as the goal image's position: the planners reach for it through
# a readout of their imagined latents, fitted to the model's own decoded images. Once the goal is
# a position, the model's drift decides, so this tier plans on the model that drifts least.
SUITE["walldoor-pixels-position"] = replace(
    SUITE["walldoor-pixels"],
    name="walldoor-pixels-position",
    pixel_model=DECAYED_OVERSHOOTING_PIXEL_MODEL,
    position_readout=ReadoutConfig(),
)

# Any gymnasium goal env through the generic path (torchrl_grasp.envs.goal_env): MuJoCo's
# PointMaze at an action repeat of 2, success by the env's own test (within 0.45 of the goal),
# tasks whose shortest path turns around the walls (torchrl_grasp.benchmark.maze_tasks).
POINTMAZE_LAYOUT = EnvLayout(frame_skip=2)
# Medium's maze has more walls than the recipe's network holds: a wider one trained longer leaks
# less (goal_env_model's docstring and docs/benchmarks.md give the measurement).
_POINTMAZE_SIZES = {"PointMaze_UMaze-v3": {}, "PointMaze_Medium-v3": dict(hidden_size=256, training_steps=20_000)}
for _name, _env_id in (("pointmaze-umaze", "PointMaze_UMaze-v3"), ("pointmaze-medium", "PointMaze_Medium-v3")):
    SUITE[_name] = BenchmarkEnv(
        _name,
        _env_id,
        model=goal_env_model(_env_id, POINTMAZE_LAYOUT, **_POINTMAZE_SIZES[_env_id]),
        task_sampler=MazeTasks(),
        success_radius=0.45,
        package=("gymnasium_robotics", "robotics"),
    )

# A MuJoCo arm through the same path: Reacher-v5's fingertip to its target (ReacherGoal-v0, a
# flat observation read as a goal env), success within 0.02; its episodes end at 50 steps.
SUITE["reacher"] = BenchmarkEnv(
    "reacher",
    "ReacherGoal-v0",
    model=goal_env_model("ReacherGoal-v0", EnvLayout(), input_noise_std=0.3),
    task_sampler=seeded_task,
    success_radius=0.02,
    package=("mujoco", "robotics"),
)

#: A pixel model small enough to train in seconds (``--quick``): it plans, badly.
QUICK_PIXEL_MODEL = PixelModelConfig(
    env_kwargs=POINT_MASS_KWARGS,
    size=RSSMSize(state_dim=4, belief_dim=16, hidden_dim=16, encoder_channels=2, decoder_channels=2),
    episodes=64,
    episode_steps=16,
    train_steps=20,
    batch_size=4,
    window=8,
)

QUICK_READOUT = ReadoutConfig(episodes=16, episode_steps=24, hidden=32, train_steps=50, batch_size=64)


def quick_pixel_model(config: PixelModelConfig) -> PixelModelConfig:
    """``config``'s recipe (overshooting, learning-rate decay, action holds, seed) on :data:`QUICK_PIXEL_MODEL`'s size
    and data.

    Examples:
        >>> quick_pixel_model(OVERSHOOTING_PIXEL_MODEL).overshooting_steps, quick_pixel_model(OVERSHOOTING_PIXEL_MODEL).window
        (7, 8)
    """
    overshooting = config.overshooting_steps and QUICK_PIXEL_MODEL.window - 1
    kept = {name: getattr(config, name) for name in ("final_lr", "max_hold_steps", "seed")}
    return replace(QUICK_PIXEL_MODEL, overshooting_steps=overshooting, **kept)


def quick(env: BenchmarkEnv) -> BenchmarkEnv:
    """The same env with a world model small enough to train in seconds (for ``--quick``).

    Examples:
        >>> full, tiny = SUITE["walldoor"], quick(SUITE["walldoor"])
        >>> full.model.training.steps, tiny.model.training.steps, tiny.model.network.hidden_size
        (10000, 200, 32)
        >>> tiny.env_id == full.env_id and tiny.env_kwargs == full.env_kwargs  # the same real env
        True
    """
    if env.pixel_model is not None:
        readout = None if env.position_readout is None else QUICK_READOUT
        return replace(env, pixel_model=quick_pixel_model(env.pixel_model), position_readout=readout)
    return replace(env, model=quick_model(env.model))
