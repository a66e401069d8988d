"""What a plan call returns: the plan, its rollout through the model, and what happened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tensordict import TensorDictBase
from torch import Tensor

#: Why a plan call ended: ``"reached"`` (every batch element had a plan within ``stop_distance``),
#: ``"completed"`` (every iteration ran) or ``"non_finite"`` (the loss became NaN or infinite, and
#: the best finite plan found before was returned).
Status = Literal["reached", "completed", "non_finite"]


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
