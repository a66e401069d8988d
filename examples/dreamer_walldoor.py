"""GRASP in a Dreamer world model's latent space: pixel WallDoor, to a goal image and by reward.

What it shows:

* **a Dreamer world model from TorchRL's parts** (``ObsEncoder``, ``ObsDecoder``, ``RSSMPrior``,
  ``RSSMPosterior``, a reward MLP), trained with TorchRL's ``DreamerModelLoss`` on 64 x 64 images
  of ``WallDoor-v0`` under random actions (:mod:`torchrl_grasp.dreamer`; trained once, on the CPU,
  and cached under ``$TORCHRL_GRASP_CACHE``). It prints its held-out validation;
* **the agent sees only images**: :class:`~torchrl_grasp.dreamer.planning.LatentMPC` filters the
  latent ``{state, belief}`` from the real env's ``"pixels"`` and the actions it took, as Dreamer's
  real-world actor does, and asks a planner for the next action at every step;
* **(a) to a goal image**: the goal image becomes a latent goal with the model's own encoder and
  posterior; GRASP plans to it on ``LatentPlanning.goal_env()`` and so does TorchRL's
  ``CEMPlanner`` (its reward there is minus the latent distance to the goal);
* **(b) by reward**: no goal at all; GRASP (``reward_key="reward"``) and TorchRL's ``CEMPlanner``
  maximise the learned reward (minus the distance to a fixed point behind the wall, below the
  door) on TorchRL's own ``DreamerEnv``.

Success and return are counted in the **real** env. It prints a line per episode and a table.

Full size (trains the model first, 15 to 20 minutes on one core, then cached; then about 5
minutes of MPC: 3 episodes of 60 steps per planner and task, a plan at every step)::

    python examples/dreamer_walldoor.py

printed (seed 0, one torch thread, an earlier training of the model, whose report then read
positions with a fitted probe; it now reads them off the decoded images, about 0.03 in the
filtered latent)::

    pixel world model: reconstruction MSE 0.0004, reward MAE 0.049, position in the filtered latent ..., open loop ...
    goal image: cem episode 3: reached [0.02, 0.46] in 32 steps, return -12.8
    ...
    | task | planner | success | mean return | seconds per episode |
    | --- | --- | ---: | ---: | ---: |
    | goal image | grasp | 0/3 | -40.9 | 11.6 |
    | goal image | cem | 1/3 | -15.5 | 18.5 |
    | reward | grasp | 0/3 | -34.7 | 28.5 |
    | reward | cem | 0/3 | -34.8 | 25.4 |

GRASP loses here. CEM reaches one goal image of three (within 0.1, the model's resolution);
GRASP reaches none, and on that same task wanders off (return -82). By reward neither gets behind
the wall in 60 steps and the returns are even. With the model trained half as long, both reached
that one goal image (GRASP -20.1, CEM -15.1). Replanning at every step with 30 warm-started
iterations is GRASP's weak setting (see the tuning guide, "MPC"); the benchmark's pixel tier,
which replans every 10 steps with full plans, has GRASP level with CEM at H=20.

Smoke run (a tiny model trained in seconds, 2 short episodes per planner and task)::

    python examples/dreamer_walldoor.py --quick
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torchrl.modules.planners import CEMPlanner

from torchrl_grasp import GRASPPlanner
from torchrl_grasp.benchmark.suite import QUICK_PIXEL_MODEL, SUITE
from torchrl_grasp.dreamer import load_or_train_pixel_model
from torchrl_grasp.dreamer.planning import LatentMPC, LatentPlanning, pixel_env


def make_planner(name: str, planning: LatentPlanning, by_goal: bool, horizon: int, quick: bool, seed: int):
    """GRASP or TorchRL's CEM, on the goal env (latent distance) or on the DreamerEnv (learned reward)."""
    env = planning.goal_env() if by_goal else planning.reward_env()
    if name == "grasp":
        reward = {} if by_goal else {"reward_key": "reward", "reward_weight": 1.0}
        # The method's own learning rates (GRASPPlanner's defaults), made for latent spaces; warm
        # started from the previous step's plan, so 30 iterations a step suffice.
        return GRASPPlanner(
            env,
            horizon,
            optim_steps=10 if quick else 30,
            num_restarts=2 if quick else 4,
            generator=torch.Generator().manual_seed(seed),
            **reward,
        )
    return CEMPlanner(
        env,
        horizon,
        optim_steps=2 if quick else 10,
        num_candidates=20 if quick else 200,
        top_k=4 if quick else 20,
    )


