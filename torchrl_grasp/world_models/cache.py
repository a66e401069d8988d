"""Where trained models are kept: a file per configuration, named by a hash of it, written atomically."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

T = TypeVar("T")

CACHE_ENV_VAR = "TORCHRL_GRASP_CACHE"
DEFAULT_CACHE_DIR = "~/.cache/torchrl_grasp"


def cache_dir() -> Path:
    """The cache directory: ``$TORCHRL_GRASP_CACHE``, else ``~/.cache/torchrl_grasp``.

    Examples:
        >>> import os
        >>> os.environ["TORCHRL_GRASP_CACHE"] = "/tmp/grasp-cache"
        >>> cache_dir()
        PosixPath('/tmp/grasp-cache')
        >>> del os.environ["TORCHRL_GRASP_CACHE"]
    """
    return Path(os.environ.get(CACHE_ENV_VAR) or DEFAULT_CACHE_DIR).expanduser()


def config_hash(config: Any, format_version: int) -> str:
    """A 16-hex-digit hash of a (nested) dataclass's fields and of the file format's version.

    Fields that are ``None`` are left out, so that adding an optional field (default ``None``) to a
    config keeps the names of the files cached before it.

    Examples:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Config:
        ...     steps: int = 10
        >>> config_hash(Config(), 1) == config_hash(Config(), 1)
        True
        >>> config_hash(Config(), 1) == config_hash(Config(20), 1)
        False
        >>> config_hash(Config(), 1) == config_hash(Config(), 2)
        False
        >>> @dataclass(frozen=True)
        ... class Extended(Config):
        ...     option: int | None = None
        >>> config_hash(Extended(), 1) == config_hash(Config(), 1)
        True
        >>> config_hash(Extended(option=3), 1) == config_hash(Config(), 1)
        False
    """
    fields = _without_none(dataclasses.asdict(config))
    text = json.dumps({"format_version": format_version, "config": fields}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _without_none(fields: dict) -> dict:
    """``fields`` (nested dicts) without the entries whose value is ``None``."""
    return {
        name: _without_none(value) if isinstance(value, dict) else value
        for name, value in fields.items()
        if value is not None
    }


def cache_path(name: str, config: Any, format_version: int, directory: Path | None = None) -> Path:
    """``<directory>/world_models/<name>-<hash>.pt``, ``directory`` defaulting to :func:`cache_dir`.

    Examples:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Config:
        ...     steps: int = 10
        >>> cache_path("WallDoor-v0", Config(), 1, Path("/tmp")).name.startswith("WallDoor-v0-")
        True
    """
    safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    return (
        (directory or cache_dir()) / "world_models" / f"{safe_name}-{config_hash(config, format_version)}.pt"
    )


def save_atomically(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then an atomic rename onto it.

    Readers never see a half-written file, and concurrent writers of the same path leave one
    whole file.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     path = Path(directory) / "world_models" / "model.pt"  # missing folders are made
        ...     save_atomically({"weights": torch.ones(2)}, path)
        ...     loaded = torch.load(path)
        ...     files = [p.name for p in path.parent.iterdir()]  # no temporary file left behind
        >>> loaded, files
        ({'weights': tensor([1., 1.])}, ['model.pt'])
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(obj, file)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a cache is as readable as any file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_cached(path: Path, read: Callable[[Path], T]) -> T | None:
    """``read(path)``, or ``None`` with a warning naming the file when it is unreadable or foreign.

    A truncated, empty or foreign cache file would otherwise fail every run; returning ``None``
    lets the caller train again and overwrite it.

    Examples:
        >>> import tempfile, warnings
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     broken = Path(directory) / "model.pt"
        ...     _ = broken.write_bytes(b"")  # an interrupted copy
        ...     with warnings.catch_warnings(record=True) as caught:
        ...         warnings.simplefilter("always")
        ...         loaded = load_cached(broken, lambda p: torch.load(p, weights_only=True))
        >>> loaded is None, "is unreadable or foreign" in str(caught[0].message)
        (True, True)
    """
    try:
        return read(path)
    except Exception as error:  # noqa: BLE001 - any failure to read a cache file means: train again
        warnings.warn(
            f"The cache file {path} is unreadable or foreign ({type(error).__name__}: {error}); the model "
            "is trained again and the file replaced.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def save_or_warn(obj: Any, path: Path) -> bool:
    """:func:`save_atomically`, or a warning naming the path when it cannot be written; whether it was saved.

    A model that took minutes to train is returned to the caller either way, never thrown away.

    Examples:
        >>> import tempfile, warnings
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     blocked = Path(directory) / "a-file"
        ...     _ = blocked.write_text("")  # the cache folder's place is taken by a file
        ...     with warnings.catch_warnings(record=True) as caught:
        ...         warnings.simplefilter("always")
        ...         saved = save_or_warn({"weights": torch.ones(2)}, blocked / "world_models" / "model.pt")
        >>> saved, "is returned but not cached" in str(caught[0].message)
        (False, True)
    """
    try:
        save_atomically(obj, path)
        return True
    except OSError as error:
        warnings.warn(
            f"Could not write the trained model to {path} ({error}): it is returned but not cached, so the "
            f"next run trains it again. Set ${CACHE_ENV_VAR} to a writable folder.",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
