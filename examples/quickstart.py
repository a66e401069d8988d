"""Plan with GRASP on a small analytic world model, then run it closed loop with ``env.rollout``.

What it shows:

1. a world model ``f(state, action) -> next_state`` (here
   :class:`~torchrl_grasp.world_models.analytic.SmoothWallDoor`: a point mass, a wall at ``x = 0``
   and a door in it) becomes a TorchRL model-based env in one line (``TransitionModelEnv``);
2. ``GRASPPlanner.plan(td)`` plans the whole path from the start at ``"observation"`` to the goal
   at ``"goal"`` and says how close the model's own rollout of the plan ends (``goal_distance``);
3. a planner is a TorchRL policy: ``env.rollout(n, planner)`` replans at every step (MPC),
   warm-starting from its previous plan.

Full size (about 15 s on one core)::

    python examples/quickstart.py

Smoke run (fewer iterations per MPC step, about 10 s)::

    python examples/quickstart.py --quick
"""

from __future__ import annotations

import argparse
import time

import torch
from tensordict import TensorDict
from torchrl.data import Bounded, Unbounded

from torchrl_grasp import GRASPPlanner, TransitionModelEnv
from torchrl_grasp.world_models.analytic import SmoothWallDoor

REACHED = 0.05  # a plan "reaches" the goal when the model's rollout ends this close to it


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations per MPC step: a smoke run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    # 1. The world model as a TorchRL model-based env: the state is at "observation", the goal at "goal".
    env = TransitionModelEnv(SmoothWallDoor(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))

    # 2. One plan: from the left of the wall to the right, the door is at y = 0 (|y| < 0.15).
    horizon = 60
    planner = GRASPPlanner(
        env,
        planning_horizon=horizon,
        optim_steps=300,
        lr_states=0.01,  # the point moves at most 0.05 a step: small state steps (see the tuning guide)
        lr_actions=0.05,
        num_restarts=4,  # restarts after the first start from bent lines: other routes around the wall
        stop_distance=0.02,  # stop at the first sync whose rollout ends this close to the goal
    )
    start = TensorDict(observation=torch.tensor([-0.5, 0.4]), goal=torch.tensor([0.5, 0.4]))
    began = time.perf_counter()
    result = planner.plan(start)
    seconds = time.perf_counter() - began
    path = result.rollout["observation"]  # [T+1, 2]: the model's rollout of the plan
    crossings = ((path[:-1, 0] < 0) & (path[1:, 0] >= 0)).nonzero().flatten()  # steps that pass x = 0
    print(
        f"plan: {horizon} actions in {seconds:.2f} s, {result.model_calls} world-model calls, "
        f"{len(result.loss_history)} iterations"
    )
    if len(crossings):
        print(
            f"plan: crosses the wall at y = {float(path[crossings[0] + 1, 1]):+.3f} (the door is |y| < 0.15)"
        )
    distance = float(result.goal_distance)
    print(
        f"plan: goal distance {distance:.4f} -> "
        f"{'goal reached' if distance < REACHED else 'goal NOT reached'}"
    )

    # 3. MPC: the planner as a policy. Each call plans from the current state, warm-started by its
    # previous plan shifted by one step, and writes the first action. Here the straight line to the
    # goal passes through the door; for goals behind the wall see examples/mpc_collector.py.
    mpc_task = TensorDict(observation=torch.tensor([-0.5, 0.3]), goal=torch.tensor([0.5, -0.3]))
    mpc_planner = GRASPPlanner(
        env,
        planning_horizon=25,
        optim_steps=50 if args.quick else 100,
        lr_states=0.01,
        lr_actions=0.05,
        num_restarts=4,
        stop_distance=0.02,
    )
    steps = 30
    began = time.perf_counter()
    trajectory = env.rollout(steps, mpc_planner, tensordict=env.reset(mpc_task), auto_reset=False)
    seconds = time.perf_counter() - began
    distances = (trajectory["next", "observation"] - mpc_task["goal"]).norm(dim=-1)
    mpc_distance = float(distances[-1])
    print(
        f"mpc: {steps} steps in {seconds:.2f} s; "
        f"goal distance {float(distances[0]):.3f} after the first step, "
        f"{mpc_distance:.4f} after the last"
    )
    print(f"mpc: {'goal reached' if mpc_distance < REACHED else 'goal NOT reached'}")
    return {"plan_distance": distance, "mpc_distance": mpc_distance}


if __name__ == "__main__":
    main()
