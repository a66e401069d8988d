"""``python -m torchrl_grasp.benchmark --quick`` runs end to end and writes what it promises."""

import functools
import itertools
import json
import sys

import pytest
import torch

from torchrl_grasp.benchmark import __main__ as benchmark_main
from torchrl_grasp.benchmark.__main__ import main
from torchrl_grasp.benchmark.planners import make_planner
from torchrl_grasp.benchmark.suite import PIXEL_MODEL_RECIPES, SUITE, quick_pixel_model
from torchrl_grasp.dreamer import load_or_train_pixel_model

RECORD_KEYS = {"env", "horizon", "planner", "episodes", "success_rate", "median_time_to_success_s"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("out")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCHRL_GRASP_CACHE", str(cache))
        records = main(
            ["--quick", "--env", "walldoor", "--planners", "grasp", "cem", "--mode", "open-loop", "mpc", "--out", str(out)]
        )
    return records, out


def test_quick_benchmark_writes_the_table_the_records_and_the_plot(quick_run):
    records, out = quick_run
    assert [(r["planner"], r["mode"]) for r in records] == [
        ("grasp", "open-loop"), ("grasp", "mpc"), ("cem", "open-loop"), ("cem", "mpc")
    ]
    saved = json.loads((out / "results.json").read_text())
    assert saved == records
    for record in saved:
        assert RECORD_KEYS <= set(record)
        assert record["episodes"] == 2 and 0.0 <= record["success_rate"] <= 1.0
        assert (record["median_time_to_success_s"] is None) == (record["success_rate"] == 0.0)
        assert record["model_calls_per_plan"] > 0 and record["seconds_per_plan"] > 0
    table = (out / "results.md").read_text()
    assert "| H | grasp | cem |" in table and "Machine:" in table
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_budget_plans_until_the_deadline(tmp_path, monkeypatch):
    # A clock that reads one second later at every reading: the initial plan's evaluation reads it
    # twice (a reserve of 1 s), so a budget of b seconds ends each GRASP plan after int(b) - 2
    # iterations (the first check past b, less the reserve), whatever this machine's speed.
    clock = itertools.count().__next__
    monkeypatch.setattr(benchmark_main, "make_planner", functools.partial(make_planner, clock=clock))
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    small, large = (
        main(["--quick", "--env", "walldoor", "--planners", "grasp", "--budget", str(b), "--out", str(tmp_path / str(b))])[0]
        for b in (4.5, 7.5)
    )
    assert (small["iterations_per_plan"], large["iterations_per_plan"]) == (2, 5)
    assert small["budget_s"] == 4.5 and small["optim_steps"] == 40  # --quick's cap, not reached


def test_device_refuses_the_pixel_tier_before_any_training(tmp_path, monkeypatch):
    # A GPU is not needed to reach the check: argparse's type is what refuses cuda on this machine.
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    args = benchmark_main.build_parser().parse_args(["--quick", "--env", "walldoor-pixels", "--out", str(tmp_path)])
    args.device = torch.device("cuda")
    with pytest.raises(SystemExit, match="walldoor-pixels plans in a Dreamer latent filtered on the CPU"):
        benchmark_main.run(args)
    assert not (tmp_path / "cache").exists()


def test_device_cpu_is_the_default_and_plans_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    argv = ["--quick", "--env", "walldoor", "--planners", "grasp", "--threads", "1"]
    default, on_cpu = (
        main([*argv, *extra, "--out", str(tmp_path / name)])[0]
        for name, extra in (("default", []), ("cpu", ["--device", "cpu"]))
    )
    same = ("median_final_distance", "median_model_error", "model_calls_per_plan", "success_rate")
    assert [default[key] for key in same] == [on_cpu[key] for key in same]


def test_budget_refuses_torchrl_planners_before_any_training(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit, match="takes no time budget"):
        main(["--quick", "--planners", "torchrl-cem", "--mode", "mpc", "--budget", "1", "--out", str(tmp_path)])
    assert not (tmp_path / "cache").exists()


def test_model_seed_trains_another_model_of_the_same_recipe(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(cache))
    runs = [
        main(["--quick", "--env", "walldoor", "--planners", "cem", "--out", str(tmp_path / f"out{seed}"), *extra])[0]
        for seed, extra in ((0, []), (1, ["--model-seed", "1"]))
    ]
    assert len(list((cache / "world_models").glob("WallDoor-v0-*.pt"))) == 2  # two trainings, cached apart
    assert runs[0]["median_model_error"] != runs[1]["median_model_error"]  # the same tasks, another model


def test_quick_pusht_benchmark_runs_and_writes_results(tmp_path, monkeypatch):
    pytest.importorskip("gym_pusht")
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    records = main(["--quick", "--env", "pusht", "--threads", "1", "--out", str(tmp_path / "out")])
    assert [(r["env"], r["horizon"], r["planner"]) for r in records] == [
        ("pusht", 20, "grasp"), ("pusht", 20, "gd"), ("pusht", 20, "cem")
    ]
    for record in records:
        assert record["episodes"] == 2 and 0.0 <= record["success_rate"] <= 1.0
        assert record["predicted_success_rate"] is None  # success is coverage, not a distance
        assert record["model_calls_per_plan"] > 0 and record["median_model_error"] >= 0
        # DINO-WM's test beside the coverage test; it is looser, so it passes wherever coverage does
        assert record["second_test"] == "DINO-WM's test"
        assert record["success_rate"] <= record["second_success_rate"] <= 1.0
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == records
    text = (tmp_path / "out" / "results.md").read_text()
    assert "### pusht, open-loop, published settings" in text and "Success by DINO-WM's test" in text


def test_pusht_without_gym_pusht_fails_before_training_and_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    for module in ("gym_pusht", "gym_pusht.envs", "gym_pusht.envs.pusht"):
        monkeypatch.setitem(sys.modules, module, None)  # as if gym-pusht were not installed
    with pytest.raises(ImportError, match=r"torchrl-grasp\[pusht\]"):
        main(["--quick", "--env", "walldoor", "pusht", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "cache").exists()  # nothing was trained


@pytest.mark.parametrize("entry", ["main", "load_view", "sample_tasks", "real_env"])
def test_a_tier_whose_package_is_missing_names_the_extra_before_training(tmp_path, monkeypatch, entry):
    """Every way into a pointmaze tier registers gymnasium-robotics first (or names the extra)."""
    from torchrl_grasp.benchmark.suite import SUITE

    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "gymnasium_robotics", None)  # as if it were not installed
    tier = SUITE["pointmaze-umaze"]
    calls = {
        "main": lambda: main(["--quick", "--env", "pointmaze-umaze", "--out", str(tmp_path / "out")]),
        "load_view": lambda: tier.load_view(progress=False),
        "sample_tasks": lambda: tier.sample_tasks(80, 2, seed=0),
        "real_env": tier.real_env,
    }
    with pytest.raises(ImportError, match=r"torchrl-grasp\[robotics\]"):
        calls[entry]()
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("tier", ["walldoor-pixels", "walldoor-pixels-position"])
def test_quick_pixel_tier_plans_in_the_latent_space_and_is_judged_in_the_real_env(tier, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    records = main(["--quick", "--env", tier, "--threads", "1", "--out", str(tmp_path / "out")])
    assert [(r["env"], r["planner"]) for r in records] == [(tier, "grasp"), (tier, "gd"), (tier, "cem")]
    for record in records:
        assert record["episodes"] == 2 and 0.0 <= record["success_rate"] <= 1.0
        # Distances in the report are positions (read off the decoded latent), in the arena's units.
        assert 0.0 <= record["median_final_distance"] < 3.0 and 0.0 <= record["median_model_error"] < 3.0
        assert record["model_calls_per_plan"] > 0
    assert (tmp_path / "out" / "results.png").exists()


def test_pixel_model_flag_plans_on_that_recipes_model(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    args = ["--quick", "--env", "walldoor-pixels", "--planners", "cem", "--threads", "1", "--out", str(tmp_path / "out")]
    main([*args, "--pixel-model", "overshooting"])
    overshooting = quick_pixel_model(PIXEL_MODEL_RECIPES["overshooting"])
    assert overshooting.overshooting_steps and overshooting != quick_pixel_model(SUITE["walldoor-pixels"].pixel_model)
    # The run trained and cached the overshooting recipe's model, and no other.
    assert load_or_train_pixel_model(overshooting, progress=False).from_cache
    assert len(list((tmp_path / "cache").rglob("pixels-*.pt"))) == 1


def test_quick_benchmark_with_an_ensemble_penalises_its_disagreement(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    records = main([
        "--quick", "--env", "walldoor", "--planners", "grasp", "--ensemble", "3",
        "--penalty-weights", "0", "1", "--out", str(tmp_path / "out"),
    ])
    plain, careful = records
    assert (plain["planner"], careful["planner"]) == ("grasp", "grasp (penalty 1)")
    # The ensemble's disagreement along the plans is measured for both; the penalised plans keep
    # to where the members agree (the quick model's two tasks, ranked by it).
    assert plain["median_plan_penalty"] > 0 and careful["median_plan_penalty"] > 0
    assert careful["median_plan_penalty"] < plain["median_plan_penalty"]
    assert "plan disagreement" in (tmp_path / "out" / "results.md").read_text()


def test_a_penalty_without_an_ensemble_fails_before_training_and_names_the_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit, match="--ensemble 5"):
        main(["--quick", "--env", "walldoor", "--penalty-weights", "0.3", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "cache").exists()


def test_every_planner_of_the_package_warm_starts_its_mpc_replans():
    # A fair MPC: each replan starts from the planner's last plan, shifted, for the samplers and
    # the gradient planners alike; only the ablation that measures it starts afresh.
    from torchrl.data import Bounded, Unbounded

    from torchrl_grasp import TransitionModelEnv
    from torchrl_grasp.benchmark.planners import FIRST_ACTION_ONLY, SETTINGS
    from torchrl_grasp.world_models.analytic import SmoothWallDoor

    env = TransitionModelEnv(SmoothWallDoor(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
    afresh = {name for name in SETTINGS if name not in FIRST_ACTION_ONLY and not make_planner(name, env, 20).warm_start}
    assert afresh == {"grasp-no-warm-start"}
