"""A residual MLP transition model, optionally an ensemble evaluated in one batched call."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

ACTIVATIONS = {"silu": nn.functional.silu, "elu": nn.functional.elu, "tanh": torch.tanh}


@dataclass(frozen=True)
class NetworkConfig:
    """The size of a :class:`ResidualMLP`.

    Args:
        hidden_size (int): width of every hidden layer. Defaults to ``128``.
        num_layers (int): hidden layers. Defaults to ``3``.
        num_members (int): ensemble members; ``1`` for a single network. Defaults to ``1``.
        activation (str): ``"silu"``, ``"elu"`` or ``"tanh"``: smooth, since planners differentiate
            the model with respect to its action input. Defaults to ``"silu"``.
        fourier_features (int): random Fourier features of the normalised state added to the
            input, ``sin`` and ``cos`` of ``F`` random projections; they let the network bend
            sharply where the dynamics do (contacts, walls). ``0`` for none. Defaults to ``0``.
        fourier_scale (float): the std of the random projections' weights. Defaults to ``1.0``.

    Examples:
        >>> def parameters(config):
        ...     return sum(p.numel() for p in ResidualMLP(2, 2, config).parameters())
        >>> small = NetworkConfig(hidden_size=16, num_layers=2)
        >>> parameters(small)  # (4 x 16 + 16) + (16 x 16 + 16) + (16 x 2 + 2)
        386
        >>> parameters(NetworkConfig(hidden_size=16, num_layers=2, num_members=3))  # three of them
        1158
        >>> parameters(NetworkConfig(hidden_size=16, num_layers=2, fourier_features=8))  # 16 more inputs
        642
    """

    hidden_size: int = 128
    num_layers: int = 3
    num_members: int = 1
    activation: str = "silu"
    fourier_features: int = 0
    fourier_scale: float = 1.0


class ResidualMLP(nn.Module):
    r"""A transition model that predicts the normalised state change with an MLP.

    .. math::

        s' = s + \mu_\Delta + \sigma_\Delta \odot
             \mathrm{MLP}\big(\bar s, \sin(\bar s B), \cos(\bar s B), \bar a\big),
        \qquad \bar s = (s - \mu_s) / \sigma_s, \quad \bar a = (a - \mu_a) / \sigma_a

    with :math:`B` ``[D, F]`` fixed random Fourier projections (``config.fourier_features``; none
    by default). The normalisation statistics (:meth:`fit_normalization`) and :math:`B` are
    buffers, so they travel with the state dict. An ensemble stacks the members' weights,
    ``[M, in, out]`` per layer, and
    evaluates all of them with one batched matmul per layer; :meth:`forward` returns the
    ensemble mean and :meth:`disagreement` the members' spread.

    Args:
        state_dim (int): :math:`D`.
        action_dim (int): :math:`A`.
        config (NetworkConfig, optional): the size. Defaults to ``NetworkConfig()``.

    Keyword Args:
        generator (torch.Generator, optional): draws the initial weights; defaults to a new
            generator seeded with 0.

    Examples:
        >>> import torch
        >>> model = ResidualMLP(2, 2, NetworkConfig(hidden_size=16, num_layers=2, num_members=3))
        >>> state, action = torch.zeros(5, 2), torch.ones(5, 2)
        >>> model(state, action).shape, model.members(state, action).shape
        (torch.Size([5, 2]), torch.Size([3, 5, 2]))
        >>> model(torch.zeros(4, 7, 2), torch.ones(4, 7, 2)).shape  # any leading batch shape
        torch.Size([4, 7, 2])
        >>> model.disagreement(state, action).shape
        torch.Size([5])
        >>> mean, spread = model.mean_and_disagreement(state, action)  # both from one call of the members
        >>> torch.equal(mean, model(state, action)), torch.equal(spread, model.disagreement(state, action))
        (True, True)
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        config: NetworkConfig | None = None,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        config = config if config is not None else NetworkConfig()
        if config.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {config.activation!r}.")
        if min(config.hidden_size, config.num_layers, config.num_members) < 1:
            raise ValueError(f"Every size in {config} must be positive.")
        self.state_dim, self.action_dim, self.config = state_dim, action_dim, config
        self.activation = ACTIVATIONS[config.activation]
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        projection = (
            torch.randn(state_dim, config.fourier_features, generator=generator) * config.fourier_scale
        )
        self.register_buffer("fourier_projection", projection)
        sizes = (
            [state_dim + 2 * config.fourier_features + action_dim]
            + [config.hidden_size] * config.num_layers
            + [state_dim]
        )
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1 / math.sqrt(fan_in)  # nn.Linear's default initialisation, per member
            weight = (torch.rand(config.num_members, fan_in, fan_out, generator=generator) * 2 - 1) * bound
            bias = (torch.rand(config.num_members, 1, fan_out, generator=generator) * 2 - 1) * bound
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(bias))
        for name, dim in (("state", state_dim), ("action", action_dim), ("delta", state_dim)):
            self.register_buffer(f"{name}_mean", torch.zeros(dim))
            self.register_buffer(f"{name}_std", torch.ones(dim))

    @property
    def num_members(self) -> int:
        return self.config.num_members

    @torch.no_grad()
    def fit_normalization(self, states: Tensor, actions: Tensor, next_states: Tensor) -> ResidualMLP:
        """Sets the buffers to the means and stds of the data, ``[N, D]``, ``[N, A]``, ``[N, D]``.

        A standard deviation under ``1e-6`` (a constant feature) is replaced by 1. Returns ``self``.
        """
        for name, data in (("state", states), ("action", actions), ("delta", next_states - states)):
            std = data.std(0)
            getattr(self, f"{name}_mean").copy_(data.mean(0))
            getattr(self, f"{name}_std").copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))
        return self

    def member_step(self, state: Tensor, action: Tensor) -> Tensor:
        """Every member's next state ``[M, N, D]``, for states ``[M or 1, N, D]``, actions ``[M or 1, N, A]``.

        Training passes ``[M, N, *]`` inputs, a different minibatch per member.
        """
        state_in = (state - self.state_mean) / self.state_std
        projected = state_in @ self.fourier_projection
        x = torch.cat(
            [state_in, projected.sin(), projected.cos(), (action - self.action_mean) / self.action_std], -1
        )
        x = x.expand(self.num_members, *x.shape[1:])
        last = len(self.weights) - 1
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(bias, x, weight)
            if index < last:
                x = self.activation(x)
        return state + x * self.delta_std + self.delta_mean

    def members(self, state: Tensor, action: Tensor) -> Tensor:
        """Every member's next state, ``[M, *B, D]`` for ``state`` ``[*B, D]`` and ``action`` ``[*B, A]``."""
        batch_shape = state.shape[:-1]
        flat = self.member_step(state.reshape(1, -1, self.state_dim), action.reshape(1, -1, self.action_dim))
        return flat.reshape(self.num_members, *batch_shape, self.state_dim)

    def forward(self, state: Tensor, action: Tensor) -> Tensor:
        """The ensemble mean of the next state, ``[*B, D]``."""
        return self.members(state, action).mean(0)

    def disagreement(self, state: Tensor, action: Tensor) -> Tensor:
        """The members' spread: the Euclidean norm of the per-dimension std of their next states, ``[*B]``.

        Zero for a single network.
        """
        return self.mean_and_disagreement(state, action)[1]

    def mean_and_disagreement(self, state: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`forward` and :meth:`disagreement` from one evaluation of the members: ``[*B, D]``, ``[*B]``."""
        members = self.members(state, action)
        if self.num_members == 1:
            return members[0], torch.zeros(members.shape[1:-1], dtype=members.dtype, device=members.device)
        return members.mean(0), members.std(0).norm(dim=-1)
