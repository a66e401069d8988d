"""Fitting a :class:`~torchrl_grasp.world_models.mlp.ResidualMLP` to transitions: Adam on a k-step loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from torchrl_grasp.world_models.data import TransitionData
from torchrl_grasp.world_models.mlp import ResidualMLP


#: The gradient norm the k-step loss (``rollout_steps > 1``) is clipped to.
MULTI_STEP_MAX_GRAD_NORM = 1.0


@dataclass(frozen=True)
class TrainingConfig:
    """How to fit the model.

    Args:
        steps (int): Adam steps. Defaults to ``5_000``.
        batch_size (int): windows per step and per ensemble member. Defaults to ``512``.
        lr (float): initial learning rate, cosine-annealed to ``lr / 20``. Defaults to ``1e-3``.
        rollout_steps (int): :math:`k` of the k-step open-loop loss; ``1`` is the one-step loss.
            With :math:`k > 1` the gradient flows back through :math:`k` model steps, and its norm
            is clipped to :data:`MULTI_STEP_MAX_GRAD_NORM` (the cure of backpropagation through
            time): unclipped, ``rollout_steps=4`` at the point-mass recipe's learning rate diverged
            on PointMaze (held-out one-step error 355 against 0.44 for predicting no change);
            clipped, it fit better than the one-step loss (0.21 against 0.30, and 1.3 against 2.0
            at 50 steps). Defaults to ``1``.
        weight_decay (float): AdamW's decoupled weight decay. Defaults to ``0.0``.
        input_noise_std (float): Gaussian noise added to the start state of every window, in units
            of the state change's std per dimension, while the targets stay the real next states
            (as in Sanchez-Gonzalez et al., 2020, "Learning to Simulate Complex Physics with Graph
            Networks"). The model learns to pull states slightly off the data back onto it: a state
            pushed a little into a wall, where the data never goes, is pushed back out, so rollouts
            stop at the wall's face instead of creeping through. ``0`` for none. Defaults to ``0.0``.

    Examples:
        >>> from torchrl_grasp.world_models.mlp import NetworkConfig
        >>> states, actions = torch.rand(400, 2), torch.rand(400, 1)
        >>> data = TransitionData(states, actions, states + 0.1 * actions, torch.arange(400) // 20)
        >>> config = TrainingConfig(steps=50, batch_size=64, rollout_steps=4)
        >>> model = ResidualMLP(2, 1, NetworkConfig(hidden_size=16, num_layers=1))
        >>> train_model(model, data, config, progress=False).shape  # a loss per step
        torch.Size([50])
        >>> train_model(model, data, TrainingConfig(rollout_steps=21), progress=False)
        Traceback (most recent call last):
        ValueError: No trajectory in the data is 21 steps long (rollout_steps).
    """

    steps: int = 5_000
    batch_size: int = 512
    lr: float = 1e-3
    rollout_steps: int = 1
    weight_decay: float = 0.0
    input_noise_std: float = 0.0


def k_step_loss(model: ResidualMLP, states: Tensor, actions: Tensor, targets: Tensor) -> Tensor:
    r"""The mean over :math:`k` open-loop steps of the squared error, in units of the state change's std.

    .. math::

        L = \frac{1}{k D} \sum_{t=1}^{k} \big\| (\hat s_t - s_t) / \sigma_\Delta \big\|^2, \qquad
        \hat s_t = F(\hat s_{t-1}, a_{t-1}),\ \hat s_0 = s_0

    Every member rolls out its own windows: ``states`` ``[M, B, D]``, ``actions`` ``[M, B, k, A]``,
    ``targets`` (the real :math:`s_{1..k}`) ``[M, B, k, D]``. With :math:`k = 1` this is the
    one-step loss on the normalised state change. Returns the mean over members and windows.

    Examples:
        >>> import torch
        >>> from torchrl_grasp.world_models.mlp import NetworkConfig
        >>> model = ResidualMLP(2, 1, NetworkConfig(hidden_size=8, num_layers=1, num_members=2))
        >>> loss = k_step_loss(model, torch.zeros(2, 4, 2), torch.zeros(2, 4, 3, 1), torch.zeros(2, 4, 3, 2))
        >>> loss.shape
        torch.Size([])
    """
    predicted = states
    loss = 0.0
    for t in range(actions.shape[-2]):
        predicted = model.member_step(predicted, actions[..., t, :])
        loss = loss + ((predicted - targets[..., t, :]) / model.delta_std).square().mean()
    return loss / actions.shape[-2]


def train_model(
    model: ResidualMLP,
    data: TransitionData,
    config: TrainingConfig,
    *,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> Tensor:
    """Fits ``model`` in place to ``data``: normalisation from the data, then AdamW on :func:`k_step_loss`.

    Each ensemble member draws its own minibatch of ``config.batch_size`` windows of
    ``config.rollout_steps`` consecutive transitions of one trajectory.

    Args:
        model (ResidualMLP): trained in place.
        data (TransitionData): the training transitions.
        config (TrainingConfig): the optimisation.

    Keyword Args:
        generator (torch.Generator, optional): draws the minibatches; defaults to a new generator
            seeded with 0.
        progress (bool): show a progress bar. Defaults to ``True``.

    Returns:
        the training loss at every step, ``[config.steps]``.

    Examples:
        >>> import torch
        >>> from torchrl_grasp.world_models.mlp import NetworkConfig
        >>> states, actions = torch.rand(400, 2), torch.rand(400, 1)
        >>> data = TransitionData(states, actions, states + 0.1 * actions, torch.arange(400) // 20)
        >>> model = ResidualMLP(2, 1, NetworkConfig(hidden_size=32, num_layers=2))
        >>> config = TrainingConfig(steps=200, batch_size=64, lr=3e-3)
        >>> losses = train_model(model, data, config, progress=False)
        >>> bool(losses[-20:].mean() < 0.1 * losses[:20].mean())
        True
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    starts = data.window_starts(config.rollout_steps)
    if len(starts) == 0:
        raise ValueError(f"No trajectory in the data is {config.rollout_steps} steps long (rollout_steps).")
    model.fit_normalization(data.states, data.actions, data.next_states)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps, eta_min=config.lr / 20)
    losses = torch.empty(config.steps)
    bar = tqdm(range(config.steps), desc="training world model", disable=not progress, leave=False)
    for step in bar:
        picks = starts[
            torch.randint(len(starts), (model.num_members, config.batch_size), generator=generator)
        ]
        states, actions, targets = data.windows(picks.flatten(), config.rollout_steps)
        shape = (model.num_members, config.batch_size)
        if config.input_noise_std > 0:
            noise = torch.randn(states.shape, generator=generator) * config.input_noise_std
            states = states + noise * model.delta_std
        loss = k_step_loss(
            model,
            states.reshape(*shape, -1),
            actions.reshape(*shape, *actions.shape[1:]),
            targets.reshape(*shape, *targets.shape[1:]),
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.rollout_steps > 1:
            torch.nn.utils.clip_grad_norm_(model.parameters(), MULTI_STEP_MAX_GRAD_NORM)
        optimizer.step()
        schedule.step()
        losses[step] = loss.detach()
        if step % 100 == 0:
            bar.set_postfix(loss=f"{loss.item():.3g}")
    model.eval()
    return losses
