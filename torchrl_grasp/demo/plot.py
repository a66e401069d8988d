"""The demo's picture: per task the wall and its door, GRASP's virtual states as they evolve, and the
paths that GRASP's and CEM's plans took in the real env."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from torchrl_grasp.demo.outcome import TaskOutcome, verdict
from torchrl_grasp.envs.point_mass import ARENA_HIGH, ARENA_LOW

Rectangle = tuple[float, float, float, float]  # x_low, x_high, y_low, y_high

PATH_STYLE = {  # planner -> colour and label of its executed path
    "grasp": ("#1f4e9c", "GRASP, executed"),
    "cem": ("#e07b00", "CEM, executed"),
}
PANEL_INCHES = 4.6
LEGEND_INCHES = 0.9


def wall_rectangles(door_center: float, door_width: float, wall_thickness: float) -> list[Rectangle]:
    """WallDoor's wall, the slab ``|x| < wall_thickness / 2`` less the door, as rectangles inside the arena.

    Examples:
        >>> wall_rectangles(door_center=0.5, door_width=0.2, wall_thickness=0.05)
        [(-0.025, 0.025, -1.0, 0.4), (-0.025, 0.025, 0.6, 1.0)]
    """
    half = wall_thickness / 2
    low, high = door_center - door_width / 2, door_center + door_width / 2
    pieces = [(-half, half, ARENA_LOW, low), (-half, half, high, ARENA_HIGH)]
    return [(x0, x1, y0, y1) for x0, x1, y0, y1 in pieces if y1 > y0]


def plot_outcomes(
    outcomes: Sequence[TaskOutcome],
    walls: Sequence[Rectangle],
    path: Path,
    *,
    success_threshold: float,
    horizon: int,
) -> None:
    """Writes a PNG at ``path`` with a panel per task (see :func:`draw_task`) and one legend.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np
        >>> import torch
        >>> from torchrl_grasp.benchmark.episodes import Episode
        >>> line = torch.linspace(-0.5, 0.5, 11)[:, None].expand(11, 2)
        >>> episode = Episode(True, 1.0, 1, 10, 0.0, 0.0, 0.0, path=line)
        >>> outcome = TaskOutcome(np.array([-0.5, -0.5]), np.array([0.5, 0.5]),
        ...                       {"grasp": episode, "cem": episode}, {0: line, 10: line})
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     figure = Path(directory) / "demo.png"
        ...     walls = wall_rectangles(0.5, 0.2, 0.05)
        ...     plot_outcomes([outcome], walls, figure, success_threshold=0.05, horizon=10)
        ...     figure.read_bytes()[:4]
        b'\\x89PNG'
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 2 if len(outcomes) == 4 else min(len(outcomes), 3)
    rows = math.ceil(len(outcomes) / columns)
    height = PANEL_INCHES * rows + LEGEND_INCHES
    figure, axes = plt.subplots(rows, columns, figsize=(PANEL_INCHES * columns, height), squeeze=False)
    for axis in axes.flat[len(outcomes) :]:
        axis.set_visible(False)
    for index, (outcome, axis) in enumerate(zip(outcomes, axes.flat), start=1):
        draw_task(axis, outcome, walls, success_threshold)
        axis.set_title(f"task {index}: {_verdicts(outcome)}", fontsize=10)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))  # the wall's two pieces share a label
    figure.legend(unique.values(), unique.keys(), loc="lower center", ncol=3, fontsize=9, frameon=False)
    figure.suptitle(
        f"WallDoor, horizon {horizon}: plans made on the learned world model, executed in the real env",
        fontsize=12,
    )
    figure.tight_layout(rect=(0, LEGEND_INCHES * 0.85 / height, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def draw_task(axis, outcome: TaskOutcome, walls: Sequence[Rectangle], success_threshold: float) -> None:
    """One task on a matplotlib ``axis``: the arena ``[-1, 1]^2``, the ``walls`` (grey), GRASP's virtual
    states after a few iterations (dots joined in time order, light to dark blue, from the initial
    guess between start and goal to the end), the path each planner's plan took in the real env (lines, the first planner's
    thickest so that overlapping paths all show, ending in a dot), the start (black dot) and the
    goal (red star in its success circle of radius ``success_threshold``).

    Examples:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import matplotlib.pyplot as plt
        >>> import numpy as np
        >>> import torch
        >>> from torchrl_grasp.benchmark.episodes import Episode
        >>> line = torch.linspace(-0.5, 0.5, 11)[:, None].expand(11, 2)
        >>> episode = Episode(True, 1.0, 1, 10, 0.0, 0.0, 0.0, path=line)
        >>> outcome = TaskOutcome(np.array([-0.5, -0.5]), np.array([0.5, 0.5]), {"grasp": episode}, {0: line})
        >>> figure, axis = plt.subplots()
        >>> draw_task(axis, outcome, wall_rectangles(0.5, 0.2, 0.05), success_threshold=0.05)
        >>> [line.get_label() for line in axis.lines if not line.get_label().startswith("_")]
        ['GRASP virtual states after 0 iterations', 'GRASP, executed', 'start', 'goal']
        >>> len(axis.patches), [float(x) for x in axis.get_xlim()]  # the wall's 2 pieces, the goal's circle
        (3, [-1.0, 1.0])
        >>> plt.close(figure)
    """
    from matplotlib import colormaps
    from matplotlib.patches import Circle
    from matplotlib.patches import Rectangle as Box

    for x0, x1, y0, y1 in walls:
        axis.add_patch(Box((x0, y0), x1 - x0, y1 - y0, color="0.35", zorder=1, label="wall"))
    iterations = sorted(outcome.grasp_iterates)
    for rank, iteration in enumerate(iterations):
        states = outcome.grasp_iterates[iteration].numpy()
        shade = colormaps["Blues"](0.3 + 0.6 * rank / max(len(iterations) - 1, 1))
        axis.plot(
            states[:, 0], states[:, 1], "o-", markersize=2.6, linewidth=0.6, alpha=0.9, color=shade, zorder=2,
            label=f"GRASP virtual states after {iteration} iterations",
        )
    for order, (name, episode) in enumerate(outcome.episodes.items()):
        colour, label = PATH_STYLE.get(name, (None, f"{name.upper()}, executed"))
        width = 4.0 if order == 0 else 2.0
        xy = episode.path.numpy()
        axis.plot(xy[:, 0], xy[:, 1], "-", linewidth=width, color=colour, zorder=3, label=label)
        axis.plot(*xy[-1], "o", markersize=width + 3, color=colour, zorder=4)
    axis.add_patch(Circle(outcome.goal, success_threshold, fill=False, color="crimson", zorder=4))
    axis.plot(*outcome.start, "o", markersize=8, color="black", zorder=5, label="start")
    axis.plot(*outcome.goal, "*", markersize=14, color="crimson", zorder=5, label="goal")
    axis.set(xlim=(ARENA_LOW, ARENA_HIGH), ylim=(ARENA_LOW, ARENA_HIGH), aspect="equal")
    axis.tick_params(labelsize=8)


def _verdicts(outcome: TaskOutcome) -> str:
    return ", ".join(f"{name.upper()} {verdict(episode)}" for name, episode in outcome.episodes.items())
