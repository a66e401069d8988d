"""GRASP as the policy of a TorchRL collector: model-predictive control in the real ``WallDoor-v0``.

What it shows:

* the collector steps the **real** env (``make_env("WallDoor-v0")``, a hard wall with one door),
  resets it itself (random start/goal pairs on opposite sides of the wall, the straight line
  between them blocked) and hands the policy ``"observation"`` and ``"goal"``;
* the policy plans with GRASP on a **world model** (``--model analytic``:
  :class:`~torchrl_grasp.world_models.analytic.SmoothWallDoor`, a smooth stand-in for the wall;
  ``--model learned``: the learned WallDoor model of the benchmark and the demo, trained once
  and cached) and returns one action per step;
* the receding-horizon recipe that works for GRASP on this task, as
  :class:`~torchrl_grasp.RecedingHorizonPolicy`: every ``--replan-every`` steps it plans to the
  episode's deadline with the *remaining* horizon (``ends_at``), warm-started from the rest of
  its previous plan (which GRASP evaluates first, so a replan never ends farther from the goal
  in the model), and follows the plan in between; the plan travels in the collector's
  TensorDict (``policy.make_tensordict_primer()``), and ``InitTracker`` tells it where an
  episode began. (Planning every step with a fixed horizon, as
  ``GRASPPlanner`` does when it is itself the policy, stalls at the wall face here: with slack in
  the horizon the first action of a plan is arbitrary, and from the face no restart finds the
  door. See the tuning guide, "MPC".)

It prints a line per episode and the share of episodes that reached the goal in the real env.

Full size (16 episodes: about a minute and a half on one core; ``--model learned`` first
trains its model, about a minute, then caches it under ``$TORCHRL_GRASP_CACHE``)::

    python examples/mpc_collector.py --episodes 16
    python examples/mpc_collector.py --model learned --episodes 16

Smoke run (3 episodes, about 15 s)::

    python examples/mpc_collector.py --quick
"""

from __future__ import annotations

import argparse
import time

import torch
from torchrl.data import Bounded, Unbounded
from torchrl.envs import InitTracker, StepCounter, TransformedEnv
from torchrl.envs.model_based import ModelBasedEnvBase

from torchrl_grasp import GRASPPlanner, RecedingHorizonPolicy, TransitionModelEnv
from torchrl_grasp.envs import make_env
from torchrl_grasp.world_models.analytic import SmoothWallDoor


def model_and_real_env(kind: str) -> tuple[ModelBasedEnvBase, str, dict]:
    """The world model the planner sees, and the real env it acts in (id and keywords)."""
    if kind == "analytic":
        # SmoothWallDoor's door is centred at y = 0; a slightly narrower door than the real
        # one (0.2 wide) keeps the plans off its edges.
        model = SmoothWallDoor(dt=0.05, door_half_width=0.08)
        return (
            TransitionModelEnv(model, Unbounded(2), Bounded(-1.0, 1.0, (2,))),
            "WallDoor-v0",
            {"door_center": 0.0},
        )
    from torchrl_grasp.world_models.learned import WALLDOOR_MODEL, load_or_train

    learned = load_or_train(WALLDOOR_MODEL)
    print(f"learned model {'loaded from' if learned.from_cache else 'trained and cached at'} {learned.path}")
    return learned.env, WALLDOOR_MODEL.env_id, dict(WALLDOOR_MODEL.env_kwargs)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", choices=["analytic", "learned"], default="analytic", help="what GRASP plans on"
    )
    parser.add_argument("--episodes", type=int, default=8, help="episodes to collect")
    parser.add_argument(
        "--deadline", type=int, default=60, help="steps per episode (and the first plan's horizon)"
    )
    parser.add_argument("--replan-every", type=int, default=10, help="steps executed between plans")
    parser.add_argument("--seed", type=int, default=0, help="seeds the env's tasks and the planner")
    parser.add_argument("--quick", action="store_true", help="3 episodes: a smoke run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    episodes_wanted = min(args.episodes, 3) if args.quick else args.episodes

    from torchrl.collectors import Collector  # imported here: importing it prints TorchRL's deprecations

    model_env, env_id, env_kwargs = model_and_real_env(args.model)
    grasp = GRASPPlanner(
        model_env,
        args.deadline,
        300,
        lr_states=0.01,
        lr_actions=0.05,
        num_restarts=8,
        stop_distance=0.02,
        generator=torch.Generator().manual_seed(args.seed),
    )
    policy = RecedingHorizonPolicy(grasp, args.replan_every, ends_at=args.deadline)
    env = TransformedEnv(make_env(env_id, **env_kwargs), StepCounter(max_steps=args.deadline))
    env.append_transform(InitTracker())
    env.append_transform(policy.make_tensordict_primer())
    env.set_seed(args.seed)  # before the collector's first reset
    collector = Collector(
        env, policy, frames_per_batch=args.deadline, total_frames=-1, auto_register_policy_transforms=False
    )
    outcomes, plans = [], 0
    began = time.perf_counter()
    try:
        for batch in collector:
            plans += int(batch["planning", "replanned"].sum())
            done = batch["next", "done"].squeeze(-1)
            success = batch["next", "is_success"]
            steps_in_episode = batch["next", "step_count"].squeeze(-1)
            for index in done.nonzero().flatten().tolist():
                outcomes.append(bool(success[index]))
                print(
                    f"episode {len(outcomes)}: goal {[round(v, 2) for v in batch['goal'][index].tolist()]}: "
                    f"{'reached the goal' if outcomes[-1] else 'did NOT reach the goal'} "
                    f"in {int(steps_in_episode[index])} steps",
                    flush=True,
                )
                if len(outcomes) == episodes_wanted:
                    break
            if len(outcomes) >= episodes_wanted:
                break
    finally:
        collector.shutdown()
    seconds = time.perf_counter() - began
    reached = sum(outcomes)
    print(
        f"success: {reached}/{len(outcomes)} episodes reached the goal in the real env "
        f"({plans} plans, {seconds:.1f} s in all)"
    )
    return {"reached": reached, "episodes": len(outcomes)}


if __name__ == "__main__":
    main()
