"""Command-line argument types shared by the demo and the benchmark: bad values fail before any work."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch


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


def finite_float(*, allow_zero: bool):
    """An argparse type: a finite float above 0 (seconds), or at least 0 with ``allow_zero`` (a weight).

    Examples:
        >>> finite_float(allow_zero=False)("2.5"), finite_float(allow_zero=True)("0")
        (2.5, 0.0)
        >>> finite_float(allow_zero=False)("-1")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be a positive, finite number, got -1.0
        >>> finite_float(allow_zero=True)("nan")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be a non-negative, finite number, got nan
    """
    kind = "non-negative" if allow_zero else "positive"

    def parse(text: str) -> float:
        value = float(text)
        if not (math.isfinite(value) and (value >= 0 if allow_zero else value > 0)):
            raise argparse.ArgumentTypeError(f"must be a {kind}, finite number, got {value}")
        return value

    parse.__name__ = f"{kind}_float"  # argparse names the type in its messages
    return parse


#: Seconds: above 0.
positive_float = finite_float(allow_zero=False)
#: A weight: at least 0.
non_negative_float = finite_float(allow_zero=True)


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


def available_device(text: str) -> torch.device:
    """An argparse type: a torch device that this machine has (``cpu``, ``cuda``, ``cuda:1``, ...).

    Examples:
        >>> available_device("cpu")
        device(type='cpu')
        >>> available_device("gpu")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: 'gpu' is not a torch device: give cpu, cuda or cuda:N
    """
    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a torch device: give cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text}: torch sees no CUDA device on this machine; give cpu")
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"{text}: the benchmark runs on cpu or cuda")
    return device
