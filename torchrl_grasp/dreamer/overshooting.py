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

import torch
from tensordict import TensorDictBase
from torch import Tensor
from torch.distributions import Normal, kl_divergence
from torchrl.modules.models.model_based import RSSMPrior


def overshooting_loss(prior: RSSMPrior, window: TensorDictBase, distance: int) -> Tensor:
    """The mean ``KL(posterior || prior)`` (summed over the state's features) of the prior-mean rollouts of ``window``.

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
        >>> loss = overshooting_loss(prior, window, distance=2)  # over 3 x (4 one-step + 3 two-step) predictions
        >>> loss.ndim, bool(loss > 0)
        (0, True)
    """
    if distance < 1:
        raise ValueError(f"distance must be at least 1, got {distance}.")
    actions = window["action"]
    posterior_mean, posterior_std = window["next", "posterior_mean"], window["next", "posterior_std"]
    batch, length = actions.shape[:2]
    state, belief = posterior_mean[:, :-1], window["next", "belief"][:, :-1]
    losses = []
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
        target = Normal(posterior_mean[:, d:].reshape(rows, -1).detach(), posterior_std[:, d:].reshape(rows, -1).detach())
        losses.append(kl_divergence(target, Normal(mean, std)).sum(-1))
        state, belief = mean.reshape(batch, starts, -1), next_belief.reshape(batch, starts, -1)
    return torch.cat(losses).mean()
