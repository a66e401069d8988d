"""The one-setting-at-a-time sweep quoted in the tuning guide (``docs/tuning.md``).

16 wall-crossing tasks of :class:`~torchrl_grasp.world_models.analytic.SmoothWallDoor`
(``wall_crossing_pairs(16)``), horizon 60, planned as one batch of 16 by GRASP with 300
iterations and no early stop. The base settings are ``lr_states=0.01, lr_actions=0.05,
num_restarts=4`` and the method's defaults otherwise; each row changes one setting. A task is
reached when the model's rollout ends within 0.05 of its goal.

Run from the repository root (about a minute on one core)::

    python docs/scripts/tuning_sweep.py
"""

from __future__ import annotations

import time

import torch
from torchrl.data import Bounded, Unbounded

from torchrl_grasp import CEMSync, GDSync, GRASPPlanner, TransitionModelEnv
from torchrl_grasp.world_models.analytic import SmoothWallDoor, wall_crossing_pairs

BASE = dict(lr_states=0.01, lr_actions=0.05, num_restarts=4)
CHANGES = [
    {},
    dict(lr_states=0.1, lr_actions=0.005),
    dict(lr_states=0.1),
    dict(lr_actions=0.005),
    dict(lr_states=0.002),
    dict(state_noise_std=0.0),
    dict(state_noise_std=0.05),
    dict(goal_weight=0.0),
    dict(goal_weight=0.3),
    dict(goal_weight=3.0),
    dict(sync=None),
    dict(sync=CEMSync()),
    dict(sync=GDSync(every=25)),
    dict(sync=GDSync(every=300)),
    dict(num_restarts=1),
    dict(num_restarts=8),
    dict(restart_spread=0.0),
]


def main() -> None:
    torch.set_num_threads(1)
    env = TransitionModelEnv(SmoothWallDoor(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
    tasks = wall_crossing_pairs(16)
    print("| change from the base | reached | median distance | s per batch | model calls |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for change in CHANGES:
        planner = GRASPPlanner(env, 60, **{**BASE, **change})
        began = time.perf_counter()
        result = planner.plan(tasks)
        seconds = time.perf_counter() - began
        distance = result.goal_distance
        name = ", ".join(f"`{key}={value!r}`" for key, value in change.items()) or "(base)"
        print(
            f"| {name} | {int((distance < 0.05).sum())}/16 | {float(distance.median()):.3f} | {seconds:.1f} "
            f"| {result.model_calls} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
