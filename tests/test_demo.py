"""The demo that `make demo` runs, at a small size."""

from torchrl_grasp import demo
from torchrl_grasp.world_models.analytic import wall_crossing_pairs


def test_demo_plans_and_prints_its_table(capsys):
    result = demo.run(pairs=2, horizon=40, restarts=1, seed=1)
    printed = capsys.readouterr().out
    assert result.actions.shape == (2, 40, 2)
    assert printed.count("\n| ") == 3  # the header and one row per pair
    assert "reached (within 0.1):" in printed
    pairs = wall_crossing_pairs(2, seed=1)
    gap = (pairs["goal"] - pairs["observation"]).norm(dim=-1)
    assert (result.goal_distance < 0.25 * gap).all(), (result.goal_distance, gap)
