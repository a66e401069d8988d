"""What the demo keeps of one task, and how it tells it: a verdict per episode, a table over tasks."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from torchrl_grasp.benchmark.episodes import Episode


@dataclass
class TaskOutcome:
    """One start/goal pair, planned and executed by each planner.

    Attributes:
        start (np.ndarray): ``[2]``.
        goal (np.ndarray): ``[2]``.
        episodes (dict): planner name -> its :class:`~torchrl_grasp.benchmark.episodes.Episode`,
            whose ``path`` is the executed path in the real env.
        grasp_iterates (dict): GRASP iteration ``k`` -> the virtual states after ``k`` iterations
            of the restart GRASP returned, start included, ``[T + 1, 2]``.

    Examples:
        >>> import torch
        >>> line = torch.linspace(-0.5, 0.5, 11)[:, None].expand(11, 2)
        >>> episodes = {"grasp": Episode(True, 1.0, 1, 10, 0.0, 0.0, 0.0, path=line),
        ...             "cem": Episode(False, 0.5, 1, 20, 0.1, 0.3, 0.2, path=line[:6])}
        >>> outcome = TaskOutcome(np.array([-0.5, -0.5]), np.array([0.5, 0.5]), episodes, {0: line})
        >>> {name: verdict(episode) for name, episode in outcome.episodes.items()}
        {'grasp': 'reached', 'cem': 'missed by 0.30'}
    """

    start: np.ndarray
    goal: np.ndarray
    episodes: dict[str, Episode]
    grasp_iterates: dict[int, Tensor]


def verdict(episode: Episode) -> str:
    """``"reached"``, or how far from the goal the episode ended.

    Examples:
        >>> verdict(Episode(False, 1.0, 1, 10, 0.3, 0.4213, 0.01))
        'missed by 0.42'
    """
    return "reached" if episode.success else f"missed by {episode.final_distance:.2f}"


def summary_table(outcomes: Sequence[TaskOutcome], planners: Sequence[str]) -> str:
    """A markdown table: per planner, the tasks reached in the real env and the median plan time.

    Examples:
        >>> def episode(success, seconds):
        ...     return Episode(success, seconds, 1, 100, 0.0, 0.0, 0.0)
        >>> outcomes = [
        ...     TaskOutcome(None, None, {"grasp": episode(True, 2.0), "cem": episode(False, 1.0)}, {}),
        ...     TaskOutcome(None, None, {"grasp": episode(False, 3.0), "cem": episode(False, 2.0)}, {}),
        ... ]
        >>> print(summary_table(outcomes, ["grasp", "cem"]))
        | planner | reached the goal | median plan time |
        |---|---:|---:|
        | grasp | 1/2 | 2.50 s |
        | cem | 0/2 | 1.50 s |
    """
    lines = ["| planner | reached the goal | median plan time |", "|---|---:|---:|"]
    for name in planners:
        episodes = [outcome.episodes[name] for outcome in outcomes]
        reached = sum(e.success for e in episodes)
        seconds = statistics.median(e.plan_seconds for e in episodes)
        lines.append(f"| {name} | {reached}/{len(episodes)} | {seconds:.2f} s |")
    return "\n".join(lines)
