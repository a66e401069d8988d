"""``python -m torchrl_grasp.world_models walldoor``: load or train a named world model, and report it.

Prints the cache file, how long the model took to make, its :class:`ValidationReport` and, for a
point-mass task, how often its rollouts go through obstacles (:func:`obstacle_violations`).
The cache is ``$TORCHRL_GRASP_CACHE`` (default ``~/.cache/torchrl_grasp``).
"""

from __future__ import annotations

import argparse

import gymnasium
import torch

from torchrl_grasp.world_models.learned import NAMED_MODELS, load_or_train
from torchrl_grasp.world_models.obstacle_check import obstacle_violations


def main(argv: list[str] | None = None) -> None:
    """``python -m torchrl_grasp.world_models [argv]``: load or train the named model and print its report.

    ``argv`` defaults to the command line. (A run trains a full model the first time, minutes, so
    the example shows only how an unknown name is refused.)

    Examples:
        >>> sorted(NAMED_MODELS)  # the names it takes
        ['obstaclenav', 'pusht', 'walldoor']
        >>> main(["cartpole"])  # argparse prints the choices to stderr
        Traceback (most recent call last):
        SystemExit: 2
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(NAMED_MODELS))
    parser.add_argument("--no-progress", action="store_true", help="no progress bar while training")
    parser.add_argument("--threads", type=int, help="torch threads (one is fastest for these small models)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = NAMED_MODELS[args.name]
    learned = load_or_train(config, progress=not args.no_progress)
    origin = "loaded from" if learned.from_cache else "trained and saved to"
    print(f"{config.env_id}: {origin} {learned.path} (made in {learned.train_seconds:.0f} s)")
    print(learned.report)
    task = gymnasium.make(config.env_id, **dict(config.env_kwargs)).unwrapped
    if hasattr(task, "blocked"):
        print(obstacle_violations(learned.model, task))


if __name__ == "__main__":
    main()
