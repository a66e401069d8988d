"""Learned world models for the package's envs: collect, train, validate, cache, and wrap for the planners."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tensordict import NestedKey, unravel_key
from tensordict.nn import TensorDictModule
from torchrl.data import Composite
from torchrl.envs import EnvBase

from torchrl_grasp.envs.goal_env import EnvLayout
from torchrl_grasp.world_models.cache import cache_path, load_cached, save_or_warn
from torchrl_grasp.world_models.data import CollectionConfig, TransitionData, collect_transitions
from torchrl_grasp.world_models.env import TransitionModelEnv
from torchrl_grasp.world_models.mlp import NetworkConfig, ResidualMLP
from torchrl_grasp.world_models.pusht_exploration import PushTExploration
from torchrl_grasp.world_models.training import TrainingConfig, train_model
from torchrl_grasp.world_models.validation import ValidationReport, validate, warn_if_worse_than_no_change

# Bump when a change to the code would make an old cached model wrong for its config.
MODEL_FORMAT_VERSION = 1

#: Where the model env of an ensemble writes its members' disagreement (the planners' ``penalty_key``).
DISAGREEMENT_KEY = "disagreement"

EnvFactory = Callable[[int | None], EnvBase]


@dataclass(frozen=True)
class ModelConfig:
    """Everything that determines a learned world model; its hash names the cache file.

    Args:
        env_id (str): the env, as :func:`torchrl_grasp.envs.make_env` knows it.
        env_kwargs (mapping or tuple of pairs): extra arguments of the env; stored as sorted
            ``(name, value)`` pairs so the config stays hashable. Defaults to ``()``.
        num_envs (int): envs stepped together while collecting. Defaults to ``16``.
        collection (CollectionConfig): Defaults to ``CollectionConfig()``.
        network (NetworkConfig): Defaults to ``NetworkConfig()``.
        training (TrainingConfig): Defaults to ``TrainingConfig()``.
        seed (int): seeds collection, the validation split, the initial weights and the
            minibatches. Defaults to ``0``.
        layout (EnvLayout, optional): for any gymnasium env id: which observation entries are
            the state and the goal (:mod:`torchrl_grasp.envs.goal_env`); the env is then made by
            :func:`~torchrl_grasp.envs.goal_env.make_goal_env` and the model predicts
            ``layout.model_state_keys``. ``None`` for this package's envs (the state at
            ``"observation"``, made by :func:`torchrl_grasp.envs.make_env`). Defaults to ``None``.
        extra_data_digest (str, optional): the :meth:`~torchrl_grasp.world_models.data.TransitionData.digest`
            of transitions trained on besides the collected ones (``load_or_train(extra_data=...)``
            sets it, so a refitted model has its own cache file). Defaults to ``None``.

    Examples:
        >>> config = ModelConfig("WallDoor-v0", env_kwargs={"max_step": 0.05})
        >>> config.env_kwargs
        (('max_step', 0.05),)
        >>> config == ModelConfig("WallDoor-v0", env_kwargs=(("max_step", 0.05),))
        True
    """

    env_id: str
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    num_envs: int = 16
    collection: CollectionConfig = field(default_factory=CollectionConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    seed: int = 0
    layout: EnvLayout | None = None
    extra_data_digest: str | None = None

    @property
    def state_keys(self) -> tuple[str, ...]:
        """The state entries the model predicts, in the order its flat state concatenates them."""
        return ("observation",) if self.layout is None else self.layout.model_state_keys

    def __post_init__(self):
        pairs = self.env_kwargs.items() if isinstance(self.env_kwargs, Mapping) else self.env_kwargs
        object.__setattr__(self, "env_kwargs", tuple(sorted((str(name), value) for name, value in pairs)))


def point_mass_model(
    env_id: str, env_kwargs: Mapping[str, Any] | None = None, *, input_noise_std: float = 0.3
) -> ModelConfig:
    """The model configuration measured on the point-mass tasks (``WallDoor-v0``, ``ObstacleNav-v0``).

    128k transitions from 16 envs in trajectories of 100 steps under actions held up to 20 steps;
    a 3 x 128 SiLU network with 64 random Fourier features of scale 10, so it can bend sharply at
    walls; 10k AdamW steps of 512 windows with ``input_noise_std`` (see :class:`TrainingConfig`),
    so rollouts stop at walls instead of creeping through. ``dataclasses.replace`` changes the rest.

    Examples:
        >>> point_mass_model("WallDoor-v0", {"max_step": 0.025}).env_kwargs
        (('max_step', 0.025),)
    """
    return ModelConfig(
        env_id,
        env_kwargs=env_kwargs or {},
        collection=CollectionConfig(
            num_frames=128_000, frames_per_batch=4_000, max_steps_per_trajectory=100, max_hold_steps=20
        ),
        network=NetworkConfig(hidden_size=128, num_layers=3, fourier_features=64, fourier_scale=10.0),
        training=TrainingConfig(steps=10_000, batch_size=512, lr=2e-3, input_noise_std=input_noise_std),
    )


def goal_env_model(
    env_id: str,
    layout: EnvLayout = EnvLayout(),
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    input_noise_std: float = 1.0,
    hidden_size: int = 128,
    training_steps: int = 10_000,
) -> ModelConfig:
    """The model configuration for any gymnasium goal env: the point-mass recipe on ``layout``'s state.

    :func:`point_mass_model`'s collection (held random actions from the env's own random
    resets), network and training, with ``input_noise_std=1.0``: on ``PointMaze_UMaze-v3`` the
    published 0.3 left the model leaking through the U's inner wall (every planner's plan went
    through it), 1.0 closed the leak. A world with more walls needs a wider network trained
    longer: on ``PointMaze_Medium-v3``, ``hidden_size=256, training_steps=20_000`` cut the
    50-step error from 3.0 to 2.5, the model error along iCEM's paths from about 1.9 to 1.2, and
    raised iCEM's success from 3/32 to 12/32 (``docs/benchmarks.md``). The env comes from
    :func:`~torchrl_grasp.envs.goal_env.make_goal_env`; ``dataclasses.replace`` changes the rest.

    Examples:
        >>> config = goal_env_model("PointMaze_UMaze-v3", EnvLayout(frame_skip=2), {"continuing_task": False})
        >>> config.state_keys, config.layout.frame_skip, config.env_kwargs, config.training.input_noise_std
        (('achieved_goal', 'observation'), 2, (('continuing_task', False),), 1.0)
        >>> wide = goal_env_model("PointMaze_Medium-v3", hidden_size=256, training_steps=20_000)
        >>> wide.network.hidden_size, wide.training.steps
        (256, 20000)
    """
    recipe = point_mass_model(env_id, env_kwargs, input_noise_std=input_noise_std)
    return replace(
        recipe,
        layout=layout,
        network=replace(recipe.network, hidden_size=hidden_size),
        training=replace(recipe.training, steps=training_steps),
    )


def pusht_model() -> ModelConfig:
    """The model configuration measured on ``PushTState-v0``, in its normalised observation (``[8]``).

    200k transitions from 16 envs in trajectories of 100 steps under the scripted pusher
    (:class:`~torchrl_grasp.world_models.pusht_exploration.PushTExploration`: random actions
    seldom touch the block); a 3 x 256 SiLU network; 20k AdamW steps of 512 windows. On held-out
    trajectories, 64 random Fourier features and a 4-step loss did not lower the block's open-loop
    error at 10 steps (about 15 pixels after 10k steps); 30k steps lowered it to about 12.
    ``dataclasses.replace`` changes the rest.

    Examples:
        >>> config = pusht_model()
        >>> config.env_kwargs, type(config.collection.exploration).__name__
        ((('observation_format', 'normalized'),), 'PushTExploration')
    """
    return ModelConfig(
        "PushTState-v0",
        env_kwargs={"observation_format": "normalized"},
        collection=CollectionConfig(
            num_frames=200_000,
            frames_per_batch=4_000,
            max_steps_per_trajectory=100,
            exploration=PushTExploration(),
        ),
        network=NetworkConfig(hidden_size=256, num_layers=3),
        training=TrainingConfig(steps=20_000, batch_size=512, lr=2e-3),
    )


def quick_model(config: ModelConfig) -> ModelConfig:
    """``config`` with a model small enough to train in seconds: 8k transitions, a 2 x 32 network,
    200 steps. For smoke runs and tests (the benchmark's ``--quick``); it plans, badly.

    Examples:
        >>> tiny = quick_model(WALLDOOR_MODEL)
        >>> tiny.collection.num_frames, tiny.network.hidden_size, tiny.training.steps, tiny.env_id
        (8000, 32, 200, 'WallDoor-v0')
    """
    return replace(
        config,
        collection=replace(config.collection, num_frames=8_000, frames_per_batch=2_000),
        network=replace(config.network, hidden_size=32, num_layers=2),
        training=replace(config.training, steps=200),
    )


#: Measured configurations (``python -m torchrl_grasp.world_models walldoor`` prints the report).
WALLDOOR_MODEL = point_mass_model("WallDoor-v0")
OBSTACLENAV_MODEL = point_mass_model("ObstacleNav-v0")
PUSHT_MODEL = pusht_model()
NAMED_MODELS = {"walldoor": WALLDOOR_MODEL, "obstaclenav": OBSTACLENAV_MODEL, "pusht": PUSHT_MODEL}


@dataclass
class LearnedWorldModel:
    """A trained model, its validation report, and the model-based env that planners take.

    Attributes:
        model (ResidualMLP): frozen (no gradient on its parameters), in eval mode.
        report (ValidationReport): its errors on held-out trajectories.
        env (TransitionModelEnv): ``model`` with the real env's state and action specs; an
            ensemble's also writes its members' disagreement at ``"disagreement"``, which planners
            given a ``penalty_weight`` add to their objective.
        config (ModelConfig): what made it.
        path (Path): its cache file.
        train_seconds (float): collection, training and validation time when it was made.
        from_cache (bool): whether this call loaded it rather than trained it.

    Examples:
        >>> import tempfile
        >>> from tensordict import TensorDict
        >>> from torchrl_grasp import GRASPPlanner
        >>> config = ModelConfig(  # a toy model, trained in a second
        ...     "WallDoor-v0", num_envs=4,
        ...     collection=CollectionConfig(
        ...         num_frames=400, frames_per_batch=200, max_steps_per_trajectory=50),
        ...     network=NetworkConfig(hidden_size=16, num_layers=1), training=TrainingConfig(steps=20))
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     learned = load_or_train(config, cache_directory=Path(directory), progress=False)
        >>> type(learned.model).__name__, learned.config == config, learned.report.num_trajectories
        ('ResidualMLP', True, 1)
        >>> planner = GRASPPlanner(learned.env, 10, optim_steps=20)  # learned.env: what planners take
        >>> state = TensorDict(observation=torch.tensor([-0.5, 0.5]), goal=torch.tensor([-0.4, 0.5]))
        >>> planner.plan(state).actions.shape
        torch.Size([10, 2])
    """

    model: ResidualMLP
    report: ValidationReport
    env: TransitionModelEnv
    config: ModelConfig
    path: Path
    train_seconds: float
    from_cache: bool

    def real_env(self) -> EnvBase:
        """A new real env of ``config`` (unbatched), the one the model was trained on
        (:func:`default_env_factory`): where plans made on :attr:`env` are executed."""
        return default_env_factory(self.config)(None)


def default_env_factory(config: ModelConfig) -> EnvFactory:
    """``num_envs -> env``: :func:`torchrl_grasp.envs.make_env` for this package's envs, or
    :func:`~torchrl_grasp.envs.goal_env.make_goal_env` with ``config.layout``; ``config.env_kwargs``
    go to the gymnasium env.

    Examples:
        >>> make_env = default_env_factory(ModelConfig("WallDoor-v0", env_kwargs={"max_step": 0.025}))
        >>> make_env(4).batch_size, make_env(None).batch_size  # batched for collection, single for specs
        (torch.Size([4]), torch.Size([]))
    """
    from torchrl_grasp.envs import make_env  # the envs are optional for the rest of this module
    from torchrl_grasp.envs.goal_env import make_goal_env

    kwargs = dict(config.env_kwargs)
    if config.layout is not None:
        return lambda num_envs: make_goal_env(config.env_id, config.layout, num_envs=num_envs, **kwargs)
    return lambda num_envs: make_env(config.env_id, num_envs=num_envs, **kwargs)


def model_env(
    model: torch.nn.Module,
    real_env: EnvBase,
    *,
    state_key: NestedKey | Sequence[NestedKey] = "observation",
    action_key: NestedKey = "action",
    goal_key: NestedKey | None = "goal",
    penalty_key: NestedKey | None = None,
    device: torch.device | str = "cpu",
) -> TransitionModelEnv:
    """A :class:`TransitionModelEnv` around ``model`` with the state and action specs of ``real_env``.

    The real env's batch dimensions are dropped from the specs. With several state keys (a
    list), ``model`` maps their concatenation (in that order) and the action to the next one,
    and the env splits it back into the entries (:class:`ConcatenatedStates`). With
    ``penalty_key``, ``model`` returns ``(next_state, penalty)`` (the penalty ``[*B, 1]``, such as
    :class:`WithDisagreement`'s) and the world model writes the penalty there, for planners with
    a ``penalty_weight``.

    Examples:
        >>> from torchrl.envs import GymEnv
        >>> env = model_env(lambda s, a: s, GymEnv("Pendulum-v1"), goal_key=None)
        >>> env.observation_spec["observation"].shape, env.action_spec.shape
        (torch.Size([3]), torch.Size([1]))
        >>> ensemble = ResidualMLP(3, 1, NetworkConfig(hidden_size=8, num_layers=1, num_members=3))
        >>> unsure = model_env(WithDisagreement(ensemble), GymEnv("Pendulum-v1"), penalty_key="disagreement")
        >>> unsure.world_model.out_keys
        ['observation', 'disagreement']
    """
    leading = (0,) * real_env.batch_dims

    def unbatched(spec):
        return spec[leading] if leading else spec

    action_spec = unbatched(real_env.full_action_spec[action_key])
    if not isinstance(model, torch.nn.Module):
        model = _CallableModule(model)
    extra_keys = [] if penalty_key is None else [penalty_key]
    if not isinstance(state_key, (str, tuple)):  # several entries
        keys = [unravel_key(key) for key in state_key]
        specs = {key: unbatched(real_env.full_observation_spec[key]) for key in keys}
        module = ConcatenatedStates(model, [specs[key].shape[-1] for key in keys])
        return TransitionModelEnv(
            TensorDictModule(module, in_keys=[*keys, action_key], out_keys=[*keys, *extra_keys]),
            Composite(specs),
            action_spec,
            action_key=action_key,
            goal_key=goal_key,
            device=device,
        )
    state_spec = unbatched(real_env.full_observation_spec[state_key])
    if extra_keys:
        model = TensorDictModule(model, in_keys=[state_key, action_key], out_keys=[state_key, *extra_keys])
    return TransitionModelEnv(
        model,
        state_spec,
        action_spec,
        state_key=state_key,
        action_key=action_key,
        goal_key=goal_key,
        device=device,
    )


class ConcatenatedStates(torch.nn.Module):
    """A model of one flat state on a state of several entries: concatenates them (with sizes
    ``sizes``, in order), steps ``model`` and splits its prediction back.

    Examples:
        >>> step = ConcatenatedStates(lambda state, action: state + action.sum(-1, keepdim=True), [2, 1])
        >>> position, velocity = step(torch.zeros(2), torch.ones(1), torch.ones(3))
        >>> position.tolist(), velocity.tolist()
        ([3.0, 3.0], [4.0])
    """

    def __init__(self, model, sizes: Sequence[int]):
        super().__init__()
        self.model, self.sizes = model, list(sizes)

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        *states, action = tensors
        out = self.model(torch.cat(states, dim=-1), action)
        next_state, *extra = out if isinstance(out, tuple) else (out,)  # a penalty rides along
        return (*next_state.split(self.sizes, dim=-1), *extra)


class WithDisagreement(torch.nn.Module):
    """An ensemble's mean next state and its members' disagreement ``[*B, 1]``, from one
    evaluation of the members (:meth:`ResidualMLP.mean_and_disagreement`): the model that
    :func:`model_env` writes a penalty for, at ``penalty_key``.

    Examples:
        >>> ensemble = ResidualMLP(2, 2, NetworkConfig(hidden_size=8, num_layers=1, num_members=3))
        >>> mean, spread = WithDisagreement(ensemble)(torch.zeros(4, 2), torch.ones(4, 2))
        >>> mean.shape, spread.shape
        (torch.Size([4, 2]), torch.Size([4, 1]))
    """

    def __init__(self, ensemble: ResidualMLP):
        super().__init__()
        self.ensemble = ensemble

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, spread = self.ensemble.mean_and_disagreement(state, action)
        return mean, spread.unsqueeze(-1)


class _CallableModule(torch.nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, state, action):
        return self.function(state, action)


def fit_world_model(
    config: ModelConfig,
    make_env: EnvFactory,
    *,
    progress: bool = True,
    extra_data: TransitionData | None = None,
) -> tuple[ResidualMLP, ValidationReport]:
    """Collects data, holds out trajectories, trains and validates a model, with no cache.

    ``extra_data`` (transitions of the same state layout, such as the planners' executed
    episodes) joins the training split; the validation split stays the collected one's, so
    reports before and after a refit compare.

    Args:
        config (ModelConfig): what to make.
        make_env (callable): ``num_envs -> env``: a TorchRL env with the state at
            ``"observation"`` and a bounded action at ``"action"``, batched when ``num_envs`` is
            an int.

    Keyword Args:
        progress (bool): show a progress bar while training. Defaults to ``True``.

    Returns:
        the frozen model (on the CPU) and its :class:`ValidationReport`.

    Examples:
        >>> config = ModelConfig(  # a toy model, trained in a second
        ...     "WallDoor-v0", num_envs=4,
        ...     collection=CollectionConfig(
        ...         num_frames=400, frames_per_batch=200, max_steps_per_trajectory=50),
        ...     network=NetworkConfig(hidden_size=16, num_layers=1), training=TrainingConfig(steps=20))
        >>> model, report = fit_world_model(config, default_env_factory(config), progress=False)
        >>> frozen = not any(p.requires_grad for p in model.parameters())
        >>> model.state_dim, model.action_dim, model.training, frozen
        (2, 2, False, True)
        >>> # 4 envs x 100 steps in trajectories of 50 steps: 8 trajectories, one (10 %) held out
        >>> report.num_trajectories, report.num_transitions
        (1, 50)
    """
    seeds = torch.randint(2**62, (3,), generator=torch.Generator().manual_seed(config.seed)).tolist()
    buffer = collect_transitions(
        lambda: make_env(config.num_envs), config.collection, seed=config.seed, state_keys=config.state_keys
    )
    data = TransitionData.from_tensordict(buffer[:], state_keys=config.state_keys)
    train, held_out = data.split_trajectories(
        config.collection.validation_fraction, torch.Generator().manual_seed(seeds[0])
    )
    if extra_data is not None:
        if extra_data.states.shape[-1] != data.states.shape[-1] or extra_data.actions.shape[-1] != data.actions.shape[-1]:
            raise ValueError(
                f"extra_data has states of {extra_data.states.shape[-1]} and actions of {extra_data.actions.shape[-1]} "
                f"features; the collected data has {data.states.shape[-1]} and {data.actions.shape[-1]} "
                f"(the state is {list(config.state_keys)}, concatenated)."
            )
        train = train.concat(extra_data)
    model = ResidualMLP(
        data.states.shape[-1],
        data.actions.shape[-1],
        config.network,
        generator=torch.Generator().manual_seed(seeds[1]),
    )
    train_model(
        model, train, config.training, generator=torch.Generator().manual_seed(seeds[2]), progress=progress
    )
    model.requires_grad_(False).eval()
    return model, validate(model, held_out)


def load_or_train(
    config: ModelConfig,
    *,
    make_env: EnvFactory | None = None,
    cache_directory: Path | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    extra_data: TransitionData | None = None,
) -> LearnedWorldModel:
    """The model of ``config`` from the cache, or trained (by :func:`fit_world_model`) and cached.

    ``extra_data`` refits on more transitions (the model-based RL loop: plan, execute, collect the
    executed episodes with :attr:`~torchrl_grasp.benchmark.episodes.Episode.transitions`, refit,
    plan again): they join the collected training data, and the model is cached under its own
    name (``config.extra_data_digest``).

    The cache file is ``<cache>/world_models/<env_id>-<hash>.pt``, the hash covering ``config``
    and :data:`MODEL_FORMAT_VERSION`; ``<cache>`` is ``$TORCHRL_GRASP_CACHE`` or
    ``~/.cache/torchrl_grasp``. A cached model is loaded, never retrained; a new one is written
    atomically.

    Args:
        config (ModelConfig): what to load or make.

    Keyword Args:
        make_env (callable, optional): ``num_envs -> env`` (see :func:`fit_world_model`);
            defaults to :func:`default_env_factory`. Also gives the specs of the returned env.
        cache_directory (Path, optional): overrides the cache directory.
        device (torch.device): where the model and its env live. Defaults to ``"cpu"``.
        progress (bool): show a progress bar while training. Defaults to ``True``.

    Examples:
        >>> import tempfile
        >>> config = ModelConfig(  # a toy model, trained in a second
        ...     "WallDoor-v0", num_envs=4,
        ...     collection=CollectionConfig(
        ...         num_frames=400, frames_per_batch=200, max_steps_per_trajectory=50),
        ...     network=NetworkConfig(hidden_size=16, num_layers=1), training=TrainingConfig(steps=20))
        >>> with tempfile.TemporaryDirectory() as directory:  # the default is the user's cache
        ...     learned = load_or_train(config, cache_directory=Path(directory), progress=False)
        ...     again = load_or_train(config, cache_directory=Path(directory), progress=False)
        >>> learned.from_cache, again.from_cache, learned.path.parent.name, learned.path.name[:12]
        (False, True, 'world_models', 'WallDoor-v0-')
        >>> state, action = torch.zeros(3, 2), torch.ones(3, 2)
        >>> torch.equal(learned.model(state, action), again.model(state, action))  # the cached model
        True
        >>> learned.env.observation_spec["observation"].shape, learned.env.action_spec.shape
        (torch.Size([2]), torch.Size([2]))
    """
    make_env = make_env if make_env is not None else default_env_factory(config)
    if extra_data is not None:
        config = replace(config, extra_data_digest=extra_data.digest())
    path = cache_path(config.env_id, config, MODEL_FORMAT_VERSION, cache_directory)
    loaded = load_cached(path, _load) if path.exists() else None
    from_cache = loaded is not None
    if from_cache:
        model, report, seconds = loaded
        warn_if_worse_than_no_change(report)
    else:
        start = time.perf_counter()
        model, report = fit_world_model(config, make_env, progress=progress, extra_data=extra_data)
        seconds = time.perf_counter() - start
        save_or_warn(
            {
                "format_version": MODEL_FORMAT_VERSION,
                "config": asdict(config),
                "state_dim": model.state_dim,
                "action_dim": model.action_dim,
                "network": asdict(model.config),
                "state_dict": model.state_dict(),
                "report": asdict(report),
                "train_seconds": seconds,
            },
            path,
        )
    model = model.to(device)
    real_env = make_env(None)
    try:
        state_key = "observation" if config.layout is None else list(config.state_keys)
        if model.num_members > 1:  # planners with a penalty_weight read the members' disagreement
            env = model_env(WithDisagreement(model), real_env, state_key=state_key, penalty_key=DISAGREEMENT_KEY, device=device)
        else:
            env = model_env(model, real_env, state_key=state_key, device=device)
    finally:
        real_env.close()
    return LearnedWorldModel(model, report, env, config, path, seconds, from_cache)


def _load(path: Path) -> tuple[ResidualMLP, ValidationReport, float]:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format_version") != MODEL_FORMAT_VERSION:
        raise ValueError(
            f"{path} holds model format {payload.get('format_version')}, not {MODEL_FORMAT_VERSION}."
        )
    model = ResidualMLP(payload["state_dim"], payload["action_dim"], NetworkConfig(**payload["network"]))
    model.load_state_dict(payload["state_dict"])
    model.requires_grad_(False).eval()
    return model, ValidationReport(**payload["report"]), payload["train_seconds"]

