"""Latent overshooting: the batched loss equals one rollout per start, and only the prior learns from it."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded
from torchrl.modules.models.model_based import RSSMPrior

from torchrl_grasp.dreamer.overshooting import overshooting_loss


def window_and_prior(batch: int = 3, length: int = 6, state_dim: int = 4, belief_dim: int = 5):
    torch.manual_seed(0)
    prior = RSSMPrior(
        Bounded(-1.0, 1.0, (2,)), hidden_dim=belief_dim, rnn_hidden_dim=belief_dim, state_dim=state_dim, action_dim=2
    )
    window = TensorDict(
        action=torch.rand(batch, length, 2) * 2 - 1,
        next=TensorDict(
            posterior_mean=torch.randn(batch, length, state_dim),
            posterior_std=torch.rand(batch, length, state_dim) + 0.1,
            belief=torch.randn(batch, length, belief_dim),
            batch_size=[batch, length],
        ),
        batch_size=[batch, length],
    )
    return prior, window


def gaussian_kl(mean_p, std_p, mean_q, std_q):
    """KL(N(mean_p, std_p) || N(mean_q, std_q)), summed over features, written out."""
    return (torch.log(std_q / std_p) + (std_p**2 + (mean_p - mean_q) ** 2) / (2 * std_q**2) - 0.5).sum(-1)


def per_start_reference(prior, window, distance):
    """One start at a time, one step at a time: the loss the batched rollout must equal."""
    batch, length = window.batch_size
    post_mean, post_std = window["next", "posterior_mean"], window["next", "posterior_std"]
    kls = []
    for b in range(batch):
        for start in range(length - 1):
            state, belief = post_mean[b, start : start + 1], window["next", "belief"][b, start : start + 1]
            for d in range(1, distance + 1):
                if start + d >= length:
                    break
                action = window["action"][b, start + d : start + d + 1]
                mean, std, _, belief = prior(state, belief, action, noise=torch.zeros_like(state))
                kls.append(gaussian_kl(post_mean[b, start + d], post_std[b, start + d], mean[0], std[0]))
                state = mean
    return torch.stack(kls).mean()


@pytest.mark.parametrize("distance", [1, 3, 10])  # 10 is cut at the window's end
def test_batched_overshooting_equals_one_rollout_per_start(distance):
    prior, window = window_and_prior()
    torch.testing.assert_close(overshooting_loss(prior, window, distance), per_start_reference(prior, window, distance))


def test_only_the_prior_learns_from_overshooting():
    prior, window = window_and_prior()
    window = window.apply(lambda x: x.requires_grad_(True))
    overshooting_loss(prior, window, 3).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in prior.parameters() if p.requires_grad)
    # The targets are detached; the starts get a gradient only where the caller left them attached.
    assert window["next", "posterior_std"].grad is None


def test_overshooting_needs_a_positive_distance():
    prior, window = window_and_prior()
    with pytest.raises(ValueError, match="distance must be at least 1"):
        overshooting_loss(prior, window, 0)
