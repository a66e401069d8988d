"""Command-line argument types shared by the demo and the benchmark: bad values fail before any work."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


def int_at_least(minimum: int):
    """An argparse type: an int of at least ``minimum``.

    Examples:
        >>> int_at_least(1)("3")
        3
        >>> int_at_least(0)("-1")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be at least 0, got -1
    """

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"int_at_least_{minimum}"  # argparse names the type in its messages
    return parse


#: A count (episodes, steps, threads): at least 1.
positive_int = int_at_least(1)
#: A seed: at least 0.
non_negative_int = int_at_least(0)


def positive_float(text: str) -> float:
    """An argparse type: a finite float above 0 (seconds).

    Examples:
        >>> positive_float("2.5")
        2.5
        >>> positive_float("-1")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be a positive number, got -1.0
    """
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite float of at least 0 (a weight).

    Examples:
        >>> non_negative_float("0")
        0.0
        >>> non_negative_float("nan")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be a non-negative number, got nan
    """
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {value}")
    return value


def output_folder(text: str) -> Path:
    """An argparse type: a folder to write into, which may not exist yet but must not be a file.

    Examples:
        >>> import tempfile
        >>> output_folder(tempfile.mkdtemp()).is_dir()
        True
        >>> output_folder(tempfile.mkstemp()[1])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        argparse.ArgumentTypeError: ... is a file, not a folder: give a folder to write the results into
    """
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{path} is a file, not a folder: give a folder to write the results into"
        )
    return path
