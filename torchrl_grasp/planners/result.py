"""What a plan call returns: the plan, its rollout through the model, and what happened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from tensordict import TensorDictBase
from torch import Tensor

#: Why a plan call ended: ``"reached"`` (every batch element had a plan within ``stop_distance``),
#: ``"deadline"`` (the ``time_budget`` was spent: the best plan found by then was returned),
#: ``"completed"`` (every iteration ran) or ``"non_finite"`` (the loss became NaN or infinite, and
#: the best finite plan found before was returned).
Status = Literal["reached", "deadline", "completed", "non_finite"]


@dataclass
class PlanResult:
    """What :meth:`plan` returns for a batch of start states ``[*B]``.

    Attributes:
        actions (Tensor): the best plan, ``[*B, T, *action_shape]``.
        virtual_states (TensorDictBase): the optimised states ``s_0 .. s_T`` of that plan,
            ``[*B, T+1]`` (``s_0`` is the start; goal keys end at the goal).
        rollout (TensorDictBase): the world model's serial rollout of ``actions``, ``[*B, T+1]``.
        goal_distance (Tensor or None): Euclidean distance of the rollout's last state to the
            goal over the goal's keys, ``[*B]``; ``None`` when planning by reward.
        loss_history (Tensor): the planner's loss per iteration, mean over restarts,
            ``[iterations, *B]``.
        model_calls (int): batched world-model calls made (collocation iterations count one,
            a serial rollout counts ``T``).
        model_transitions (float): transitions the world model predicted per plan (per batch
            element and restart): the work that sampling and gradient planners share, so that
            they compare at equal world-model evaluations (a CEM iteration of 300 candidates
            over 60 steps counts 18000, a collocation iteration 60).
        iterations (int): the iterations run (collocation iterations, shooting steps, or
            sampling iterations).
        status (str): why planning ended, see :data:`Status`.
        restart (Tensor): which of the batch element's restarts the plan comes from, ``[*B]``
            (the index in the ``restarts`` dim of the callback's view).
        predicted_return (Tensor or None): when planning by reward, the sum of the world
            model's rewards along the rollout, ``[*B]``; else ``None``.
        penalty (Tensor or None): with a ``penalty_weight``, the sum of the world model's penalty
            (such as its ensemble's disagreement) along the rollout, unweighted, ``[*B]``; else ``None``.
        serial_fallbacks (int): the parallel sync's rollouts that fell back to the serial one
            (:class:`~torchrl_grasp.planners.ParallelGDSync`); ``0`` for the other syncs.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import GRASPPlanner, TransitionModelEnv
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> batch = TensorDict(observation=torch.zeros(3, 2), goal=torch.ones(3, 2) * 0.4, batch_size=[3])
        >>> result = GRASPPlanner(env, 8, optim_steps=50).plan(batch)
        >>> result.actions.shape, result.virtual_states["observation"].shape, result.rollout.batch_size
        (torch.Size([3, 8, 2]), torch.Size([3, 9, 2]), torch.Size([3, 9]))
        >>> result.goal_distance.shape, result.predicted_return  # planned to a goal, not by reward
        (torch.Size([3]), None)
        >>> result.iterations, result.status, result.restart  # one restart: always the first
        (50, 'completed', tensor([0, 0, 0]))
        >>> result.model_calls, result.model_transitions  # 50 iterations of 8 steps, 11 rollouts of 8 (a sync)
        (138, 488.0)
        >>> result.dynamics_gap.shape  # per step: how far the virtual states are from the rollout
        torch.Size([3, 8])
    """

    actions: Tensor
    virtual_states: TensorDictBase
    rollout: TensorDictBase
    goal_distance: Tensor | None
    loss_history: Tensor
    model_calls: int
    iterations: int
    status: Status
    restart: Tensor
    predicted_return: Tensor | None = None
    model_transitions: float = 0.0
    penalty: Tensor | None = None
    serial_fallbacks: int = 0

    @property
    def dynamics_gap(self) -> Tensor:
        r"""How far the plan's virtual states are from its rollout, per step, in step lengths: ``[*B, T]``.

        :math:`\lVert s_t - \hat s_t \rVert / \operatorname{mean}_t \lVert \hat s_{t} - \hat s_{t-1} \rVert`
        for :math:`t = 1 .. T`, with :math:`s` the virtual states and :math:`\hat s` the model's
        rollout of the actions, over every state key. Near ``0``, the virtual states form the path
        the actions drive; ``1`` is a step's length off. Sampling and shooting planners, whose
        states are their rollout's, have a gap of ``0``.

        Examples:
            >>> from tensordict import TensorDict
            >>> rollout = TensorDict(x=torch.tensor([[0.0], [1.0], [2.0]]), batch_size=[3])
            >>> virtual = TensorDict(x=torch.tensor([[0.0], [1.5], [2.0]]), batch_size=[3])
            >>> PlanResult(torch.zeros(2, 1), virtual, rollout, None, torch.zeros(1), 0, 1, "completed",
            ...            torch.tensor(0)).dynamics_gap
            tensor([0.5000, 0.0000])
        """
        batch = self.rollout.batch_dims - 1
        keys = list(self.virtual_states.keys(True, True))

        def flat(states: TensorDictBase) -> Tensor:
            return torch.cat([states.get(key).flatten(batch + 1) for key in keys], dim=-1)

        virtual, rollout = flat(self.virtual_states), flat(self.rollout)
        gap = (virtual - rollout)[..., 1:, :].norm(dim=-1)
        step = rollout.diff(dim=-2).norm(dim=-1).mean(-1, keepdim=True)
        return gap / step.clamp_min(torch.finfo(step.dtype).tiny)
