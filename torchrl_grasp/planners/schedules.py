"""Schedules for GRASP's noise and goal weight: a constant, or ``iteration -> value``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torchrl_grasp.planners.base import check_rates

Schedule = float | Callable[[int], float]


def schedule_value(schedule: Schedule, iteration: int) -> float:
    """A constant, or a schedule ``iteration -> value``, at ``iteration``.

    Examples:
        >>> schedule_value(0.5, 10), schedule_value(lambda i: 1.0 / (1 + i), 3)
        (0.5, 0.25)
        >>> schedule_value(SyncPhaseDecay(0.01, every=4), 5)
        0.0075
    """
    return float(schedule(iteration)) if callable(schedule) else float(schedule)


@dataclass(frozen=True)
class SyncPhaseDecay:
    """``start`` at the first iteration after each sync, decaying linearly towards ``end`` by the next.

    The authors' schedule option for the state noise and the goal weight: each phase of
    ``every`` iterations (the sync's period: pass the planner's ``sync.every``) starts at
    ``start`` and ends one ``every``-th of the way short of ``end``, so that the states the sync
    reads are the least noised of the phase.

    Examples:
        >>> noise = SyncPhaseDecay(0.005, every=50)
        >>> [round(noise(i), 5) for i in (0, 25, 49, 50, 75)]
        [0.005, 0.0025, 0.0001, 0.005, 0.0025]
        >>> SyncPhaseDecay(0.005, every=0)
        Traceback (most recent call last):
        ...
        ValueError: every must be a positive number of iterations (the sync's period), got 0.
    """

    start: float
    every: int = 50
    end: float = 0.0

    def __post_init__(self):
        if not (isinstance(self.every, int) and self.every > 0):
            raise ValueError(
                f"every must be a positive number of iterations (the sync's period), got {self.every!r}."
            )
        check_rates(non_negative=dict(start=self.start, end=self.end))

    def __call__(self, iteration: int) -> float:
        fraction = (iteration % self.every) / self.every
        return self.start + (self.end - self.start) * fraction
