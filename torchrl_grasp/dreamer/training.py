"""Training the pixel world model with TorchRL's ``DreamerModelLoss``, validating it, and caching it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import gymnasium
import torch
from torchrl.data import Bounded
from torchrl.objectives import DreamerModelLoss
from tqdm.auto import tqdm

import torchrl_grasp.envs  # noqa: F401  (registers the env ids)
from torchrl_grasp.dreamer.data import PixelEpisodes, distance_reward
from torchrl_grasp.dreamer.latent import LatentFilter
from torchrl_grasp.dreamer.overshooting import overshooting_loss
from torchrl_grasp.dreamer.pixels import PointMassPixels
from torchrl_grasp.dreamer.rssm import RSSMSize, RSSMWorldModel
from torchrl_grasp.world_models.cache import cache_path, load_cached, save_or_warn
from torchrl_grasp.world_models.step import WorldModelStep

# Bump when a change to the code would make an old cached model wrong for its config.
PIXEL_MODEL_FORMAT_VERSION = 3  # 3: no position probe (positions are read off decoded images)


@dataclass(frozen=True)
class PixelModelConfig:
    """Everything that determines a pixel world model; its hash names the cache file.

    Args:
        env_id (str): a point-mass task (``"WallDoor-v0"``, ``"ObstacleNav-v0"``).
        env_kwargs (mapping or tuple of pairs): its constructor arguments. Defaults to
            ``{"max_step": 0.025}``, the benchmark's.
        size (RSSMSize): the network sizes. Defaults to ``RSSMSize()``.
        blob_sigma (float): see :class:`~torchrl_grasp.dreamer.PointMassPixels`. Defaults to ``0.15``.
        reward_target (tuple): the reward is minus the distance to this point. Defaults to
            ``(0.5, -0.5)``: behind WallDoor's wall, far below its door.
        episodes (int): random episodes collected. Defaults to ``4000``.
        episode_steps (int): steps per episode. Defaults to ``48``.
        max_hold_steps (int): actions are held 1 to this many steps. Defaults to ``10``.
        train_steps (int): Adam steps. Defaults to ``8000``.
        batch_size (int): windows per step. Defaults to ``8``.
        window (int): steps per window. Defaults to ``12``.
        lr (float): Adam's learning rate. Defaults to ``3e-3``.
        final_lr (float): with it, the learning rate decays from ``lr`` to this by a cosine over
            the training. Defaults to ``None``: constant (which keeps the names of models cached
            before the option). On the overshooting recipe of 16000 steps, ``1e-4`` cut the
            mean 40-step open-loop drift from 0.12 and 0.17 (two trainings at the constant rate)
            to 0.06 (two decayed ones; docs/benchmarks.md).
        free_nats (float): KL free nats of ``DreamerModelLoss``. Defaults to ``1.0``.
        kl_weight (float): the KL term's weight (``lambda_kl``). Defaults to ``0.1``: the point
            is a few dozen pixels of a 64 x 64 image, and at weight 1 the KL cost of encoding
            its position outweighs what reconstructing it gains, so the posterior ignores it.
        overshooting_steps (int): PlaNet's latent overshooting on the planners' rollout
            (:func:`~torchrl_grasp.dreamer.overshooting.overshooting_loss`): the prior mean rolled
            up to this many steps from every posterior latent of a window is pulled toward the
            posteriors it should reach.
            ``None`` trains the prior one step at a time only, as ``DreamerModelLoss`` does.
            Defaults to ``None`` (which keeps the names of models cached before the option).
        seed (int): seeds the episodes, the initial weights and the batches. Defaults to ``0``.

    Examples:
        >>> PixelModelConfig().env_kwargs
        (('max_step', 0.025),)
        >>> PixelModelConfig(env_kwargs={"max_step": 0.025}) == PixelModelConfig()
        True
    """

    env_id: str = "WallDoor-v0"
    env_kwargs: tuple[tuple[str, Any], ...] = (("max_step", 0.025),)
    size: RSSMSize = field(default_factory=RSSMSize)
    blob_sigma: float = 0.15
    reward_target: tuple[float, float] = (0.5, -0.5)
    episodes: int = 4000
    episode_steps: int = 48
    max_hold_steps: int = 10
    train_steps: int = 8000
    batch_size: int = 8
    window: int = 12
    lr: float = 3e-3
    final_lr: float | None = None
    free_nats: float = 1.0
    kl_weight: float = 0.1
    overshooting_steps: int | None = None
    seed: int = 0

    def __post_init__(self):
        pairs = self.env_kwargs.items() if isinstance(self.env_kwargs, Mapping) else self.env_kwargs
        object.__setattr__(self, "env_kwargs", tuple(sorted((str(name), value) for name, value in pairs)))
        object.__setattr__(self, "reward_target", tuple(float(value) for value in self.reward_target))

    def task(self):
        """The gymnasium task (unwrapped), for its dynamics and geometry."""
        return gymnasium.make(self.env_id, **dict(self.env_kwargs)).unwrapped

    def action_spec(self) -> Bounded:
        """The task's action space as a TorchRL spec: what the model's prior and the planners take.

        Examples:
            >>> PixelModelConfig().action_spec().shape, float(PixelModelConfig().action_spec().space.low[0])
            (torch.Size([2]), -1.0)
        """
        space = self.task().action_space
        return Bounded(
            torch.as_tensor(space.low, dtype=torch.float32), torch.as_tensor(space.high, dtype=torch.float32), space.shape
        )

    def renderer(self) -> PointMassPixels:
        """How this model's images are drawn."""
        return PointMassPixels(self.task(), blob_sigma=self.blob_sigma)


