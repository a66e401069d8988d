"""``benchmarks/planner_speed.py --quick`` runs and measures what it says: the parallel sync's
plans make fewer world-model calls than the serial sync's, deadline plans end at the deadline,
and the compiled iteration runs."""

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "planner_speed.py"


def test_quick_planner_speed_compares_the_syncs(capsys, monkeypatch):
    spec = importlib.util.spec_from_file_location("planner_speed", SCRIPT)
    planner_speed = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "planner_speed", planner_speed)  # its dataclasses look themselves up
    spec.loader.exec_module(planner_speed)
    rows, sync_rows = planner_speed.main(["--quick", "--threads", "1"])
    assert rows and rows[0]["iteration_s"] > 0 and rows[0]["floor_s"] > 0
    (sync_row,) = sync_rows
    assert 0 < sync_row["share"] < 1 and 0 < sync_row["parallel_share"] < 1
    # 10-step serial rollouts against a few batched Newton calls per rollout.
    assert sync_row["parallel_model_calls"] < sync_row["model_calls"]
    assert sync_row["parallel_fallbacks"] == 0
    out = capsys.readouterr().out
    assert "past / sync step" in out  # the deadline table, whose plans all ended "deadline"
    assert "| eager / compiled |" in out  # the compiled iteration ran beside the eager one
