"""``torchrl-grasp``: the package's console command, with the subcommands ``demo`` and ``benchmark``.

Each subcommand has the flags of its module's own command line (``python -m torchrl_grasp.demo``,
``python -m torchrl_grasp.benchmark``), built by the same function, and runs the same code.
"""

from __future__ import annotations

import argparse
import sys

from torchrl_grasp.benchmark import __main__ as benchmark
from torchrl_grasp.demo import cli as demo_cli


def build_parser() -> argparse.ArgumentParser:
    """The ``torchrl-grasp`` parser; ``args.command`` names the subcommand.

    Examples:
        >>> args = build_parser().parse_args(["benchmark", "--env", "walldoor", "--quick"])
        >>> args.command, args.env, args.quick
        ('benchmark', ['walldoor'], True)
    """
    parser = argparse.ArgumentParser(
        prog="torchrl-grasp",
        description="GRASP, a gradient-based planner for learned world models, in TorchRL.",
        epilog="Run 'torchrl-grasp COMMAND --help' for a command's flags.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo_parser = commands.add_parser(
        "demo",
        help="GRASP and CEM plan through a wall's door on a learned model; prints a table, writes a picture",
        description=demo_cli.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo_cli.build_parser(demo_parser)
    benchmark_parser = commands.add_parser(
        "benchmark",
        help="success rate and time to success vs horizon, per planner and env (tables, JSON, plot)",
        description=benchmark.DESCRIPTION,
        formatter_class=benchmark.HelpFormatter,
    )
    benchmark.build_parser(benchmark_parser)
    return parser


def main(argv=None) -> int:
    """``torchrl-grasp [argv]``: parses, runs the subcommand, returns the exit status ``0``
    (errors raise; argparse exits with ``2`` on a bad command line).

    A run trains or loads a world model (see :func:`~torchrl_grasp.demo.run_demo` and
    :func:`~torchrl_grasp.benchmark.__main__.run`), so the example only shows a bad command line
    refused before any work; ``tests/test_cli.py`` runs both subcommands.

    Examples:
        >>> main(["demo", "--tasks", "0"])  # argparse prints "must be at least 1, got 0" to stderr
        Traceback (most recent call last):
        SystemExit: 2
    """
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(arguments)
    if args.command == "demo":
        demo_cli.run(args)
    else:
        benchmark.run(args, command=" ".join(["torchrl-grasp", *arguments]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