@dataclass(frozen=True)
class PixelModelReport:
    """How well a pixel world model does on held-out episodes.

    Positions are read off the images the model's decoder draws of its latents
    (:meth:`~torchrl_grasp.dreamer.PointMassPixels.locate`): where the model imagines the point.

    Attributes:
        reconstruction_mse (float): the decoder's mean squared error per pixel.
        reward_mae (float): mean absolute error of the reward head on filtered latents.
        filtered_position_error (float): mean distance between the position in the decoded
            filtered latents and the true position: how well the latent holds the position.
        open_loop_position_error (dict): steps -> mean distance between the position in the
            decoded prior-mean rollout (from a filtered latent) and the true position.

    Examples:
        >>> print(PixelModelReport(0.0008, 0.041, 0.197, {10: 0.306, 20: 0.518}))
        pixel world model: reconstruction MSE 0.0008, reward MAE 0.041, position in the filtered latent 0.197, open loop 10 steps 0.306, 20 steps 0.518
    """

    reconstruction_mse: float
    reward_mae: float
    filtered_position_error: float
    open_loop_position_error: dict[int, float]

    def __str__(self) -> str:
        open_loop = ", ".join(f"{steps} steps {error:.3f}" for steps, error in self.open_loop_position_error.items())
        return (
            f"pixel world model: reconstruction MSE {self.reconstruction_mse:.4f}, reward MAE {self.reward_mae:.3f}, "
            f"position in the filtered latent {self.filtered_position_error:.3f}, open loop {open_loop}"
        )


@dataclass
class PixelWorldModel:
    """A trained pixel world model, its report, and where it came from.

    Attributes:
        model (RSSMWorldModel): the frozen networks.
        config (PixelModelConfig): what made it.
        report (PixelModelReport): held-out validation.
        path (Path): the cache file.
        train_seconds (float): how long training took.
        from_cache (bool): whether it was loaded rather than trained now.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> tiny = PixelModelConfig(size=RSSMSize(4, 8, 8, 2, 2), episodes=16, episode_steps=12, train_steps=2, batch_size=2, window=4)
        >>> pixel_model = load_or_train_pixel_model(tiny, cache_directory=Path(tempfile.mkdtemp()), progress=False)
        >>> pixel_model.path.name.startswith("pixels-WallDoor-v0-"), pixel_model.from_cache
        (True, False)
        >>> pixel_model.latent_filter.encode(pixel_model.renderer(torch.tensor([0.5, 0.5])))["state"].shape
        torch.Size([4])
    """

    model: RSSMWorldModel
    config: PixelModelConfig
    report: PixelModelReport
    path: Path
    train_seconds: float
    from_cache: bool

    @property
    def latent_filter(self) -> LatentFilter:
        return LatentFilter(self.model)

    @cached_property
    def renderer(self) -> PointMassPixels:
        """How the model's images are drawn (made once: it opens the task to draw its walls)."""
        return self.config.renderer()


