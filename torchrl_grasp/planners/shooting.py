"""Shooting: Adam on the actions through the world model's serial rollout (GD, and GRASP's GD sync)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from tensordict import TensorDictBase
from torch import Tensor

from torchrl_grasp.planners.best import BestPlan
from torchrl_grasp.planners.context import PlanContext, ScoredRollout
from torchrl_grasp.planners.descent import apply_gradients, gradients_of, plan_variable

#: ``rollout_gradient(context, candidate) -> (scored, gradient)``: the rollout of ``candidate``
#: ``[N, T, *A]`` with its loss and score, and a function that returns the loss's gradient with
#: respect to ``candidate`` (called only when the plan goes on).
RolloutGradient = Callable[[PlanContext, Tensor], tuple[ScoredRollout, Callable[[], Tensor]]]


def serial_rollout_gradient(context: PlanContext, candidate: Tensor) -> tuple[ScoredRollout, Callable[[], Tensor]]:
    """The serial rollout (``T`` model calls) and backpropagation through it: shooting's own."""
    scored = context.scored_rollout(candidate)
    return scored, lambda: gradients_of(scored.loss, [candidate])[0]


def shoot(
    context: PlanContext,
    actions: Tensor,
    steps: int,
    lr: float,
    best: BestPlan,
    *,
    virtual: TensorDictBase | None = None,
    history: Tensor | None = None,
    on_update: Callable[[int, Tensor, Tensor], None] | None = None,
    rollout_gradient: RolloutGradient = serial_rollout_gradient,
) -> int:
    r"""``steps`` Adam steps (lr ``lr``) on the serial rollout's loss, the objective's
    :math:`\mathcal{L}(F^T(s_0, a))` (the final state's goal error, or minus the return).

    ``actions`` ``[N, T, *A]`` is updated in place and stays inside the bounds. Each step's rollout
    is offered to ``best`` (with ``virtual`` as the plan's states; ``None`` takes the rollout's) and
    its loss ``[N]`` written to ``history[step]`` when given; ``on_update(k, actions, loss)`` is
    called after the ``k``-th update with the updated actions and the loss it descended. Returns
    the steps taken: fewer than ``steps`` once ``best`` reached ``stop_distance`` or the plan is
    out of time (then ``actions`` is the last rollout's, which ``best`` was offered).
    ``rollout_gradient`` computes each step's rollout and gradient: serially by default, or
    in parallel over time (:class:`~torchrl_grasp.planners.syncs.ParallelGDSync`).
    """
    candidate = plan_variable(actions)
    optimizer = torch.optim.Adam([candidate], lr=lr)
    taken = 0
    for step in range(steps):
        taken += 1
        scored, gradient = rollout_gradient(context, candidate)
        with torch.no_grad():
            best.offer(scored.score, candidate, scored.states, virtual, scored.penalty)
            if history is not None:
                history[step] = scored.loss
        if context.reached(best) or (step + 1 < steps and context.out_of_time()):
            break
        apply_gradients(optimizer, [candidate], [gradient()])
        with torch.no_grad():
            candidate.copy_(context.clamp(candidate))
        if on_update is not None:
            on_update(step + 1, candidate.detach(), scored.loss.detach())
    with torch.no_grad():
        actions.copy_(candidate)
    return taken
