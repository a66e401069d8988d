"""How far a pixel world model's open-loop rollout drifts: the error that caps the pixel tier.

For each recipe and training seed, the model is loaded from the cache (or trained: 20 to 45
minutes on one core). Held-out episodes of random held actions (the same on every run) are
filtered for 4 steps; the prior mean is then rolled ahead on the episode's actions, as the
planners roll it, and the point is located in the decoded image
(:func:`torchrl_grasp.dreamer.training.open_loop_position_distances`). Printed per number of
steps: the mean and median distance to the true position, and the share within the tier's
success radius (0.1). ``tests/test_dreamer_pixels.py`` runs it on a tiny model.

    python benchmarks/pixel_model_error.py --recipes plain overshooting overshooting-decay --seeds 0 1
    python benchmarks/pixel_model_error.py --recipes overshooting-decay --max-hold-steps 10 30 90
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from torchrl_grasp.benchmark.suite import PIXEL_MODEL_RECIPES, quick_pixel_model
from torchrl_grasp.dreamer.data import PixelEpisodes
from torchrl_grasp.dreamer.training import (
    PixelModelConfig,
    load_or_train_pixel_model,
    open_loop_position_distances,
)

RECIPES = PIXEL_MODEL_RECIPES
RADIUS = 0.1


def held_out_episodes(config: PixelModelConfig, episodes: int, steps: int, max_hold_steps: int = 10) -> PixelEpisodes:
    """Random held-action episodes of the recipe's task, drawn from a seed no training uses; each
    action is held 1 to ``max_hold_steps`` steps (10, the training data's; longer holds drive the
    point farther and straighter, as plans do)."""
    return PixelEpisodes.collect(
        config.task(), episodes, steps, max_hold_steps=max_hold_steps, generator=torch.Generator().manual_seed(2026)
    )


def error_row(config: PixelModelConfig, held_out: PixelEpisodes, horizons: tuple[int, ...]) -> dict[int, tuple]:
    """Steps -> (mean, median, share within the radius) of the model of ``config``."""
    model = load_or_train_pixel_model(config).model
    distances = open_loop_position_distances(model, held_out, config, horizons=horizons)
    return {
        steps: (float(d.mean()), float(d.median()), float((d < RADIUS).float().mean())) for steps, d in distances.items()
    }


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=["plain", "overshooting"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--horizons", nargs="+", type=int, default=[10, 20, 40, 60, 80])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--steps", type=int, default=90, help="steps per held-out episode")
    parser.add_argument(
        "--max-hold-steps", nargs="+", type=int, default=[10],
        help="held-out actions are held 1 to this many steps (a row each; the training data's: 10)",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--quick", action="store_true", help="the quick benchmark's tiny models and data: the script's test"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    horizons = tuple(args.horizons)
    lines = [
        f"mean / median / within {RADIUS} of the true position, {args.episodes} held-out episodes",
        "",
        "| recipe | seed | actions held | " + " | ".join(f"{steps} steps" for steps in horizons) + " |",
        "|---|---:|---:|" + "---|" * len(horizons),
    ]
    for name in args.recipes:
        for seed in args.seeds:
            config = replace(RECIPES[name], seed=seed)
            if args.quick:
                config = quick_pixel_model(config)
            for hold in args.max_hold_steps:
                held_out = held_out_episodes(config, args.episodes, args.steps, hold)
                row = error_row(config, held_out, horizons)
                cells = [f"{m:.3f} / {md:.3f} / {share:.0%}" for m, md, share in (row[steps] for steps in horizons)]
                lines.append(f"| {name} | {seed} | 1 to {hold} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    main()
