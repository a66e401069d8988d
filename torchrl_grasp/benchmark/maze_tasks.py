"""Tasks in a gymnasium-robotics maze whose shortest path turns: start and goal cells a given number of cells apart.

A straight line between start and goal would be a task any planner solves by pushing toward
the goal; these tasks need the walls to be gone around. The path length is counted in cells of
the maze graph (4-connected free cells); a task qualifies when that length is the one asked for
and exceeds the cells' Manhattan distance (a wall is in the way).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import gymnasium
import numpy as np

from torchrl_grasp.benchmark.episodes import Task


def free_cells(maze_map) -> list[tuple[int, int]]:
    """The maze's free cells ``(row, column)``: every entry that is not a wall (``1``).

    Examples:
        >>> free_cells([[1, 1, 1], [1, 0, 0], [1, 1, 1]])
        [(1, 1), (1, 2)]
    """
    return [(r, c) for r, row in enumerate(maze_map) for c, cell in enumerate(row) if cell != 1]


def path_lengths(maze_map, source: tuple[int, int]) -> dict[tuple[int, int], int]:
    """Shortest path lengths (in moves between 4-connected free cells) from ``source`` to every reachable cell.

    Examples:
        >>> u_maze = [[1, 1, 1, 1, 1], [1, 0, 0, 0, 1], [1, 1, 1, 0, 1], [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]]
        >>> path_lengths(u_maze, (1, 1))[(3, 1)]  # around the U: 6 moves where the cells are 2 apart
        6
    """
    free = set(free_cells(maze_map))
    lengths, queue = {source: 0}, deque([source])
    while queue:
        r, c = queue.popleft()
        for cell in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if cell in free and cell not in lengths:
                lengths[cell] = lengths[(r, c)] + 1
                queue.append(cell)
    return lengths


def turning_pairs(maze_map, moves: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The (start, goal) cell pairs whose shortest path is ``moves`` long and longer than their Manhattan distance.

    Examples:
        >>> u_maze = [[1, 1, 1, 1, 1], [1, 0, 0, 0, 1], [1, 1, 1, 0, 1], [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]]
        >>> turning_pairs(u_maze, 6)  # the U's two ends
        [((1, 1), (3, 1)), ((3, 1), (1, 1))]
    """
    pairs = []
    for start in free_cells(maze_map):
        for goal, length in path_lengths(maze_map, start).items():
            manhattan = abs(goal[0] - start[0]) + abs(goal[1] - start[1])
            if length == moves and length > manhattan:
                pairs.append((start, goal))
    return pairs


@dataclass(frozen=True)
class MazeTasks:
    """Samples tasks of a gymnasium-robotics maze (``PointMaze_*``, ``AntMaze_*``) for a horizon.

    A horizon of ``H`` env steps asks for a path of the longest turning length up to
    ``H // steps_per_cell`` moves (the shortest turning length where none is that short); the env's reset draws the exact positions within the two
    cells (``options={"reset_cell": ..., "goal_cell": ...}`` and a seed). ``steps_per_cell``
    defaults to 13: at an action repeat of 2, a waypoint controller needs about 10 steps per cell
    of the U-maze (61 steps for its 6 moves), and the planners get a third more.

    Examples:
        >>> u_maze = [[1, 1, 1, 1, 1], [1, 0, 0, 0, 1], [1, 1, 1, 0, 1], [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]]
        >>> [MazeTasks().moves(u_maze, horizon) for horizon in (40, 52, 65, 80, 120)]  # the U's turns: 4 to 6 moves
        [4, 4, 5, 6, 6]
    """

    steps_per_cell: int = 13

    def moves(self, maze_map, horizon: int) -> int:
        """The path length asked for at ``horizon`` (see the class)."""
        longest = len(free_cells(maze_map))
        turning = [moves for moves in range(1, longest + 1) if turning_pairs(maze_map, moves)]
        if not turning:
            raise ValueError("The maze has no pair of cells whose shortest path turns.")
        fitting = [moves for moves in turning if moves <= horizon // self.steps_per_cell]
        return max(fitting) if fitting else min(turning)

    def __call__(self, env: gymnasium.Env, rng: np.random.Generator, horizon: int) -> Task:
        """One task: a random qualifying cell pair, and a seed for the positions within the cells."""
        maze = env.unwrapped.maze
        pairs = turning_pairs(maze.maze_map, self.moves(maze.maze_map, horizon))
        start, goal = pairs[int(rng.integers(len(pairs)))]
        reset = {
            "seed": int(rng.integers(2**31)),
            "options": {"reset_cell": np.array(start), "goal_cell": np.array(goal)},
        }
        centre = maze.cell_rowcol_to_xy
        return Task(reset, centre(np.array(start)), centre(np.array(goal)))
