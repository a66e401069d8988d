"""The model-based RL loop on a benchmark tier: plan, execute, refit on the executed episodes, plan again.

A planner exploits where its model leaks (a wall it predicts open); executed in the real env,
those plans collect transitions of exactly the leak, and a model refitted on them closes it.
Per planner and round, this script plans ``--episodes`` evaluation tasks (the same every round)
and reports the success in the real env, the success predicted inside the model and the median
model error along the executed paths; then it refits on the transitions of those and of
``--episodes`` more training tasks (all rounds so far, the planner's own) and goes on::

    python benchmarks/refit_loop.py --env pointmaze-medium --horizon 100 --planners grasp icem --rounds 2 --threads 1

Each refit trains a model (about two minutes on a core, cached). Results are printed and written
to ``--out`` (markdown and JSON) after every round, with the command and machine at the top.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from torchrl_grasp.benchmark.episodes import run_episode
from torchrl_grasp.benchmark.planners import make_planner
from torchrl_grasp.benchmark.report import wilson_interval
from torchrl_grasp.benchmark.suite import SUITE
from torchrl_grasp.benchmark.views import StateView
from torchrl_grasp.world_models.learned import load_or_train


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="pointmaze-medium", choices=sorted(SUITE))
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--planners", nargs="+", default=["grasp", "icem"])
    parser.add_argument("--episodes", type=int, default=16, help="evaluation (and training) tasks per round")
    parser.add_argument("--rounds", type=int, default=2, help="refits after the first model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("refit-results"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    bench = SUITE[args.env]
    header = (
        f"Command: python {' '.join(sys.argv)}\n\nMachine: {platform.machine()}, {torch.get_num_threads()} torch "
        f"threads, torch {torch.__version__}"
    )
    evaluation = bench.sample_tasks(args.horizon, args.episodes, args.seed)
    training = bench.sample_tasks(args.horizon, args.episodes, args.seed + 1)
    real_env = bench.real_env()
    records = []
    for name in args.planners:
        extra = None
        for round_ in range(args.rounds + 1):
            learned = load_or_train(bench.model, extra_data=extra, progress=False)
            view = StateView.of(learned)

            def factory(learned=learned, name=name):
                return make_planner(
                    name, learned.env, args.horizon, seed=args.seed, success_radius=bench.success_threshold
                )

            began = time.perf_counter()
            scored = [run_episode(real_env, factory, task, args.horizon, view=view) for task in evaluation]
            explored = [run_episode(real_env, factory, task, args.horizon, view=view) for task in training]
            successes = sum(e.success for e in scored)
            predicted = sum(e.predicted_distance < bench.success_threshold for e in scored)
            records.append(
                dict(
                    planner=name,
                    round=round_,
                    refit_transitions=0 if extra is None else len(extra),
                    success_rate=successes / len(scored),
                    success_interval=list(wilson_interval(successes, len(scored))),
                    predicted_success_rate=predicted / len(scored),
                    median_model_error=statistics.median(e.model_error for e in scored),
                    one_step_error=learned.report.open_loop_error[1],
                    seconds=time.perf_counter() - began,
                )
            )
            print(json.dumps(records[-1]), flush=True)
            write(records, args.out, header)
            for episode in scored + explored:
                extra = episode.transitions if extra is None else extra.concat(episode.transitions)
    real_env.close()
    return records


def write(records: list[dict], out: Path, header: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "refit.json").write_text(json.dumps(records, indent=1))
    lines = [header, "", "| planner | round | refit on | success [95% interval] | predicted | model error | model @1 |",
             "|---|---:|---:|---|---:|---:|---:|"]
    for r in records:
        low, high = r["success_interval"]
        lines.append(
            f"| {r['planner']} | {r['round']} | {r['refit_transitions']} | {r['success_rate']:.0%} [{low:.0%}–{high:.0%}] "
            f"| {r['predicted_success_rate']:.0%} | {r['median_model_error']:.2f} | {r['one_step_error']:.3f} |"
        )
    (out / "refit.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