def run_episode(env, policy, start: np.ndarray, goal: np.ndarray, steps: int) -> tuple[bool, float, int]:
    """One real episode from ``start``: (reached ``goal``, return, steps taken)."""
    td = env.reset(options={"start": start, "goal": goal})
    rollout = env.rollout(steps, policy, tensordict=td, auto_reset=False, break_when_any_done=True)
    success = bool(rollout["next", "is_success"].any())
    return success, float(rollout["next", "reward"].sum()), rollout.shape[0]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=3, help="episodes per planner and task")
    parser.add_argument("--steps", type=int, default=60, help="steps per episode")
    parser.add_argument("--horizon", type=int, default=30, help="the planners' horizon (replanned every step)")
    parser.add_argument(
        "--success-radius", type=float, default=0.1,
        help="distance to the goal that counts as reached (the pixel model reads positions to about 0.15)",
    )
    parser.add_argument("--planners", nargs="+", default=["grasp", "cem"], choices=["grasp", "cem"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny model and 2 short episodes: a smoke run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.episodes, args.steps, args.horizon = min(args.episodes, 2), 10, 8
    bench_env = SUITE["walldoor-pixels"]
    config = QUICK_PIXEL_MODEL if args.quick else bench_env.pixel_model
    began = time.perf_counter()
    pixel_model = load_or_train_pixel_model(config, progress=not args.quick)
    source = "loaded from" if pixel_model.from_cache else f"trained in {pixel_model.train_seconds:.0f} s and cached at"
    print(f"pixel world model {source} {pixel_model.path}")
    print(pixel_model.report)
    planning = LatentPlanning(pixel_model)
    task = config.task()
    rng = np.random.default_rng(args.seed)
    goal_tasks = [task.sample_task(rng, args.steps // 2) for _ in range(args.episodes)]
    target = np.array(config.reward_target, dtype=np.float32)
    reward_starts = task.sample_free_points(rng, args.episodes, 0).astype(np.float32)
    results = {}
    for mode, tasks in (("goal image", goal_tasks), ("reward", [(start, target) for start in reward_starts])):
        for name in args.planners:
            planner = make_planner(name, planning, mode == "goal image", args.horizon, args.quick, args.seed)
            policy = LatentMPC(planning, planner, by_goal=mode == "goal image")
            # The policy's latent travels in the TensorDict: the primer declares it, each reset zeroes it.
            env = pixel_env(pixel_model, success_threshold=args.success_radius)
            env = env.append_transform(policy.make_tensordict_primer())
            outcomes = []
            for index, (start, goal) in enumerate(tasks):
                start_time = time.perf_counter()
                success, episode_return, steps = run_episode(env, policy, start, goal, args.steps)
                outcomes.append((success, episode_return, time.perf_counter() - start_time))
                print(
                    f"{mode}: {name} episode {index + 1}: {'reached' if success else 'did NOT reach'} "
                    f"{[round(float(v), 2) for v in goal]} in {steps} steps, return {episode_return:.1f}",
                    flush=True,
                )
            results[mode, name] = outcomes
    print()
    print("| task | planner | success | mean return | seconds per episode |")
    print("| --- | --- | ---: | ---: | ---: |")
    for (mode, name), outcomes in results.items():
        reached = sum(success for success, _, _ in outcomes)
        mean_return = np.mean([value for _, value, _ in outcomes])
        seconds = np.mean([value for _, _, value in outcomes])
        print(f"| {mode} | {name} | {reached}/{len(outcomes)} | {mean_return:.1f} | {seconds:.1f} |")
    print(f"\nTotal {time.perf_counter() - began:.0f} s.")
    return results


if __name__ == "__main__":
    main()
