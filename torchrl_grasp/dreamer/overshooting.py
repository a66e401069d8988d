"""PlaNet's latent overshooting, on the rollout a planner makes: the prior mean rolled many steps.

TorchRL's ``DreamerModelLoss`` trains the prior one step at a time, from sampled posterior
states and under free nats. The planners roll the prior's *mean* tens of steps with no image
to correct it, and its error grows with every step (in the pixel tier's decoded images 0.12
after 20 steps and 0.23 after 40, against a 0.1 success radius). :func:`overshooting_loss` trains that
rollout itself: from every posterior latent of a window it rolls the prior mean ``1..distance``
steps under the window's actions and pulls each prediction toward the posterior seen there
(detached, so only the prior learns, as the prior's side of Dreamer's KL balancing does, and
without free nats).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDictBase
from torch import Tensor
from torchrl.modules.models.model_based import RSSMPrior


@dataclass
class OvershootingRollout:
    """The prior-mean rollouts of a window, flattened over (start, distance).

    Attributes:
        loss (Tensor): scalar, the mean over rollout steps of ``KL(posterior || prior)`` summed over
            the state's features.
        states (Tensor): ``[N, state_dim]``, the predicted states (prior means), one per rollout step.
        beliefs (Tensor): ``[N, belief_dim]``, their beliefs.
        index (Tensor): ``[N, 2]``, the (window, step) each prediction is of, to read its targets.
        distances (Tensor): ``[N]``, how many steps each prediction was rolled.
    """

    loss: Tensor
    states: Tensor
    beliefs: Tensor
    index: Tensor
    distances: Tensor


def gaussian_kl(mean_p: Tensor, std_p: Tensor, mean_q: Tensor, std_q: Tensor) -> Tensor:
    """``KL(N(mean_p, std_p) || N(mean_q, std_q))`` summed over the last dimension.

    Examples:
        >>> zero, one = torch.zeros(3, 4), torch.ones(3, 4)
        >>> gaussian_kl(zero, one, zero, one)
        tensor([0., 0., 0.])
        >>> gaussian_kl(zero, one, one, one)  # four features, each half a squared unit
        tensor([2., 2., 2.])
    """
    kl = torch.log(std_q / std_p) + (std_p**2 + (mean_p - mean_q) ** 2) / (2 * std_q**2) - 0.5
    return kl.sum(-1)


def overshooting_loss(prior: RSSMPrior, window: TensorDictBase, distance: int) -> OvershootingRollout:
    """Rolls the prior mean ``1..distance`` steps from each posterior latent of ``window`` and scores it.

    ``window`` is ``[B, L]`` as ``DreamerModelLoss`` leaves it: ``action`` and, under ``"next"``,
    ``posterior_mean``, ``posterior_std`` and ``belief`` (the latent after ``action``). Rollouts start
    from the posterior mean and belief after step ``t`` (as :class:`~torchrl_grasp.dreamer.LatentFilter`
    hands a planner its start), take actions ``t+1 .. t+d`` and are compared with the posterior after
    step ``t+d``; rollouts that would leave the window stop there. Only the prior learns from
    it: starts and targets are the posterior's, detached (``DreamerModelLoss`` returns its
    tensordict's data), so the posterior keeps what the images teach it.

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded
        >>> prior = RSSMPrior(Bounded(-1.0, 1.0, (2,)), hidden_dim=6, rnn_hidden_dim=6, state_dim=4, action_dim=2)
        >>> window = TensorDict(
        ...     action=torch.rand(3, 5, 2),
        ...     next=TensorDict(posterior_mean=torch.randn(3, 5, 4), posterior_std=torch.ones(3, 5, 4),
        ...                     belief=torch.randn(3, 5, 6), batch_size=[3, 5]),
        ...     batch_size=[3, 5],
        ... )
        >>> rollout = overshooting_loss(prior, window, distance=2)
        >>> rollout.states.shape, rollout.index.shape  # 3 windows x (4 one-step + 3 two-step) predictions
        (torch.Size([21, 4]), torch.Size([21, 2]))
        >>> rollout.distances.bincount().tolist()
        [0, 12, 9]
        >>> rollout.loss.ndim, bool(rollout.loss > 0)
        (0, True)
    """
    if distance < 1:
        raise ValueError(f"distance must be at least 1, got {distance}.")
    actions = window["action"]
    posterior_mean, posterior_std = window["next", "posterior_mean"], window["next", "posterior_std"]
    batch, length = actions.shape[:2]
    state, belief = posterior_mean[:, :-1], window["next", "belief"][:, :-1]
    losses, states, beliefs, index, distances = [], [], [], [], []
    steps = torch.arange(length, device=actions.device)
    for d in range(1, min(distance, length - 1) + 1):
        starts = length - d
        state, belief = state[:, :starts], belief[:, :starts]
        rows = batch * starts  # the prior's GRUCell takes a 1-D batch
        mean, std, _, next_belief = prior(
            state.reshape(rows, -1),
            belief.reshape(rows, -1),
            actions[:, d:].reshape(rows, -1),
            noise=torch.zeros_like(state.reshape(rows, -1)),
        )
        target_mean = posterior_mean[:, d:].reshape(rows, -1).detach()
        target_std = posterior_std[:, d:].reshape(rows, -1).detach()
        losses.append(gaussian_kl(target_mean, target_std, mean, std))
        states.append(mean)
        beliefs.append(next_belief)
        index.append(
            torch.stack(torch.broadcast_tensors(torch.arange(batch)[:, None], steps[None, d:]), -1).reshape(rows, 2)
        )
        distances.append(torch.full((rows,), d, device=actions.device))
        state, belief = mean.reshape(batch, starts, -1), next_belief.reshape(batch, starts, -1)
    return OvershootingRollout(
        torch.cat(losses).mean(), torch.cat(states), torch.cat(beliefs), torch.cat(index), torch.cat(distances)
    )
