"""``python -m torchrl_grasp.benchmark``: success rate and time to success vs horizon, per planner.

For each env and horizon ``H`` the benchmark samples start/goal pairs ``H`` steps apart (for the
point masses, the shortest path is not a straight line; for Push-T, a scripted pusher connects
them), plans on the env's learned world model (trained once and cached, see
:mod:`torchrl_grasp.world_models.learned`), executes the plan in the real env (open loop, and/or
MPC replanning every ``--replan-every`` steps) and counts success there.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from torchrl_grasp.arguments import (
    available_device,
    int_at_least,
    non_negative_float,
    non_negative_int,
    output_folder,
    positive_float,
    positive_int,
)
from torchrl_grasp.benchmark import report
from torchrl_grasp.benchmark.episodes import run_episode
from torchrl_grasp.benchmark.planners import (
    FIRST_ACTION_ONLY,
    QUICK_STEPS,
    SETTINGS,
    make_planner,
)
from torchrl_grasp.benchmark.suite import PIXEL_MODEL_RECIPES, SUITE, quick

DESCRIPTION = (
    "Success rate and time to success against the horizon, per planner. For each env and horizon H it "
    "samples start/goal pairs H steps apart, plans on the env's learned world model (trained once and "
    "cached under $TORCHRL_GRASP_CACHE), executes the plan in the real env (open loop, and/or MPC) and "
    "counts success there. The defaults (2 envs, 4 horizons, 3 planners, 10 episodes: 240 plans of up to "
    "a few seconds each, after a minute of training per model) take tens of minutes on one core; --quick "
    "is a smoke run of under a minute. Results: OUT/results.md, .json and .png."
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description's lines and shows every flag's default."""


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The benchmark's flags, added to ``parser`` (``torchrl-grasp benchmark`` passes its sub-parser)
    or to a new parser named ``python -m torchrl_grasp.benchmark``.

    Examples:
        >>> args = build_parser().parse_args(["--env", "walldoor", "--horizons", "60", "80"])
        >>> args.env, args.horizons, args.planners
        (['walldoor'], [60, 80], ['grasp', 'gd', 'cem'])
    """
    if parser is None:
        parser = argparse.ArgumentParser(
            prog="python -m torchrl_grasp.benchmark", description=DESCRIPTION, formatter_class=HelpFormatter
        )
    parser.add_argument(
        "--env", nargs="+", default=["walldoor", "obstacles"], choices=sorted(SUITE), help="environments"
    )
    parser.add_argument("--horizons", type=positive_int, nargs="+", default=[20, 40, 60, 80], help="horizons H")
    parser.add_argument(
        "--planners", nargs="+", default=["grasp", "gd", "cem"], choices=sorted(SETTINGS),
        help="planners to compare, at their published settings (torchrl_grasp.benchmark.planners); "
        "torchrl-cem (TorchRL's own CEMPlanner) runs in --mode mpc only, replanning at every step",
    )
    parser.add_argument("--episodes", type=positive_int, default=10, help="start/goal pairs per env and horizon")
    parser.add_argument(
        "--budget", type=positive_float, default=None, metavar="SECONDS",
        help="plan until this wall time per plan is spent (each planner's time_budget: it returns the best "
        "plan found by then) instead of for its published iterations",
    )
    parser.add_argument(
        "--mode", nargs="+", default=["open-loop"], choices=["open-loop", "mpc"],
        help="open-loop: execute the whole plan; mpc: replan from the real state every --replan-every steps",
    )
    parser.add_argument("--replan-every", type=positive_int, default=10, help="MPC: steps executed per plan")
    parser.add_argument(
        "--ensemble", type=int_at_least(2), default=None, metavar="MEMBERS",
        help="train (or load) each tier's state model as an ensemble of this many networks; its model env "
        "writes the members' disagreement",
    )
    parser.add_argument(
        "--penalty-weights", type=non_negative_float, nargs="+", default=[0.0], metavar="BETA",
        help="run the package's planners with each penalty_weight: beta times the ensemble's disagreement "
        "summed along the plan joins every loss and score (needs --ensemble for beta > 0); a column per "
        "planner and weight",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the tasks and the planners")
    parser.add_argument(
        "--model-seed", type=non_negative_int, default=None, metavar="SEED",
        help="train (or load) each tier's world model from this seed instead of its own (0): another "
        "training of the same recipe",
    )
    parser.add_argument(
        "--pixel-model", choices=sorted(PIXEL_MODEL_RECIPES), default=None,
        help="the pixel tiers' world model recipe instead of each tier's own (walldoor-pixels: plain, "
        "walldoor-pixels-position: overshooting-decay); the state tiers keep theirs",
    )
    parser.add_argument("--out", type=output_folder, default=Path("benchmark-results"), help="where the results go")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads; unset: torch's own choice")
    parser.add_argument(
        "--device", type=available_device, default=torch.device("cpu"),
        help="where the state tiers' world models and plans live (cuda on a GPU); the real envs run on the CPU",
    )
    parser.add_argument("--quick", action="store_true", help="tiny models, horizons and budgets: a smoke test")
    return parser


def first_action_only_planners(names: list[str]) -> list[str]:
    """The planners among ``names`` that return a first action only (TorchRL's).

    Examples:
        >>> first_action_only_planners(["grasp", "torchrl-cem"])
        ['torchrl-cem']
    """
    return [name for name in names if name in FIRST_ACTION_ONLY]


def planner_label(name: str, penalty_weight: float) -> str:
    """The planner's column in the results: its name, and its penalty weight where it has one.

    Examples:
        >>> planner_label("icem", 0.0), planner_label("icem", 0.3)
        ('icem', 'icem (penalty 0.3)')
    """
    return name if penalty_weight == 0 else f"{name} (penalty {penalty_weight:g})"


def apply_quick(args: argparse.Namespace) -> argparse.Namespace:
    """With ``--quick``: one horizon of at most 20 (else 10) and at most 2 episodes.

    Examples:
        >>> args = apply_quick(build_parser().parse_args(["--quick", "--horizons", "40", "20", "10"]))
        >>> args.horizons, args.episodes
        ([20], 2)
        >>> apply_quick(build_parser().parse_args(["--quick", "--horizons", "60"])).horizons
        [10]
        >>> apply_quick(build_parser().parse_args(["--horizons", "60"])).horizons  # without --quick
        [60]
    """
    if args.quick:
        args.horizons, args.episodes = [h for h in args.horizons if h <= 20][:1] or [10], min(args.episodes, 2)
    return args


def main(argv=None) -> list[dict]:
    """``python -m torchrl_grasp.benchmark [argv]``: see :func:`run`."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python -m torchrl_grasp.benchmark", *arguments])
    return run(build_parser().parse_args(arguments), command=command)


