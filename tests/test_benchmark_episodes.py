"""Benchmark episodes: every planner acts through one receding-horizon loop; TorchRL's CEM in MPC only."""

import numpy as np
import pytest
import torch
from torchrl.data import Bounded, Unbounded

from torchrl_grasp import TransitionModelEnv
from torchrl_grasp.benchmark.__main__ import main
from torchrl_grasp.benchmark.episodes import Task, run_episode
from torchrl_grasp.benchmark.planners import FIRST_ACTION_ONLY, SETTINGS, make_planner
from torchrl_grasp.envs import make_env

START, GOAL, HORIZON = np.array([-0.5, -0.5]), np.array([-0.5, -0.1]), 20


class Free(torch.nn.Module):
    """WallDoor's motion away from its wall (the tasks here stay on one side of it)."""

    def forward(self, state, action):
        return (state + 0.05 * action).clamp(-1, 1)


def model_env():
    return TransitionModelEnv(Free(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))


def episode(name, replan_every, optim_steps):
    env = model_env()
    return run_episode(
        make_env("WallDoor-v0"),
        lambda: make_planner(name, env, HORIZON, optim_steps=optim_steps, success_radius=0.05),
        Task.exact(START, GOAL),
        HORIZON,
        replan_every=replan_every,
    )


@pytest.mark.parametrize("name", ["cem", "grasp"])
def test_an_mpc_episode_replans_on_schedule_and_reaches_the_goal_in_the_real_env(name):
    result = episode(name, replan_every=3, optim_steps=30 if name == "cem" else 100)
    steps = result.path.shape[0] - 1
    assert result.success and result.final_distance < 0.05
    assert result.plans == -(-steps // 3)  # a plan every 3 executed steps
    assert result.predicted_distance is not None and result.predicted_distance < 0.05
    assert 8 <= steps <= HORIZON  # the goal is 8 steps away (0.4 at 0.05 a step): zero actions never reach it


def test_torchrl_cem_replans_at_every_step_in_mpc_and_reports_no_plan():
    result = episode("torchrl-cem", replan_every=3, optim_steps=10)
    steps = result.path.shape[0] - 1
    assert result.success and steps < HORIZON
    assert result.plans == steps  # its first action is all TorchRL's planner returns
    assert result.predicted_distance is None
    # Each plan is optim_steps rollouts over the steps that remain.
    assert result.model_calls == sum(10 * (HORIZON - t) for t in range(steps))


def test_torchrl_cem_is_refused_in_open_loop_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="--mode mpc"):
        episode("torchrl-cem", replan_every=None, optim_steps=2)
    with pytest.raises(SystemExit, match="--mode mpc"):
        main(["--quick", "--planners", "torchrl-cem", "--out", str(tmp_path)])


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--episodes", "0"], "--episodes: must be at least 1"),
        (["--horizons", "20", "0"], "--horizons: must be at least 1"),
        (["--replan-every", "0"], "--replan-every: must be at least 1"),
        (["--seed", "-1"], "--seed: must be at least 0"),
        (["--budget", "-1"], "--budget: must be a positive, finite number"),
        (["--penalty-weights", "-1"], "--penalty-weights: must be a non-negative, finite number"),
        (["--threads", "0"], "--threads: must be at least 1"),
    ],
)
def test_bad_benchmark_flags_fail_before_any_training(flags, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit):
        main(["--quick", *flags, "--out", str(tmp_path / "out")])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()  # nothing was trained


def test_an_out_path_that_is_a_file_fails_before_any_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    taken = tmp_path / "results"
    taken.write_text("not a folder")
    with pytest.raises(SystemExit):
        main(["--quick", "--out", str(taken)])
    assert "is a file, not a folder" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_a_crash_loses_only_the_cell_it_was_in(tmp_path, monkeypatch):
    import json

    from torchrl_grasp.benchmark import __main__ as benchmark_main

    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    real_run_episode, calls = benchmark_main.run_episode, []

    def crashes_in_the_second_cell(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:  # the quick run has 2 episodes per cell
            raise RuntimeError("killed")
        return real_run_episode(*args, **kwargs)

    monkeypatch.setattr(benchmark_main, "run_episode", crashes_in_the_second_cell)
    with pytest.raises(RuntimeError, match="killed"):
        main(["--quick", "--env", "walldoor", "--planners", "grasp", "cem", "--out", str(tmp_path / "out")])
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(r["planner"], r["episodes"]) for r in saved] == [("grasp", 2)]


@pytest.mark.parametrize("name", sorted(set(SETTINGS) - set(FIRST_ACTION_ONLY)))
def test_every_benchmark_planner_reaches_a_goal_at_its_published_settings(name):
    """Each named setting of the benchmark builds and plans: a goal 0.3 away in the free plane."""
    from tensordict import TensorDict

    planner = make_planner(name, model_env(), 12, success_radius=0.05)
    result = planner.plan(TensorDict(observation=torch.tensor([-0.5, -0.5]), goal=torch.tensor([-0.2, -0.5])))
    assert result.goal_distance < 0.025, (name, result.goal_distance)  # the early stop's radius
