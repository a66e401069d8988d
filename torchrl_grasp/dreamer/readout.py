"""Positions read off a pixel model's latents, so that planners can reach for a goal in world units.

A goal image's latent is a poor target: the latents nearest it are often not at the goal (see
``docs/benchmarks.md``, "The pixel model"). A goal *position* is one the image gives exactly
(:meth:`~torchrl_grasp.dreamer.PointMassPixels.locate` on the rendered goal image), and the
model says where it imagines the point in its own decoded images. Decoding every imagined
latent at every planner iteration costs a convolutional decoder per step; a
:class:`PositionReadout` learns the same reading from the latent directly:

- :class:`PositionReadout`: an MLP ``(state, belief) -> position``, fitted to the positions in
  the model's decoded images of its filtered and imagined latents (nothing but the model and
  its decoder: no true position reaches it).
- :class:`PositionStep`: the prior mean's step followed by the readout, so that ``"position"``
  is one more state key of the model env and a goal is ``{"position": [x, y]}``.
- :func:`load_or_fit_position_readout`: the readout of a pixel model, cached beside it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torchrl.modules import MLP
from tqdm.auto import tqdm

from torchrl_grasp.dreamer.data import PixelEpisodes
from torchrl_grasp.dreamer.latent import LatentFilter
from torchrl_grasp.dreamer.rssm import PriorMeanStep, RSSMSize
from torchrl_grasp.dreamer.training import PixelWorldModel
from torchrl_grasp.world_models.cache import cache_path, load_cached, save_or_warn
from torchrl_grasp.world_models.step import WorldModelStep

READOUT_FORMAT_VERSION = 1
DECODE_CHUNK = 2048  # latents decoded at once while the readout's targets are made


@dataclass(frozen=True)
class ReadoutConfig:
    """How a :class:`PositionReadout` is fitted; its hash (with the pixel model's) names the cache file.

    Args:
        episodes (int): random episodes (the pixel model's task and action process) whose
            latents the readout learns from; the last eighth is held out. Defaults to ``128``.
        episode_steps (int): steps per episode: the imagined latents run up to this many steps
            ahead, as long plans do. Defaults to ``96``.
        context (int): filtered steps before the prior mean is rolled ahead. Defaults to ``4``.
        hidden (int): the MLP's width (two hidden layers). Defaults to ``256``.
        train_steps (int): Adam steps. Defaults to ``16000``.
        batch_size (int): latents per step. Defaults to ``512``.
        lr (float): Adam's learning rate. Defaults to ``1e-3``.
        seed (int): seeds the episodes, the initial weights and the batches. Defaults to ``0``.

    Examples:
        >>> ReadoutConfig().episodes, ReadoutConfig(seed=1) == ReadoutConfig()
        (128, False)
    """

    episodes: int = 128
    episode_steps: int = 96
    context: int = 4
    hidden: int = 256
    train_steps: int = 16000
    batch_size: int = 512
    lr: float = 1e-3
    seed: int = 0


class PositionReadout(nn.Module):
    """``(state, belief) -> position [*B, 2]``: where the model's decoded image of a latent shows the point.

    Examples:
        >>> readout = PositionReadout(RSSMSize(state_dim=4, belief_dim=8, hidden_dim=8), hidden=16)
        >>> readout(torch.zeros(5, 4), torch.zeros(5, 8)).shape
        torch.Size([5, 2])
    """

    def __init__(self, size: RSSMSize, hidden: int = 256):
        super().__init__()
        self.net = MLP(
            in_features=size.state_dim + size.belief_dim, out_features=2, depth=2, num_cells=hidden, activation_class=nn.ELU
        )

    def forward(self, state: Tensor, belief: Tensor) -> Tensor:
        return self.net(torch.cat([state, belief], -1))


class PositionStep(nn.Module):
    """``(state, belief, position, action) -> (state, belief, position)``: the prior mean's step, then the readout.

    The position it is given is not read: it is a state key only so that a goal can name it,
    and the next position is the readout of the next latent.

    Examples:
        >>> from torchrl.data import Bounded
        >>> from torchrl_grasp.dreamer import RSSMWorldModel
        >>> model = RSSMWorldModel(Bounded(-1.0, 1.0, (2,)), RSSMSize(4, 8, 8, 2, 2))
        >>> step = PositionStep(PriorMeanStep(model.prior), PositionReadout(model.size, hidden=16))
        >>> state, belief, position = step(torch.zeros(3, 4), torch.zeros(3, 8), torch.zeros(3, 2), torch.ones(3, 2))
        >>> torch.equal(position, step.readout(state, belief))
        True
    """

    def __init__(self, step: PriorMeanStep, readout: PositionReadout):
        super().__init__()
        self.step, self.readout = step, readout

    def forward(self, state: Tensor, belief: Tensor, position: Tensor, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        state, belief = self.step(state, belief, action)
        return state, belief, self.readout(state, belief)


@dataclass
class FittedReadout:
    """A pixel model's :class:`PositionReadout`, how well it reads, and where it came from.

    Attributes:
        readout (PositionReadout): the frozen network.
        config (ReadoutConfig): what made it.
        held_out_error (float): mean distance between its reading and the decoded image's
            (:meth:`~torchrl_grasp.dreamer.PointMassPixels.locate`) on the held-out episodes'
            filtered and imagined latents.
        path (Path): the cache file.
        fit_seconds (float): how long fitting took (targets included).
        from_cache (bool): whether it was loaded rather than fitted now.
    """

    readout: PositionReadout
    config: ReadoutConfig
    held_out_error: float
    path: Path
    fit_seconds: float
    from_cache: bool

    def __str__(self) -> str:
        return f"position readout: {self.held_out_error:.3f} from the decoded image's position on held-out latents"


@torch.no_grad()
def readout_targets(pixel_model: PixelWorldModel, episodes: PixelEpisodes, context: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(state, belief, position)`` of every filtered latent of ``episodes`` and of the prior mean rolled from step ``context``.

    ``position`` is where the decoded image of each latent shows the point: what a readout learns.
    """
    model, render = pixel_model.model, pixel_model.renderer
    filtered = LatentFilter(model).filter(render(episodes.positions), episodes.actions)
    step = WorldModelStep(model.transition_module(), ["state", "belief"], "action")
    start = filtered[:, context - 1]
    imagined = step.rollout([start["state"], start["belief"]], episodes.actions[:, context:]).states
    state = torch.cat([filtered["state"].flatten(0, 1), imagined[0][:, 1:].flatten(0, 1)])
    belief = torch.cat([filtered["belief"].flatten(0, 1), imagined[1][:, 1:].flatten(0, 1)])
    position = torch.cat(
        [
            render.locate(model.decode({"state": state[i : i + DECODE_CHUNK], "belief": belief[i : i + DECODE_CHUNK]}))
            for i in range(0, len(state), DECODE_CHUNK)
        ]
    )
    return state, belief, position


def fit_position_readout(
    pixel_model: PixelWorldModel, config: ReadoutConfig = ReadoutConfig(), *, progress: bool = True
) -> tuple[PositionReadout, float]:
    """The readout fitted on ``config``'s episodes, and its mean error on the held-out ones; no cache.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from torchrl_grasp.dreamer import PixelModelConfig, load_or_train_pixel_model
        >>> tiny = PixelModelConfig(size=RSSMSize(4, 8, 8, 2, 2), episodes=16, episode_steps=12, train_steps=2, batch_size=2, window=4)
        >>> pixel_model = load_or_train_pixel_model(tiny, cache_directory=Path(tempfile.mkdtemp()), progress=False)
        >>> small = ReadoutConfig(episodes=8, episode_steps=10, hidden=16, train_steps=20, batch_size=32)
        >>> readout, error = fit_position_readout(pixel_model, small, progress=False)
        >>> type(readout).__name__, error >= 0, readout.training
        ('PositionReadout', True, False)
    """
    seeds = torch.randint(2**62, (3,), generator=torch.Generator().manual_seed(config.seed)).tolist()
    data = PixelEpisodes.collect(
        pixel_model.config.task(),
        config.episodes,
        config.episode_steps,
        max_hold_steps=pixel_model.config.max_hold_steps,
        generator=torch.Generator().manual_seed(seeds[0]),
    )
    train, held_out = data.split(max(1, config.episodes // 8))
    state, belief, position = readout_targets(pixel_model, train, config.context)
    torch.manual_seed(seeds[1])  # TorchRL's MLP initialises from the global RNG
    readout = PositionReadout(pixel_model.model.size, config.hidden)
    optimizer = torch.optim.Adam(readout.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.train_steps)
    generator = torch.Generator().manual_seed(seeds[2])
    bar = tqdm(range(config.train_steps), desc="position readout", disable=not progress, mininterval=2.0)
    for _ in bar:
        rows = torch.randint(len(state), (config.batch_size,), generator=generator)
        loss = (readout(state[rows], belief[rows]) - position[rows]).square().sum(-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.5f}", refresh=False)
    readout.requires_grad_(False).eval()
    state, belief, position = readout_targets(pixel_model, held_out, config.context)
    return readout, float((readout(state, belief) - position).norm(dim=-1).mean())


def load_or_fit_position_readout(
    pixel_model: PixelWorldModel,
    config: ReadoutConfig = ReadoutConfig(),
    *,
    cache_directory: Path | None = None,
    progress: bool = True,
) -> FittedReadout:
    """``pixel_model``'s readout from the cache (beside the model's file by default), or fitted and cached.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from torchrl_grasp.dreamer import PixelModelConfig, load_or_train_pixel_model
        >>> tiny = PixelModelConfig(size=RSSMSize(4, 8, 8, 2, 2), episodes=16, episode_steps=12, train_steps=2, batch_size=2, window=4)
        >>> pixel_model = load_or_train_pixel_model(tiny, cache_directory=Path(tempfile.mkdtemp()), progress=False)
        >>> small = ReadoutConfig(episodes=8, episode_steps=10, hidden=16, train_steps=2, batch_size=32)
        >>> fitted = load_or_fit_position_readout(pixel_model, small, progress=False)
        >>> again = load_or_fit_position_readout(pixel_model, small, progress=False)
        >>> fitted.from_cache, again.from_cache, again.path.parent == pixel_model.path.parent
        (False, True, True)
    """
    directory = pixel_model.path.parent.parent if cache_directory is None else cache_directory
    path = cache_path(f"readout-{pixel_model.path.stem}", config, READOUT_FORMAT_VERSION, directory)
    loaded = load_cached(path, lambda p: _load_readout(p, pixel_model.model.size, config)) if path.exists() else None
    if loaded is not None:
        readout, error, seconds = loaded
        return FittedReadout(readout, config, error, path, seconds, from_cache=True)
    start = time.perf_counter()
    readout, error = fit_position_readout(pixel_model, config, progress=progress)
    seconds = time.perf_counter() - start
    save_or_warn(
        {
            "format_version": READOUT_FORMAT_VERSION,
            "config": asdict(config),
            "state_dict": readout.state_dict(),
            "held_out_error": error,
            "fit_seconds": seconds,
        },
        path,
    )
    return FittedReadout(readout, config, error, path, seconds, from_cache=False)


def _load_readout(path: Path, size: RSSMSize, config: ReadoutConfig) -> tuple[PositionReadout, float, float]:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format_version") != READOUT_FORMAT_VERSION or payload.get("config") != asdict(config):
        raise ValueError(f"{path} holds another readout (format {payload.get('format_version')}).")
    readout = PositionReadout(size, config.hidden)
    readout.load_state_dict(payload["state_dict"])
    readout.requires_grad_(False).eval()
    return readout, float(payload["held_out_error"]), float(payload["fit_seconds"])