def train_pixel_model(
    model: RSSMWorldModel,
    train: PixelEpisodes,
    config: PixelModelConfig,
    *,
    generator: torch.Generator,
    progress: bool = True,
) -> None:
    """Adam on TorchRL's ``DreamerModelLoss`` (KL + reconstruction + reward).

    With ``config.overshooting_steps``, the loss adds the prior-mean rollouts' overshooting term
    (:func:`~torchrl_grasp.dreamer.overshooting.overshooting_loss`).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> tiny = PixelModelConfig(size=RSSMSize(4, 8, 8, 2, 2), episodes=16, episode_steps=12, train_steps=2, batch_size=2, window=4)
        >>> from dataclasses import replace
        >>> data = PixelEpisodes.collect(tiny.task(), 8, 12, generator=torch.Generator().manual_seed(0))
        >>> model = RSSMWorldModel(Bounded(-1.0, 1.0, (2,)), tiny.size)
        >>> before = [p.clone() for p in model.parameters()]
        >>> # Under the free nats the one-step KL can leave the prior untouched; overshooting always trains it.
        >>> train_pixel_model(model, data, replace(tiny, overshooting_steps=2), generator=torch.Generator().manual_seed(0), progress=False)
        >>> all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # every part was trained
        True
    """
    render = config.renderer()
    loss_module = DreamerModelLoss(model.training_module(), lambda_kl=config.kl_weight, free_nats=config.free_nats)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = None
    if config.final_lr is not None:
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.train_steps, eta_min=config.final_lr)
    dims = (config.size.state_dim, config.size.belief_dim)
    bar = tqdm(range(config.train_steps), desc="pixel world model", disable=not progress, mininterval=2.0)
    for _ in bar:
        batch = train.windows(
            config.batch_size, config.window, render, config.reward_target, dims, generator=generator
        )
        losses, out = loss_module(batch)
        total = sum(value.sum() for value in losses.values())
        overshooting = None
        if config.overshooting_steps:
            overshooting = overshooting_loss(model.prior, out, config.overshooting_steps)
            total = total + overshooting
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
        optimizer.step()
        if schedule is not None:
            schedule.step()
        bar.set_postfix(
            reco=f"{losses['loss_model_reco'].item():.1f}",
            kl=f"{losses['loss_model_kl'].item():.2f}",
            **({} if overshooting is None else {"overshooting": f"{overshooting.item():.2f}"}),
            refresh=False,
        )


@torch.no_grad()
def open_loop_position_distances(
    model: RSSMWorldModel,
    held_out: PixelEpisodes,
    config: PixelModelConfig,
    *,
    context: int = 4,
    horizons: tuple[int, ...] = (10, 20, 40),
) -> dict[int, torch.Tensor]:
    """Per episode, how far the decoded prior-mean rollout is from the truth after each horizon.

    Filters ``context`` steps of each held-out episode, rolls the prior mean ahead on the
    episode's own actions (the rollout planners make), and reads the position off the decoded
    image. Horizons longer than the episodes allow are left out.

    Returns:
        dict: steps -> ``[episodes]`` distances.

    Examples:
        >>> tiny = PixelModelConfig(size=RSSMSize(4, 8, 8, 2, 2))
        >>> held_out = PixelEpisodes.collect(tiny.task(), 3, 16, generator=torch.Generator().manual_seed(0))
        >>> distances = open_loop_position_distances(RSSMWorldModel(Bounded(-1.0, 1.0, (2,)), tiny.size), held_out, tiny)
        >>> {steps: tuple(d.shape) for steps, d in distances.items()}
        {10: (3,)}
    """
    render = config.renderer()
    horizons = tuple(h for h in horizons if context + h <= held_out.actions.shape[1])
    if not horizons:
        return {}
    start = LatentFilter(model).filter(render(held_out.positions[:, :context]), held_out.actions[:, :context])[
        :, context - 1
    ]
    step = WorldModelStep(model.transition_module(), ["state", "belief"], "action")
    longest = max(horizons)
    states = step.rollout([start["state"], start["belief"]], held_out.actions[:, context : context + longest]).states
    distances = {}
    for horizon in horizons:
        predicted = render.locate(model.decode({"state": states[0][:, horizon], "belief": states[1][:, horizon]}))
        distances[horizon] = (predicted - held_out.positions[:, context - 1 + horizon]).norm(dim=-1)
    return distances


@torch.no_grad()
def validate_pixel_model(
    model: RSSMWorldModel,
    held_out: PixelEpisodes,
    config: PixelModelConfig,
    *,
    context: int = 4,
    horizons: tuple[int, ...] = (10, 20, 40),
) -> PixelModelReport:
    """The model's errors on held-out episodes, the open loop's from :func:`open_loop_position_distances`.

    Examples:
        >>> tiny = PixelModelConfig(size=RSSMSize(4, 8, 8, 2, 2), episodes=16, episode_steps=12, train_steps=2, batch_size=2, window=4)
        >>> held_out = PixelEpisodes.collect(tiny.task(), 4, 16, generator=torch.Generator().manual_seed(0))
        >>> report = validate_pixel_model(RSSMWorldModel(Bounded(-1.0, 1.0, (2,)), tiny.size), held_out, tiny)
        >>> sorted(report.open_loop_position_error), report.reconstruction_mse > 0
        ([10], True)
    """
    render = config.renderer()
    pixels = render(held_out.positions)
    latents = LatentFilter(model).filter(pixels, held_out.actions)
    reconstruction = model.decode(latents)
    readings = render.locate(reconstruction)
    rewards = model.reward(torch.cat([latents["state"], latents["belief"]], -1))
    true_rewards = distance_reward(held_out.positions, config.reward_target)
    open_loop = open_loop_position_distances(model, held_out, config, context=context, horizons=horizons)
    return PixelModelReport(
        reconstruction_mse=float((reconstruction - pixels).pow(2).mean()),
        reward_mae=float((rewards - true_rewards).abs().mean()),
        filtered_position_error=float((readings - held_out.positions).norm(dim=-1).mean()),
        open_loop_position_error={steps: float(d.mean()) for steps, d in open_loop.items()},
    )


