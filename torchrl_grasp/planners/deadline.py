"""A plan's wall-time budget: when an anytime planner stops and returns the best plan found so far."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator

#: A clock: seconds as a float, increasing (``time.perf_counter``; the tests pass a scripted one).
Clock = Callable[[], float]


class Deadline:
    """``seconds`` of ``clock`` from construction, less a ``reserve`` for the work that ends a plan.

    A planner that stops still evaluates what it holds (a rollout of its actions): :meth:`timed`
    measures that work each time it runs and keeps its duration as the reserve, so that the
    plan stops while there is time left for it. ``None`` seconds never pass, and then the clock
    is never read. Reading the clock is the only cost of a check: no device synchronisation. On
    a GPU the clock sees the work launched, which runs ahead of the work done.

    Examples:
        >>> readings = iter([10.0, 10.2, 10.6]).__next__
        >>> deadline = Deadline(0.5, clock=readings)  # reads 10.0: ends at 10.5
        >>> deadline.passed(), deadline.passed()  # reads 10.2, then 10.6
        (False, True)
        >>> deadline.passed()  # once passed, passed: the clock is not read again
        True
        >>> deadline = Deadline(0.5, clock=iter([10.0, 10.125, 10.25, 10.375]).__next__)
        >>> with deadline.timed():  # an evaluation from 10.125 to 10.25
        ...     pass
        >>> deadline.reserve, deadline.passed()  # 10.375 + 0.125 >= 10.5: no time left to evaluate again
        (0.125, True)
        >>> Deadline(None).passed(), Deadline(None).bounded, Deadline(0.5, clock=lambda: 0.0).bounded
        (False, False, True)
        >>> Deadline(-1.0)
        Traceback (most recent call last):
        ValueError: time_budget must be None or a positive, finite number of seconds, got -1.0.
    """

    def __init__(self, seconds: float | None, clock: Clock = time.perf_counter):
        check_time_budget(seconds)
        self.seconds, self.clock = seconds, clock
        self.ends = None if seconds is None else clock() + seconds
        self.reserve = 0.0
        self._passed = False

    @property
    def bounded(self) -> bool:
        """Whether there is a budget at all (``seconds`` is not ``None``)."""
        return self.ends is not None

    def passed(self) -> bool:
        """Whether the budget, less the reserve, is spent (reads the clock until it is)."""
        if self.ends is not None and not self._passed:
            self._passed = self.clock() + self.reserve >= self.ends
        return self._passed

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """Times the work inside (two readings of the clock, none without a budget) as the reserve."""
        if self.ends is None:
            yield
            return
        began = self.clock()
        yield
        self.reserve = self.clock() - began


def check_time_budget(seconds: float | None) -> None:
    """Raises a ``ValueError`` unless ``seconds`` is ``None`` or a positive, finite number.

    Examples:
        >>> check_time_budget(0.5)
        >>> check_time_budget(0)
        Traceback (most recent call last):
        ValueError: time_budget must be None or a positive, finite number of seconds, got 0.
    """
    if seconds is None:
        return
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"time_budget must be None or a positive, finite number of seconds, got {seconds!r}.")
