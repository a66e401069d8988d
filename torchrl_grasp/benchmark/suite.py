"""The benchmark's environments: the real env, its learned world model, and tasks of a given horizon."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium
import numpy as np

import torchrl_grasp.envs  # noqa: F401  (registers the env ids)

from torchrl_grasp.world_models.learned import PUSHT_MODEL, ModelConfig, point_mass_model


@dataclass(frozen=True)
class BenchmarkEnv:
    """One environment of the benchmark.

    Attributes:
        name (str): its name on the command line.
        env_id (str): the gymnasium id (see :mod:`torchrl_grasp.envs`).
        env_kwargs (dict): constructor arguments of the real env; the world model is trained
            on the same env.
        model (ModelConfig): the learned world model the planners plan with.
    """

    name: str
    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig | None = None

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
}


def quick(env: BenchmarkEnv) -> BenchmarkEnv:
    """The same env with a world model small enough to train in seconds (for ``--quick``)."""
    model = replace(
        env.model,
        collection=replace(env.model.collection, num_frames=8_000, frames_per_batch=2_000),
        network=replace(env.model.network, hidden_size=32, num_layers=2),
        training=replace(env.model.training, steps=200),
    )
    return replace(env, model=model)
