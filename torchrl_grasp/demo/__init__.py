"""``make demo``: GRASP and CEM plan long paths through a wall's door on a learned world model.

What it does and shows is :data:`torchrl_grasp.demo.cli.DESCRIPTION` (``python -m
torchrl_grasp.demo --help``). :mod:`.runner` does the work, :mod:`.outcome` holds and tells its
results, :mod:`.plot` draws the picture, :mod:`.recording` keeps GRASP's virtual states at a few
iterations, :mod:`.cli` is the command line (also ``torchrl-grasp demo``).
"""

from torchrl_grasp.demo.outcome import TaskOutcome, summary_table
from torchrl_grasp.demo.runner import DemoResult, plan_and_execute, run_demo

__all__ = ["DemoResult", "TaskOutcome", "plan_and_execute", "run_demo", "summary_table"]
