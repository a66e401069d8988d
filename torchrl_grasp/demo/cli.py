"""The demo's command line: ``python -m torchrl_grasp.demo`` and ``torchrl-grasp demo``."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from torchrl_grasp.arguments import output_folder, positive_float, positive_int
from torchrl_grasp import demo

DESCRIPTION = """\
GRASP and CEM plan long paths through a wall's door on a learned world model.

The world is WallDoor-v0: a point mass in [-1, 1]^2 and a wall at x = 0 with one door, 0.2
wide. The demo loads the learned world model that the benchmark uses (or trains it, about a
minute on one core, and caches it under $TORCHRL_GRASP_CACHE, default ~/.cache/torchrl_grasp).
It draws start/goal pairs about --horizon steps apart with the wall between them, plans each
with GRASP (the benchmark's grasp-newton: Newton state steps) and with CEM on the model,
executes the plans open loop in the real env, and prints how many reached their goal and the
median planning time.
It writes OUT/demo.png: per task, the wall, GRASP's virtual states at a few iterations, and the
paths that both plans took in the real env.
"""


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The demo's flags, added to ``parser`` (``torchrl-grasp demo`` passes its sub-parser) or to a
    new parser named ``python -m torchrl_grasp.demo``.

    Examples:
        >>> args = build_parser().parse_args(["--tasks", "2", "--threads", "1"])
        >>> args.tasks, args.threads, args.horizon, str(args.out)
        (2, 1, None, 'demo_out')
        >>> build_parser().parse_args(["--tasks", "0"])
        Traceback (most recent call last):
        SystemExit: 2
    """
    if parser is None:
        parser = argparse.ArgumentParser(
            prog="python -m torchrl_grasp.demo",
            description=DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    parser.add_argument(
        "--horizon", type=positive_int, default=None, metavar="T",
        help="steps from start to goal, the planning horizon (default 60; 20 with --quick)",
    )
    parser.add_argument(
        "--tasks", type=positive_int, default=None, metavar="N",
        help="start/goal pairs to plan, each across the wall (default 4; 2 with --quick)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the tasks and the planners (default 0)")
    parser.add_argument(
        "--plan-seconds", type=positive_float, default=None, metavar="S",
        help="give every plan S seconds of wall time (each planner's time_budget: it returns the best plan "
        "found by then) instead of its benchmark iterations",
    )
    parser.add_argument(
        "--out", type=output_folder, default=Path("demo_out"), metavar="DIR",
        help="where the picture demo.png is written (default demo_out/)",
    )
    parser.add_argument(
        "--threads", type=positive_int, default=None, metavar="N",
        help="torch threads (default: $OMP_NUM_THREADS if set, else all cores); pin to 1 on a busy machine",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="a smoke run in seconds: a tiny world model, 2 tasks, horizon 20, few planner iterations",
    )
    return parser


def default_threads() -> int:
    """``$OMP_NUM_THREADS`` if set, else every core.

    Examples:
        >>> saved = os.environ.pop("OMP_NUM_THREADS", None)
        >>> default_threads() == os.cpu_count()
        True
        >>> os.environ["OMP_NUM_THREADS"] = "3"
        >>> default_threads()
        3
        >>> del os.environ["OMP_NUM_THREADS"]
        >>> if saved is not None:
        ...     os.environ["OMP_NUM_THREADS"] = saved
    """
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


def run(args: argparse.Namespace) -> demo.DemoResult:
    """Runs the demo that ``args`` (from :func:`build_parser`) describe, timed.

    Examples:
        >>> import os, tempfile
        >>> os.environ["TORCHRL_GRASP_CACHE"] = tempfile.mkdtemp()
        >>> args = build_parser().parse_args(["--quick", "--tasks", "1", "--horizon", "10", "--threads", "1", "--out", tempfile.mkdtemp()])
        >>> result = run(args)  # doctest: +ELLIPSIS
        World model trained and saved to ...
        >>> del os.environ["TORCHRL_GRASP_CACHE"]
        >>> len(result.outcomes), result.figure.exists()
        (1, True)
    """
    torch.set_num_threads(args.threads or default_threads())
    began = time.perf_counter()
    result = demo.run_demo(
        horizon=args.horizon if args.horizon is not None else (20 if args.quick else 60),
        tasks=args.tasks if args.tasks is not None else (2 if args.quick else 4),
        seed=args.seed,
        out=args.out,
        quick_run=args.quick,
        time_budget=args.plan_seconds,
    )
    print(f"Demo took {time.perf_counter() - began:.0f} s on {torch.get_num_threads()} torch threads.")
    return result


def main(argv=None) -> demo.DemoResult:
    """``python -m torchrl_grasp.demo [argv]`` (and ``torchrl-grasp demo [argv]``), through :func:`run`.

    Examples:
        >>> import os, tempfile
        >>> os.environ["TORCHRL_GRASP_CACHE"] = tempfile.mkdtemp()
        >>> result = main(["--quick", "--tasks", "1", "--horizon", "10", "--threads", "1", "--out", tempfile.mkdtemp()])  # doctest: +ELLIPSIS
        World model trained and saved to ...
        >>> del os.environ["TORCHRL_GRASP_CACHE"]
        >>> print(result.table)  # doctest: +ELLIPSIS
        | planner | reached the goal | median plan time |
        ...
    """
    return run(build_parser().parse_args(argv))
