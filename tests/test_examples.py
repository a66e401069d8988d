"""The scripts under ``examples/`` run with ``--quick`` and show what their docstrings promise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(name: str, tmp_path: Path, *args: str) -> str:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TORCHRL_GRASP_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "MPLBACKEND": "Agg",
    }
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--quick", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def distances(pattern: str, text: str) -> list[float]:
    return [float(value) for value in re.findall(pattern, text)]


def test_every_example_has_quick_and_a_full_size_command():
    for script in sorted(EXAMPLES.glob("*.py")):
        source = script.read_text()
        docstring = source.split('"""')[1]
        assert f"python examples/{script.name}" in docstring, script.name  # the full-size command
        assert "--quick" in source, script.name


def test_quickstart_plans_through_the_door_and_reaches_the_goal_in_closed_loop(tmp_path):
    out = run_example("quickstart.py", tmp_path)
    assert "plan: goal distance" in out and "-> goal reached" in out, out
    (crossing,) = distances(r"crosses the wall at y = ([+-]?\d+\.\d+)", out)
    assert abs(crossing) < 0.15, out  # through the door, not the wall
    assert "mpc: goal reached" in out, out


def test_custom_world_model_plans_on_both_wrappers(tmp_path):
    out = run_example("custom_world_model.py", tmp_path)
    # Both planners, on both wrappers (a plain nn.Module and a TensorDictModule with two keys).
    for world in ("wall world", "double integrator"):
        for planner in ("GRASP", "GD"):
            assert re.search(rf"{world}: {planner}\s+goal distance \d", out), (world, planner, out)
    model = distances(r"goal distance (\d+\.\d+) in the learned model", out)
    truth = distances(r"(\d+\.\d+) in the true dynamics", out)
    assert len(model) == len(truth) == 4
    # Every plan reaches the goal in the learned model it planned on...
    assert max(model) < 0.05, out
    # ...and on the double integrator, which the MLP learns well, in the true dynamics too.
    assert max(truth[2:]) < 0.1, out


@pytest.mark.parametrize("model", ["analytic"])
def test_mpc_collector_reaches_goals_in_the_real_env(tmp_path, model):
    out = run_example("mpc_collector.py", tmp_path, "--model", model)
    assert len(re.findall(r"^episode \d+:", out, flags=re.M)) == 3, out
    (reached, episodes) = map(int, re.search(r"success: (\d+)/(\d+) episodes reached the goal", out).groups())
    assert episodes == 3 and reached >= 2, out
