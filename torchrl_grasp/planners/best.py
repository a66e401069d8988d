"""The best plan so far, per plan: what every planner keeps while it optimises."""

from __future__ import annotations

import math

import torch
from tensordict import TensorDictBase
from torch import Tensor


class BestPlan:
    """Keeps, per plan ``[N]``, the actions, rollout and states whose rollout scored lowest.

    The score is the objective's (see :mod:`torchrl_grasp.objectives`); non-finite scores never win.
    With a penalty, the kept plan's penalty total ``[N]`` is kept beside it (``None`` without).

    Examples:
        >>> from tensordict import TensorDict
        >>> best = BestPlan()
        >>> states = lambda value: TensorDict(x=torch.full((2, 3, 1), value), batch_size=[2, 3])
        >>> best.offer(torch.tensor([1.0, 1.0]), torch.zeros(2, 2, 1), states(0.0), None)
        >>> best.offer(torch.tensor([0.5, float("nan")]), torch.ones(2, 2, 1), states(1.0), None)
        >>> best.score, best.actions[:, 0, 0], best.virtual["x"][:, :, 0]  # the first plan improved
        (tensor([0.5000, 1.0000]), tensor([1., 0.]), tensor([[1., 1.],
                [0., 0.]]))
    """

    def __init__(self):
        self.score = None
        self.penalty = None

    def offer(
        self,
        score: Tensor,
        actions: Tensor,
        rollout: TensorDictBase,
        virtual: TensorDictBase | None,
        penalty: Tensor | None = None,
    ) -> None:
        """Takes the candidates that beat the best so far.

        ``actions`` ``[N, T, *A]``, ``rollout`` ``[N, T+1]``, ``virtual`` the plan's states ``[N, T]``
        (``None`` takes the rollout's), ``penalty`` the rollout's penalty total ``[N]`` or ``None``.
        """
        if virtual is None:
            virtual = rollout[:, 1:]
        score = torch.where(torch.isfinite(score), score, torch.full_like(score, math.inf))
        if self.score is None:
            self.score, self.actions = score.clone(), actions.detach().clone()
            self.rollout, self.virtual = rollout.detach().clone(), virtual.detach().clone()
            self.penalty = None if penalty is None else penalty.detach().clone()
            return
        better = score < self.score
        self.score = torch.where(better, score, self.score)
        if penalty is not None:
            self.penalty = torch.where(better, penalty.detach(), self.penalty)
        self.actions = torch.where(
            better.reshape(-1, *[1] * (actions.ndim - 1)), actions.detach(), self.actions
        )
        self.rollout = torch.where(better[:, None].expand(rollout.batch_size), rollout.detach(), self.rollout)
        self.virtual = torch.where(better[:, None].expand(virtual.batch_size), virtual.detach(), self.virtual)

    def finite(self) -> bool:
        """Whether any plan kept so far has a finite score."""
        return self.score is not None and bool(torch.isfinite(self.score).any())
