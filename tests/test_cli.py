"""The `torchrl-grasp` console command: its help texts, its subcommands, and the module commands beside it."""

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torchrl_grasp import cli
from torchrl_grasp.benchmark import __main__ as benchmark_main

ROOT = Path(__file__).resolve().parents[1]
DEMO_FLAGS = ["--horizon", "--tasks", "--seed", "--plan-seconds", "--out", "--threads", "--quick"]
BENCHMARK_FLAGS = [
    "--env", "--horizons", "--planners", "--episodes", "--budget", "--mode", "--replan-every",
    "--ensemble", "--penalty-weights", "--seed", "--model-seed", "--pixel-model", "--out", "--threads", "--device", "--quick",
]


def help_text(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def subcommand_parser(name: str) -> argparse.ArgumentParser:
    (commands,) = [a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return commands.choices[name]


def test_console_script_is_declared_and_resolves_to_main():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = scripts["torchrl-grasp"].split(":")
    assert getattr(importlib.import_module(module), function) is cli.main


def test_help_lists_the_subcommands(capsys):
    text = help_text([], capsys)
    assert text.startswith("usage: torchrl-grasp")
    assert "demo" in text and "benchmark" in text
    assert "writes a picture" in text and "time to success vs horizon" in text


@pytest.mark.parametrize("name, flags", [("demo", DEMO_FLAGS), ("benchmark", BENCHMARK_FLAGS)])
def test_subcommand_help_explains_every_flag(name, flags, capsys):
    text = help_text([name], capsys)
    assert text.startswith(f"usage: torchrl-grasp {name}")
    for flag in flags:
        assert flag in text, flag
    options = [a for a in subcommand_parser(name)._actions if a.option_strings and a.dest != "help"]
    assert sorted(o for a in options for o in a.option_strings) == sorted(flags)
    assert all(a.help for a in options), [a.dest for a in options if not a.help]


def test_no_subcommand_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--quick"],
        ["--env", "walldoor", "--horizons", "60", "80", "--mode", "open-loop", "mpc", "--budget", "2"],
    ],
)
def test_benchmark_subcommand_parses_as_the_module_does(argv):
    from_cli = vars(cli.build_parser().parse_args(["benchmark", *argv]))
    assert from_cli.pop("command") == "benchmark"
    assert from_cli == vars(benchmark_main.build_parser().parse_args(argv))


def test_demo_quick_through_the_console_entry(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    try:
        status = cli.main(["demo", "--quick", "--threads", "1", "--out", str(tmp_path / "out")])
    finally:
        torch.set_num_threads(threads)
    assert status == 0  # the console script passes it to sys.exit
    printed = capsys.readouterr().out
    assert (tmp_path / "out" / "demo.png").read_bytes()[:4] == b"\x89PNG"
    assert "task 2/2: " in printed and "| grasp | " in printed and "| cem | " in printed
    assert list((tmp_path / "cache" / "world_models").glob("WallDoor-v0-*.pt"))  # the private cache was used


@pytest.mark.parametrize("module", ["torchrl_grasp.demo", "torchrl_grasp.benchmark"])
def test_module_commands_still_run(module):
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: python -m {module}")
    assert "--quick" in done.stdout
