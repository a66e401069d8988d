"""The benchmark's environments: the real env, its learned world model, and tasks of a given horizon."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium
import numpy as np

import torchrl_grasp.envs  # noqa: F401  (registers the env ids)

from torchrl_grasp.benchmark.views import PixelView, StateView
from torchrl_grasp.dreamer.rssm import RSSMSize
from torchrl_grasp.dreamer.training import PixelModelConfig, load_or_train_pixel_model
from torchrl_grasp.world_models.learned import PUSHT_MODEL, ModelConfig, load_or_train, point_mass_model


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
        planner_settings (dict): planner name -> settings that replace the published ones on
            this tier (see :func:`~torchrl_grasp.benchmark.planners.make_planner`).

    Examples:
        >>> walldoor = SUITE["walldoor"]
        >>> walldoor.env_id, walldoor.env_kwargs, walldoor.success_threshold
        ('WallDoor-v0', {'max_step': 0.025}, 0.05)
        >>> (start, goal), _ = walldoor.sample_tasks(horizon=40, count=2, seed=0)
        >>> [round(float(x), 2) for x in start], [round(float(x), 2) for x in goal]  # either side of x = 0
        ([-0.59, -0.31], [0.14, 0.43])
        >>> bool((walldoor.sample_tasks(40, 2, seed=0)[0][0] == start).all())  # the seed fixes the tasks
        True
    """

    name: str
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig | None = None
    pixel_model: PixelModelConfig | None = None
    planner_settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def load_view(self, *, progress: bool = True) -> StateView | PixelView:
        """The tier's world model, loaded from the cache or trained, as its planners see it."""
        if self.pixel_model is not None:
            return PixelView(load_or_train_pixel_model(self.pixel_model, progress=progress))
        return StateView.of(load_or_train(self.model, progress=progress))

    def gym_env(self) -> gymnasium.Env:
        """The real env, as gymnasium makes it (unwrapped)."""
        return gymnasium.make(self.env_id, **self.env_kwargs).unwrapped

    def check_installed(self) -> None:
        """Makes and closes the real env once: an env whose optional dependencies are missing
        raises its ImportError (which names the extra to install) here, before any training."""
        self.gym_env().close()

    @property
    def success_threshold(self) -> float | None:
        """The real env's success radius; ``None`` where success is not a distance to the goal
        (Push-T's is the block's coverage of the goal block)."""
        env = self.gym_env()
        try:
            return getattr(env, "success_threshold", None)
        finally:
            env.close()

    def sample_tasks(self, horizon: int, count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``count`` (start, goal) pairs of ``horizon`` steps, the env's own ``sample_task``, reproducible
        from ``seed``: for the point masses, the shortest path needs about ``horizon`` steps and is not
        a straight line; for Push-T, ``horizon`` steps of a scripted pusher lead from start to goal."""
        env = self.gym_env()
        rng = np.random.default_rng([seed, horizon])
        try:
            return [env.sample_task(rng, horizon) for _ in range(count)]
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
    "pusht": BenchmarkEnv("pusht", "PushTState-v0", dict(PUSHT_MODEL.env_kwargs), PUSHT_MODEL),
    # The planners see 64 x 64 images of WallDoor and plan in a Dreamer world model's latent space.
    # Success within 0.1 (3 pixels): the latent holds the position to about 0.15 (its probe's error).
    # GRASP keeps the method's own learning rates there, made for latent spaces: in the latent they
    # reached goals nearer than the state tiers' (0.15 against 0.25 at H=20, docs/benchmarks.md).
    "walldoor-pixels": BenchmarkEnv(
        "walldoor-pixels",
        "WallDoor-v0",
        {**POINT_MASS_KWARGS, "success_threshold": 0.1},
        pixel_model=PixelModelConfig(env_kwargs=POINT_MASS_KWARGS),
        planner_settings={"grasp": {"lr_states": 0.1, "lr_actions": 0.005}},
    ),
}

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
        return replace(env, pixel_model=QUICK_PIXEL_MODEL)
    model = replace(
        env.model,
        collection=replace(env.model.collection, num_frames=8_000, frames_per_batch=2_000),
        network=replace(env.model.network, hidden_size=32, num_layers=2),
        training=replace(env.model.training, steps=200),
    )
    return replace(env, model=model)
