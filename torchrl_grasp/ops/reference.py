"""Pure-PyTorch reference of the stop-gradient collocation loss.

This is the oracle the fused op is tested against, written as plainly as the math
reads so that it is obviously right. Autograd derives its gradients.
"""

from __future__ import annotations

import torch


def collocation_loss_reference(
    pred: torch.Tensor,
    next_states: torch.Tensor,
    goal: torch.Tensor,
    goal_weight: float = 1.0,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""GRASP's collocation loss, one value per plan.

    .. math::

        L = \sum_t w_t \Big( \tfrac{1}{D}\lVert \hat s_{t+1} - s_{t+1} \rVert^2
            + \gamma \tfrac{1}{D}\lVert \hat s_{t+1} - g \rVert^2 \Big)

    where :math:`\hat s_{t+1} = F(\bar s_t, a_t)` is the world model's prediction
    from the stop-gradient state.

    Args:
        pred (Tensor): predictions ``[*B, T, D]``.
        next_states (Tensor): virtual states ``s_1 .. s_T``, ``[*B, T, D]``.
        goal (Tensor): goal ``[*B, D]`` (batch dims broadcast), shared over ``T``.
        goal_weight (float, optional): :math:`\gamma`. Defaults to ``1.0``.
        weights (Tensor, optional): per-step weights ``[T]`` or ``[*B, T]``.
            Defaults to all ones.

    Returns:
        Tensor of shape ``[*B]``.

    Examples:
        >>> import torch
        >>> pred = torch.zeros(2, 3, 4)
        >>> collocation_loss_reference(pred, pred + 1, torch.ones(2, 4))
        tensor([6., 6.])
    """
    dynamics = (pred - next_states).square().mean(-1)
    to_goal = (pred - goal.unsqueeze(-2)).square().mean(-1)
    per_step = dynamics + goal_weight * to_goal
    if weights is not None:
        per_step = per_step * weights
    return per_step.sum(-1)
