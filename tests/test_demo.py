"""The demo that `make demo` runs, at its --quick size, and the GRASP recorder behind its picture."""

import contextlib
import io

import matplotlib.image
import numpy as np
import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded, Unbounded

from torchrl_grasp import TransitionModelEnv
from torchrl_grasp.benchmark.planners import QUICK_STEPS, make_planner
from torchrl_grasp.benchmark.suite import SUITE
from torchrl_grasp.demo import cli
from torchrl_grasp.demo.recording import IterateRecorder

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """``python -m torchrl_grasp.demo --quick`` with a private cache: its result, its output, its folder."""
    out = tmp_path_factory.mktemp("out")
    threads = torch.get_num_threads()
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path_factory.mktemp("cache")))
        result = cli.main(["--quick", "--threads", "1", "--out", str(out)])
    torch.set_num_threads(threads)
    return result, printed.getvalue(), out


def test_quick_demo_prints_the_table_of_what_happened(quick_demo):
    result, printed, _ = quick_demo
    assert "World model trained and saved to" in printed
    assert "\ntask 1/2: " in printed and "\ntask 2/2: " in printed
    assert "| planner | reached the goal | median plan time |" in printed
    for name in ("grasp", "cem"):
        reached = sum(outcome.episodes[name].success for outcome in result.outcomes)
        assert f"| {name} | {reached}/2 | " in printed
    assert result.table in printed


def test_quick_demo_writes_a_panel_per_task(quick_demo):
    result, printed, out = quick_demo
    assert result.figure == out / "demo.png"
    assert result.figure.read_bytes()[:8] == PNG_MAGIC
    assert f"Wrote {result.figure}" in printed
    height, width, _ = matplotlib.image.imread(result.figure).shape
    assert width > 1.5 * height  # two square panels side by side


def test_quick_demo_executes_both_plans_in_the_real_env_across_the_wall(quick_demo):
    result, _, _ = quick_demo
    gym_env = SUITE["walldoor"].gym_env()
    assert len(result.outcomes) == 2
    for outcome in result.outcomes:
        assert not gym_env.segment_is_free(outcome.start, outcome.goal)[0]  # the wall is in the way
        for name in ("grasp", "cem"):
            episode = outcome.episodes[name]
            path = episode.path.numpy()
            assert 2 <= len(path) <= 21  # horizon 20, stopped at the first success
            np.testing.assert_allclose(path[0], outcome.start, atol=1e-6)
            assert np.linalg.norm(path[-1] - outcome.goal) == pytest.approx(episode.final_distance, abs=1e-5)
            assert not gym_env.blocked(path).any()  # the real env never lets a point into the wall
            steps = np.linalg.norm(np.diff(path, axis=0), axis=-1)
            assert (steps <= 0.025 * np.sqrt(2) + 1e-6).all()


def test_quick_demo_keeps_grasps_virtual_states_from_the_initial_guess_to_the_end(quick_demo):
    result, _, _ = quick_demo
    last = QUICK_STEPS["grasp"]
    for outcome in result.outcomes:
        iterates = outcome.grasp_iterates
        assert sorted(iterates) == [0, 13, 27, last]
        start, goal = torch.as_tensor(outcome.start).float(), torch.as_tensor(outcome.goal).float()
        for states in iterates.values():
            assert states.shape == (21, 2)
            torch.testing.assert_close(states[0], start)
            torch.testing.assert_close(states[-1], goal, atol=1e-5, rtol=0)  # the goal pins the last state
        assert not torch.allclose(iterates[last], iterates[0])  # the optimisation moved them


def _point_mass_env():
    class PointMass(torch.nn.Module):
        def forward(self, state, action):
            return state + 0.1 * action

    return TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))


def test_recording_does_not_change_the_plan():
    env = _point_mass_env()
    td = TensorDict(observation=torch.zeros(2), goal=torch.tensor([0.8, -0.4]))
    plain = make_planner("grasp", env, 12, optim_steps=60, seed=3).plan(td)
    planner = make_planner("grasp", env, 12, optim_steps=60, seed=3)
    planner.callback = recorder = IterateRecorder([0, 30, 50, 60])
    recorded = planner.plan(td)
    torch.testing.assert_close(recorded.actions, plain.actions, atol=0, rtol=0)
    assert sorted(recorder.iterates) == [0, 30, 50, 60]
    # The plan's virtual states are its restart's iterate at the sync that found it (every 50
    # iterations and at the end; the syncs move actions only).
    winner = int(recorded.restart)
    at_syncs = [recorder.iterates[i]["observation"][winner] for i in (50, 60)]
    returned = recorded.virtual_states["observation"][1:]
    assert any(torch.equal(states, returned) for states in at_syncs)
    assert not torch.equal(*at_syncs)  # the two candidates differ: the check tells them apart


def test_the_recorder_keeps_the_last_iteration_of_a_plan_that_stopped_early():
    env = _point_mass_env()
    td = TensorDict(observation=torch.zeros(2), goal=torch.tensor([0.3, 0.0]))
    planner = make_planner("grasp", env, 12, optim_steps=300, seed=3, success_radius=0.1)
    planner.callback = recorder = IterateRecorder([0, 300])
    result = planner.plan(td)
    assert result.status == "reached" and result.iterations < 300
    assert sorted(recorder.iterates) == [0, result.iterations]


def test_demo_plan_seconds_gives_every_plan_a_deadline(tmp_path, monkeypatch):
    # The planners' clock reads one second later at every reading: --plan-seconds 5.5 ends GRASP's
    # plan after its third iteration (its initial plan's evaluation took two readings first) and
    # CEM's after its fourth, whatever this machine's speed; the picture shows GRASP's first and last.
    import functools
    import itertools

    from torchrl_grasp.demo import runner

    clock = itertools.count().__next__
    monkeypatch.setattr(runner, "make_planner", functools.partial(make_planner, clock=clock))
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    printed, threads = io.StringIO(), torch.get_num_threads()
    with contextlib.redirect_stdout(printed):
        result = cli.main(["--quick", "--tasks", "1", "--threads", "1", "--plan-seconds", "5.5", "--out", str(tmp_path)])
    torch.set_num_threads(threads)
    (outcome,) = result.outcomes
    assert {name: episode.iterations for name, episode in outcome.episodes.items()} == {"grasp": 3, "cem": 4}
    assert sorted(outcome.grasp_iterates) == [0, 3]
    assert "open loop, 5.5 s per plan, success in the real env" in printed.getvalue()
