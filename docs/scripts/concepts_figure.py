"""Draws ``docs/figures/concepts.png`` from a real GRASP run on the analytic wall world.

One start/goal pair on opposite sides of :class:`~torchrl_grasp.world_models.analytic.SmoothWallDoor`'s
wall (its door is ``|y| < 0.15`` at ``x = 0``), GRASP with 8 restarts, horizon 60 and the early stop.
Three panels:

1. the restarts' initial virtual states: the first on the straight line to the goal, the others
   bent by a random half sine (``restart_spread``);
2. the virtual states of the restart that was returned: the initial line, after the first sync
   (iteration 50) and at the end, and the model's serial rollout of the returned actions;
3. the collocation loss per iteration, with the syncs and the early stop.

Run from the repository root (a few seconds on one core)::

    python docs/scripts/concepts_figure.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from tensordict import TensorDict  # noqa: E402
from torchrl.data import Bounded, Unbounded  # noqa: E402

from torchrl_grasp import GDSync, GRASPPlanner, TransitionModelEnv  # noqa: E402
from torchrl_grasp.demo.recording import IterateRecorder  # noqa: E402
from torchrl_grasp.world_models.analytic import SmoothWallDoor  # noqa: E402

HORIZON, RESTARTS, SYNC_EVERY, STEPS = 60, 8, 50, 300


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "figures" / "concepts.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    world = SmoothWallDoor()
    env = TransitionModelEnv(world, Unbounded(2), Bounded(-1.0, 1.0, (2,)))
    planner = GRASPPlanner(
        env,
        HORIZON,
        STEPS,
        lr_states=0.01,
        lr_actions=0.05,
        num_restarts=RESTARTS,
        sync=GDSync(every=SYNC_EVERY),
        stop_distance=0.02,
        callback=(recorder := IterateRecorder([0, SYNC_EVERY])),
    )
    task = TensorDict(observation=torch.tensor([-0.5, 0.4]), goal=torch.tensor([0.5, 0.4]))
    result = planner.plan(task)
    best = int(result.restart)
    start, goal = task["observation"], task["goal"]
    print(
        f"goal distance {float(result.goal_distance):.4f} after {len(result.loss_history)} iterations "
        f"(restart {best} of {RESTARTS})"
    )

    figure, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    for axis in axes[:2]:
        _draw_world(axis, world, start, goal)

    axis = axes[0]
    initial = recorder.iterates[0]["observation"]
    for restart in range(RESTARTS):
        path = torch.cat([start[None], initial[restart]])
        axis.plot(
            path[:, 0],
            path[:, 1],
            lw=1.2,
            color="C0" if restart == 0 else "C1",
            alpha=0.9,
            label="first restart: the line"
            if restart == 0
            else ("others: bent lines" if restart == 1 else None),
        )
    axis.set_title("1. restarts: initial virtual states")
    axis.legend(loc="lower left", fontsize=8)

    axis = axes[1]
    recorded = sorted({0, SYNC_EVERY, max(recorder.iterates)})
    colours = plt.cm.viridis(torch.linspace(0.0, 0.85, len(recorded)).numpy())
    for colour, iteration in zip(colours, recorded):
        path = torch.cat([start[None], recorder.iterates[iteration]["observation"][best]])
        axis.plot(
            path[:, 0],
            path[:, 1],
            ".-",
            ms=2.5,
            lw=0.8,
            color=colour,
            label=f"virtual states, iteration {iteration}",
        )
    rollout = result.rollout["observation"]
    axis.plot(rollout[:, 0], rollout[:, 1], color="crimson", lw=2, label="model rollout of the plan")
    axis.set_title(f"2. the returned restart's virtual states (sync every {SYNC_EVERY})")
    axis.legend(loc="lower left", fontsize=7)

    axis = axes[2]
    history = result.loss_history
    axis.semilogy(range(1, len(history) + 1), history, color="k", lw=1)
    for sync in range(SYNC_EVERY, len(history) + 1, SYNC_EVERY):
        axis.axvline(sync, color="C2", lw=0.8, ls="--", label="sync" if sync == SYNC_EVERY else None)
    if len(history) < STEPS:
        axis.axvline(
            len(history), color="crimson", lw=1.5, label=f"early stop (stop_distance={planner.stop_distance})"
        )
    axis.set_xlim(0, STEPS)
    axis.set_xlabel("iteration")
    axis.set_title("3. collocation loss (mean over restarts)")
    axis.legend(fontsize=8)

    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


def _draw_world(axis, world: SmoothWallDoor, start: torch.Tensor, goal: torch.Tensor) -> None:
    """Shades where the wall slows x-motion (``1 - gate_x``), and marks the start and the goal."""
    grid = torch.linspace(-1, 1, 201)
    y, x = torch.meshgrid(grid, grid, indexing="ij")
    state = torch.stack([x, y], -1)
    with torch.no_grad():
        moved = world(state, torch.tensor([1.0, 0.0]).expand_as(state))
    gate = (moved[..., 0] - x) / world.dt
    axis.imshow(1 - gate, extent=(-1, 1, -1, 1), origin="lower", cmap="Greys", vmin=0, vmax=1.6)
    axis.plot(*start, "o", color="C0", ms=8)
    axis.plot(*goal, "*", color="green", ms=13)
    axis.set_xlim(-0.9, 0.9)
    axis.set_ylim(-0.9, 0.9)
    axis.set_aspect("equal")


if __name__ == "__main__":
    main()
