"""A small Dreamer world model from TorchRL's own parts, wired for training and for planning.

TorchRL's Dreamer (``torchrl.trainers.helpers.models``) builds its world model from
:class:`~torchrl.modules.models.model_based.ObsEncoder`, ``ObsDecoder``, ``RSSMPrior``,
``RSSMPosterior`` and a reward MLP. :class:`RSSMWorldModel` holds those five parts, sized by
:class:`RSSMSize`, and wires them three ways:

- :meth:`RSSMWorldModel.training_module`: the posterior rollout over observed sequences that
  TorchRL's :class:`~torchrl.objectives.DreamerModelLoss` trains (same keys as TorchRL's Dreamer);
- :meth:`RSSMWorldModel.transition_module`: one imagined step ``(state, belief, action) ->
  (state, belief)`` with the prior's **mean** as the next state, the deterministic transition a
  planner wants (Dreamer's env samples the state, drawing from the global RNG at every call);
- :meth:`RSSMWorldModel.dreamer_env`: TorchRL's :class:`~torchrl.envs.model_based.dreamer.DreamerEnv`
  over that transition and the reward head, where TorchRL's ``CEMPlanner`` and this package's
  planners (``reward_key="reward"``) plan by reward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictSequential
from torch import Tensor, nn
from torchrl.data import Bounded, Composite, TensorSpec, Unbounded
from torchrl.envs.model_based.dreamer import DreamerEnv
from torchrl.modules import MLP
from torchrl.modules.models.model_based import ObsDecoder, ObsEncoder, RSSMPosterior, RSSMPrior, RSSMRollout
from torchrl.modules.tensordict_module.world_models import WorldModelWrapper


class PriorMeanStep(nn.Module):
    """``(state, belief, action) -> (prior mean, belief)``: TorchRL's ``RSSMPrior`` without its sample.

    Returning exactly the next state keys lets the planners call it on plain tensors (see
    :class:`~torchrl_grasp.world_models.WorldModelStep`), and it never draws from the global RNG.

    Examples:
        >>> from torchrl.data import Bounded
        >>> prior = RSSMPrior(Bounded(-1.0, 1.0, (2,)), hidden_dim=6, rnn_hidden_dim=6, state_dim=4, action_dim=2)
        >>> state, belief, action = torch.zeros(3, 4), torch.zeros(3, 6), torch.ones(3, 2)
        >>> mean, next_belief = PriorMeanStep(prior)(state, belief, action)
        >>> torch.equal(mean, prior(state, belief, action)[0]), next_belief.shape
        (True, torch.Size([3, 6]))
    """

    def __init__(self, prior: RSSMPrior):
        super().__init__()
        self.prior = prior

    def forward(self, state: Tensor, belief: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        mean, _, _, belief = self.prior(state, belief, action, noise=torch.zeros_like(state))
        return mean, belief


@dataclass(frozen=True)
class RSSMSize:
    """The sizes of the world model's parts (TorchRL's Dreamer defaults are 30 / 200 / 200 / 32 / 32).

    Args:
        state_dim (int): the stochastic state. Defaults to ``16``.
        belief_dim (int): the GRU's deterministic belief. Defaults to ``64``.
        hidden_dim (int): the prior's and posterior's hidden layers; must equal ``belief_dim``
            (TorchRL's ``RSSMPrior`` applies a ``hidden_dim`` layer to the belief). Defaults to ``64``.
        encoder_channels (int): channels of the encoder's first convolution (doubled per layer).
            Defaults to ``8``.
        decoder_channels (int): channels of the decoder's last transposed convolution.
            Defaults to ``8``.
        reward_hidden (int): the reward MLP's width (two hidden layers). Defaults to ``64``.

    Examples:
        >>> RSSMSize()
        RSSMSize(state_dim=16, belief_dim=64, hidden_dim=64, encoder_channels=8, decoder_channels=8, reward_hidden=64)
        >>> from torchrl.data import Bounded
        >>> model = RSSMWorldModel(Bounded(-1.0, 1.0, (2,)), RSSMSize(state_dim=4, belief_dim=8, hidden_dim=8))
        >>> model.initial_latent([2])["belief"].shape
        torch.Size([2, 8])
    """

    state_dim: int = 16
    belief_dim: int = 64
    hidden_dim: int = 64
    encoder_channels: int = 8
    decoder_channels: int = 8
    reward_hidden: int = 64


class RSSMWorldModel(nn.Module):
    """TorchRL's Dreamer parts for ``3 x 64 x 64`` images and a bounded action.

    Reports and pictures turn a latent into a position through the model's own decoder
    (:meth:`decode`, then :meth:`~torchrl_grasp.dreamer.PointMassPixels.locate`): what the model
    imagines, with nothing fitted. (A position probe fitted beside the model read its filtered
    latents 0.19 off where a refitted, larger one read 0.04: it measured itself more than the model.)

    Args:
        action_spec (Bounded): the action, without batch dimensions.
        size (RSSMSize): Defaults to ``RSSMSize()``.

    Examples:
        >>> import torch
        >>> from torchrl.data import Bounded
        >>> model = RSSMWorldModel(Bounded(-1.0, 1.0, (2,)))
        >>> env = model.dreamer_env()
        >>> latent = model.initial_latent([5])
        >>> step = model.transition_module()(latent.set("action", torch.zeros(5, 2)))
        >>> step["state"].shape, step["belief"].shape
        (torch.Size([5, 16]), torch.Size([5, 64]))
        >>> model.reward_module()(step)["reward"].shape
        torch.Size([5, 1])
    """

    def __init__(self, action_spec: TensorSpec, size: RSSMSize = RSSMSize()):
        super().__init__()
        if size.hidden_dim != size.belief_dim:
            raise ValueError(
                f"RSSMSize needs hidden_dim == belief_dim (TorchRL's RSSMPrior maps the belief with a "
                f"hidden_dim x hidden_dim layer), got hidden_dim={size.hidden_dim}, belief_dim={size.belief_dim}."
            )
        action_dim = action_spec.shape[-1]
        latent_dim = size.state_dim + size.belief_dim
        self.size, self.action_spec = size, action_spec
        self.encoder = ObsEncoder(channels=size.encoder_channels, in_channels=3)
        embedding_dim = size.encoder_channels * 8 * 2 * 2  # four stride-2 convolutions of a 64 x 64 image
        self.decoder = ObsDecoder(channels=size.decoder_channels, latent_dim=latent_dim)
        self.prior = RSSMPrior(
            action_spec,
            hidden_dim=size.hidden_dim,
            rnn_hidden_dim=size.belief_dim,
            state_dim=size.state_dim,
            action_dim=action_dim,
        )
        self.posterior = RSSMPosterior(
            hidden_dim=size.hidden_dim,
            state_dim=size.state_dim,
            rnn_hidden_dim=size.belief_dim,
            obs_embed_dim=embedding_dim,
        )
        self.reward = MLP(
            in_features=latent_dim, out_features=1, depth=2, num_cells=size.reward_hidden, activation_class=nn.ELU
        )

    # ------------------------------------------------------------------ latents
    def initial_latent(self, batch_size) -> TensorDict:
        """The zero latent ``{state, belief}`` that TorchRL's Dreamer starts every episode from."""
        batch_size = torch.Size(batch_size)
        device = self.reward.parameters().__next__().device
        return TensorDict(
            state=torch.zeros(*batch_size, self.size.state_dim, device=device),
            belief=torch.zeros(*batch_size, self.size.belief_dim, device=device),
            batch_size=batch_size,
            device=device,
        )

    def latent_spec(self) -> Composite:
        """``{state, belief}``, unbatched."""
        return Composite(state=Unbounded(self.size.state_dim), belief=Unbounded(self.size.belief_dim))

    def decode(self, latent: TensorDictBase) -> Tensor:
        """The images ``[*B, 3, 64, 64]`` the decoder draws of latents ``{state, belief}`` ``[*B]``.

        Examples:
            >>> from torchrl.data import Bounded
            >>> model = RSSMWorldModel(Bounded(-1.0, 1.0, (2,)))
            >>> model.decode(model.initial_latent([5, 2])).shape
            torch.Size([5, 2, 3, 64, 64])
        """
        state, belief = latent["state"], latent["belief"]
        batch = state.shape[:-1]
        images = self.decoder(state.reshape(-1, state.shape[-1]), belief.reshape(-1, belief.shape[-1]))
        return images.reshape(*batch, *images.shape[-3:])

    # ------------------------------------------------------------------ wirings
    def training_module(self) -> WorldModelWrapper:
        """The observed-sequence model that :class:`~torchrl.objectives.DreamerModelLoss` trains.

        On a ``[B, T]`` tensordict with ``state`` and ``belief`` (the start, zeros), ``action`` and
        ``("next", "pixels")``, it writes the prior and posterior statistics, the posterior
        states and beliefs, ``("next", "reco_pixels")`` and ``("next", "reward")``: TorchRL's
        Dreamer wiring, with the posterior's state sampled as Dreamer samples it.
        """
        rollout = RSSMRollout(
            TensorDictModule(
                self.prior,
                in_keys=["state", "belief", "action"],
                out_keys=[("next", "prior_mean"), ("next", "prior_std"), "_", ("next", "belief")],
            ),
            TensorDictModule(
                self.posterior,
                in_keys=[("next", "belief"), ("next", "encoded_latents")],
                out_keys=[("next", "posterior_mean"), ("next", "posterior_std"), ("next", "state")],
            ),
        )
        transition = TensorDictSequential(
            TensorDictModule(self.encoder, in_keys=[("next", "pixels")], out_keys=[("next", "encoded_latents")]),
            rollout,
            TensorDictModule(
                self.decoder, in_keys=[("next", "state"), ("next", "belief")], out_keys=[("next", "reco_pixels")]
            ),
        )
        reward = TensorDictModule(
            self.reward, in_keys=[("next", "state"), ("next", "belief")], out_keys=[("next", "reward")]
        )
        return WorldModelWrapper(transition, reward)

    def transition_module(self) -> TensorDictModule:
        """One deterministic imagined step: ``(state, belief, action) -> (state, belief)``, state = prior mean."""
        return TensorDictModule(
            PriorMeanStep(self.prior), in_keys=["state", "belief", "action"], out_keys=["state", "belief"]
        )

    def reward_module(self) -> TensorDictModule:
        """``(state, belief) -> reward`` ``[*B, 1]``."""
        return TensorDictModule(self.reward, in_keys=["state", "belief"], out_keys=["reward"])

    def dreamer_env(self) -> DreamerEnv:
        """TorchRL's ``DreamerEnv`` over :meth:`transition_module` and :meth:`reward_module`.

        Its state is ``{state, belief}``; reset it with a latent (e.g. from
        :class:`~torchrl_grasp.dreamer.LatentFilter`). TorchRL's ``CEMPlanner`` plans on it by
        reward; so do this package's planners with ``reward_key="reward"``.
        """
        env = DreamerEnv(
            world_model=WorldModelWrapper(self.transition_module(), self.reward_module()),
            prior_shape=torch.Size([self.size.state_dim]),
            belief_shape=torch.Size([self.size.belief_dim]),
        )
        env.observation_spec = self.latent_spec()
        env.state_spec = self.latent_spec()
        env.action_spec = Bounded(self.action_spec.space.low, self.action_spec.space.high, self.action_spec.shape)
        env.reward_spec = Unbounded((1,))
        return env
