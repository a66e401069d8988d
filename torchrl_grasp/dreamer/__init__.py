"""Dreamer-style pixel world models: TorchRL's RSSM parts, trained on images, planned in their latent space."""

from torchrl_grasp.dreamer.data import PixelEpisodes, distance_reward
from torchrl_grasp.dreamer.latent import LatentFilter
from torchrl_grasp.dreamer.pixels import PointMassPixels
from torchrl_grasp.dreamer.readout import PositionReadout, ReadoutConfig, load_or_fit_position_readout
from torchrl_grasp.dreamer.rssm import RSSMSize, RSSMWorldModel
from torchrl_grasp.dreamer.training import (
    PixelModelConfig,
    PixelModelReport,
    PixelWorldModel,
    fit_pixel_model,
    load_or_train_pixel_model,
)

__all__ = [
    "LatentFilter",
    "PixelEpisodes",
    "PixelModelConfig",
    "PixelModelReport",
    "PixelWorldModel",
    "PointMassPixels",
    "PositionReadout",
    "RSSMSize",
    "RSSMWorldModel",
    "ReadoutConfig",
    "distance_reward",
    "fit_pixel_model",
    "load_or_fit_position_readout",
    "load_or_train_pixel_model",
]