def run(args: argparse.Namespace, command: str = "python -m torchrl_grasp.benchmark") -> list[dict]:
    """Runs the benchmark that ``args`` (from :func:`build_parser`) describe; returns its records.

    ``command`` is the command line written at the top of ``results.md``.
    """
    args = apply_quick(args)
    penalised = any(weight > 0 for weight in args.penalty_weights)
    if penalised and args.ensemble is None:
        raise SystemExit(
            "--penalty-weights above 0 penalise an ensemble's disagreement, and a single network has none: "
            "add --ensemble 5."
        )
    if penalised and first_action_only_planners(args.planners):
        raise SystemExit(
            f"{', '.join(first_action_only_planners(args.planners))} is TorchRL's planner and takes no penalty: "
            "leave it out of --planners, or run it without --penalty-weights."
        )
    first_action_only = first_action_only_planners(args.planners)
    if first_action_only and "open-loop" in args.mode:
        raise SystemExit(
            f"{', '.join(first_action_only)} returns the first action of a plan only: run it with --mode mpc "
            "(it replans at every step), or leave it out of --planners."
        )
    if args.budget is not None and first_action_only:
        raise SystemExit(
            f"{', '.join(first_action_only)} is TorchRL's planner and takes no time budget: leave it out of "
            "--planners, or run it without --budget."
        )
    pixel_tiers = [name for name in args.env if SUITE[name].pixel_model is not None]
    if args.device.type != "cpu" and pixel_tiers:
        raise SystemExit(
            f"--device {args.device}: {', '.join(pixel_tiers)} plans in a Dreamer latent filtered on the CPU; "
            "run it without --device, or leave it out of --env."
        )
    try:  # before any training: a result folder that cannot be written must not cost a run
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SystemExit(f"--out {args.out}: cannot create the folder ({error}); give a writable folder.") from error
    if not os.access(args.out, os.W_OK):
        raise SystemExit(f"--out {args.out} is not writable; give a writable folder.")
    if args.threads:
        torch.set_num_threads(args.threads)
    header = (
        f"Command: `{command}`\n\n"
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"{platform.python_implementation()} {platform.python_version()}\n\n"
    )
    if args.quick:
        print("--quick: tiny world models and few iterations, a smoke run: its numbers measure nothing.")
    for env_name in args.env:
        SUITE[env_name].check_installed()
    records = []
    for env_name in args.env:
        bench_env = SUITE[env_name] if args.ensemble is None else SUITE[env_name].with_ensemble(args.ensemble)
        if args.pixel_model is not None:
            bench_env = bench_env.with_pixel_model(PIXEL_MODEL_RECIPES[args.pixel_model])
        bench_env = quick(bench_env) if args.quick else bench_env
        bench_env = bench_env if args.model_seed is None else bench_env.with_model_seed(args.model_seed)
        view = bench_env.load_view().to(args.device)
        print(f"{env_name}: {view.description}")
        real_env = bench_env.real_env()
        for horizon in args.horizons:
            tasks = bench_env.sample_tasks(horizon, args.episodes, args.seed)
            for planner_name, weight in itertools.product(args.planners, args.penalty_weights):
                overrides = {"penalty_weight": weight} if weight > 0 else {}
                label = planner_label(planner_name, weight)
                steps = QUICK_STEPS[planner_name] if args.quick else None

                def factory(planner_name=planner_name, steps=steps, horizon=horizon, overrides=overrides):
                    return make_planner(
                        planner_name,
                        view.env,
                        horizon,
                        optim_steps=steps,
                        seed=args.seed,
                        success_radius=bench_env.success_threshold if view.success_radius_in_model_units else None,
                        overrides=overrides,
                        time_budget=args.budget,
                    )

                optim_steps = factory().optim_steps  # the cap under --budget
                for mode in args.mode:
                    episodes = []
                    bar = tqdm(tasks, desc=f"{env_name} H={horizon} {label} {mode}", leave=False)
                    for task in bar:
                        episodes.append(
                            run_episode(
                                real_env,
                                factory,
                                task,
                                horizon,
                                replan_every=args.replan_every if mode == "mpc" else None,
                                view=view,
                                second_test=None if bench_env.second_test is None else bench_env.second_test.passed,
                            )
                        )
                    record = report.summarise(
                        env_name,
                        horizon,
                        label,
                        mode,
                        episodes,
                        success_threshold=bench_env.success_threshold,
                        budget_s=args.budget,
                        optim_steps=optim_steps,
                        second_test=None if bench_env.second_test is None else bench_env.second_test.name,
                    )
                    records.append(record)
                    report.write(records, args.out, header, figure=False)  # a crash loses one cell at most
                    time_text = record["median_time_to_success_s"]
                    print(
                        f"{env_name} H={horizon} {label} {mode}: success {record['success_rate']:.0%}, "
                        f"median time to success {'—' if time_text is None else f'{time_text:.2f} s'}, "
                        f"{record['seconds_per_plan']:.2f} s and {record['model_calls_per_plan']:.0f} model "
                        f"calls per plan"
                        + (
                            ""
                            if record["median_plan_penalty"] is None
                            else f", plan disagreement {record['median_plan_penalty']:.2f}"
                        ),
                        flush=True,
                    )
        real_env.close()
    text = report.write(records, args.out, header)
    print()
    print(text)
    print(f"Wrote {args.out / 'results.md'}, {args.out / 'results.json'} and {args.out / 'results.png'}.")
    return records


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"Total {time.perf_counter() - start:.0f} s.")