def fit_pixel_model(config: PixelModelConfig, *, progress: bool = True) -> tuple[RSSMWorldModel, PixelModelReport]:
    """Collects episodes, trains on all but 64 of them (a quarter, for small data sets), validates on those; no cache.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> tiny = PixelModelConfig(size=RSSMSize(4, 8, 8, 2, 2), episodes=16, episode_steps=12, train_steps=2, batch_size=2, window=4)
        >>> model, report = fit_pixel_model(tiny, progress=False)
        >>> type(model).__name__, type(report).__name__, model.decoder.training
        ('RSSMWorldModel', 'PixelModelReport', False)
    """
    seeds = torch.randint(2**62, (3,), generator=torch.Generator().manual_seed(config.seed)).tolist()
    data = PixelEpisodes.collect(
        config.task(),
        config.episodes,
        config.episode_steps,
        max_hold_steps=config.max_hold_steps,
        generator=torch.Generator().manual_seed(seeds[0]),
    )
    train, held_out = data.split(min(64, config.episodes // 4))
    torch.manual_seed(seeds[1])  # TorchRL's parts initialise from the global RNG
    model = RSSMWorldModel(config.action_spec(), config.size)
    train_pixel_model(model, train, config, generator=torch.Generator().manual_seed(seeds[2]), progress=progress)
    model.requires_grad_(False).eval()
    return model, validate_pixel_model(model, held_out, config)


def load_or_train_pixel_model(
    config: PixelModelConfig = PixelModelConfig(),
    *,
    cache_directory: Path | None = None,
    progress: bool = True,
) -> PixelWorldModel:
    """The pixel model of ``config`` from the cache (``$TORCHRL_GRASP_CACHE``), or trained and cached.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> tiny = PixelModelConfig(
        ...     size=RSSMSize(state_dim=4, belief_dim=8, hidden_dim=8, encoder_channels=2, decoder_channels=2),
        ...     episodes=16, episode_steps=12, train_steps=2, batch_size=2, window=4,
        ... )
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     trained = load_or_train_pixel_model(tiny, cache_directory=Path(directory), progress=False)
        ...     loaded = load_or_train_pixel_model(tiny, cache_directory=Path(directory), progress=False)
        >>> trained.from_cache, loaded.from_cache, sorted(loaded.report.open_loop_position_error)
        (False, True, [])
    """
    path = cache_path(f"pixels-{config.env_id}", config, PIXEL_MODEL_FORMAT_VERSION, cache_directory)
    loaded = load_cached(path, lambda p: _load_pixel_model(p, config)) if path.exists() else None
    from_cache = loaded is not None
    if from_cache:
        model, report, seconds = loaded
    else:
        start = time.perf_counter()
        model, report = fit_pixel_model(config, progress=progress)
        seconds = time.perf_counter() - start
        save_or_warn(
            {
                "format_version": PIXEL_MODEL_FORMAT_VERSION,
                "config": asdict(config),
                "state_dict": model.state_dict(),
                "report": asdict(report),
                "train_seconds": seconds,
            },
            path,
        )
    return PixelWorldModel(model, config, report, path, seconds, from_cache)


def _load_pixel_model(path: Path, config: PixelModelConfig) -> tuple[RSSMWorldModel, PixelModelReport, float]:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format_version") != PIXEL_MODEL_FORMAT_VERSION:
        raise ValueError(
            f"{path} holds pixel model format {payload.get('format_version')}, not {PIXEL_MODEL_FORMAT_VERSION}."
        )
    model = RSSMWorldModel(config.action_spec(), config.size)
    model.load_state_dict(payload["state_dict"])
    model.requires_grad_(False).eval()
    errors = {int(k): v for k, v in payload["report"]["open_loop_position_error"].items()}
    report = PixelModelReport(**{**payload["report"], "open_loop_position_error": errors})
    return model, report, payload["train_seconds"]
