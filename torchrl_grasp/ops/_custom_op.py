"""The fused collocation loss as ``torch.library`` custom ops, on canonical shapes.

Two ops, both in the ``torchrl_grasp`` namespace and both on canonical shapes
(``pred``/``next_states`` ``[N, T, D]``, ``goal`` ``[N, D]``, ``weights`` ``[N, T]``):

- ``torchrl_grasp::collocation_loss`` returns ``[N]``; its autograd formula calls
- ``torchrl_grasp::collocation_loss_backward``, which returns the three input
  gradients from the inputs alone (differences are recomputed, nothing is saved
  but the inputs, and no autograd graph of the elementwise math is built).

Each op has a PyTorch implementation (CPU and the fallback everywhere) and a CUDA
implementation that uses the Triton kernels of :mod:`torchrl_grasp.ops._triton`
when Triton can be imported. The backend is chosen per call by the dispatcher
from the tensors' device. Use :func:`torchrl_grasp.ops.collocation_loss`, which
validates and reshapes its inputs, rather than these ops directly.
"""

from __future__ import annotations

import functools
from types import ModuleType

import torch
from torch import Tensor

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def _squared_error_per_step(
    pred: Tensor, next_states: Tensor, goal: Tensor, goal_weight: float
) -> Tensor:
    """``||p - x||^2 + goal_weight * ||p - g||^2`` over ``D``, shape ``[N, T]``."""
    diff = pred - next_states
    per_step = torch.linalg.vecdot(diff, diff)
    if goal_weight != 0.0:
        torch.sub(pred, goal.unsqueeze(1), out=diff)
        per_step.add_(torch.linalg.vecdot(diff, diff), alpha=goal_weight)
    return per_step


def _torch_forward(
    pred: Tensor, next_states: Tensor, goal: Tensor, goal_weight: float, weights: Tensor
) -> Tensor:
    out_dtype = pred.dtype
    dtype = _accumulation_dtype(out_dtype)
    if dtype != out_dtype:
        pred, next_states, goal, weights = (t.to(dtype) for t in (pred, next_states, goal, weights))
    per_step = _squared_error_per_step(pred, next_states, goal, goal_weight)
    return (torch.linalg.vecdot(per_step, weights) / pred.shape[-1]).to(out_dtype)


def _torch_backward(
    grad: Tensor,
    pred: Tensor,
    next_states: Tensor,
    goal: Tensor,
    goal_weight: float,
    weights: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    out_dtype = pred.dtype
    dtype = _accumulation_dtype(out_dtype)
    if dtype != out_dtype:
        grad, pred, next_states, goal, weights = (
            t.to(dtype) for t in (grad, pred, next_states, goal, weights)
        )
    scale = (weights * grad.unsqueeze(-1)).mul_(2.0 / pred.shape[-1]).unsqueeze(-1)
    diff_next = pred - next_states  # [N, T, D]
    if goal_weight != 0.0:
        diff_goal = pred - goal.unsqueeze(1)
        # -gw * sum_t scale_t * (p_t - g), as one batched matmul [N, 1, T] @ [N, T, D].
        grad_goal = torch.bmm(scale.transpose(1, 2), diff_goal).squeeze(1).mul_(-goal_weight)
        grad_pred = diff_goal.mul_(goal_weight).add_(diff_next).mul_(scale)
    else:
        grad_goal = torch.zeros_like(goal)
        grad_pred = diff_next * scale
    grad_next = diff_next.mul_(scale.neg_())
    if dtype != out_dtype:
        return grad_pred.to(out_dtype), grad_next.to(out_dtype), grad_goal.to(out_dtype)
    return grad_pred, grad_next, grad_goal


@functools.cache
def _triton_backend() -> ModuleType | None:
    try:
        from torchrl_grasp.ops import _triton
    except ImportError:
        return None
    return _triton


@torch.library.custom_op("torchrl_grasp::collocation_loss", mutates_args=())
def collocation_loss_op(
    pred: Tensor, next_states: Tensor, goal: Tensor, goal_weight: float, weights: Tensor
) -> Tensor:
    """Fused stop-gradient collocation loss on canonical shapes; returns ``[N]``."""
    return _torch_forward(pred, next_states, goal, goal_weight, weights)


@collocation_loss_op.register_kernel("cuda")
def _collocation_loss_cuda(pred, next_states, goal, goal_weight, weights):
    backend = _triton_backend()
    if backend is None:
        return _torch_forward(pred, next_states, goal, goal_weight, weights)
    return backend.collocation_loss_forward(
        pred.contiguous(), next_states.contiguous(), goal, goal_weight, weights
    )


@collocation_loss_op.register_fake
def _collocation_loss_fake(pred, next_states, goal, goal_weight, weights):
    return pred.new_empty(pred.shape[:1])


@torch.library.custom_op("torchrl_grasp::collocation_loss_backward", mutates_args=())
def collocation_loss_backward_op(
    grad: Tensor,
    pred: Tensor,
    next_states: Tensor,
    goal: Tensor,
    goal_weight: float,
    weights: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Analytic gradients of :func:`collocation_loss_op` w.r.t. ``pred``, ``next_states``, ``goal``.

    .. math::

        \partial_{p_t} L = \tfrac{2 w_t}{D} g_\uparrow \big[(p_t - x_t) + \gamma (p_t - g)\big],\quad
        \partial_{x_t} L = -\tfrac{2 w_t}{D} g_\uparrow (p_t - x_t),\quad
        \partial_{g} L = -\gamma \sum_t \tfrac{2 w_t}{D} g_\uparrow (p_t - g)
    """
    return _torch_backward(grad, pred, next_states, goal, goal_weight, weights)


@collocation_loss_backward_op.register_kernel("cuda")
def _collocation_loss_backward_cuda(grad, pred, next_states, goal, goal_weight, weights):
    backend = _triton_backend()
    if backend is None:
        return _torch_backward(grad, pred, next_states, goal, goal_weight, weights)
    return backend.collocation_loss_backward(
        grad, pred.contiguous(), next_states.contiguous(), goal, goal_weight, weights
    )


@collocation_loss_backward_op.register_fake
def _collocation_loss_backward_fake(grad, pred, next_states, goal, goal_weight, weights):
    return torch.empty_like(pred), torch.empty_like(next_states), goal.new_empty(goal.shape)


def _setup_context(ctx, inputs, output):
    pred, next_states, goal, goal_weight, weights = inputs
    ctx.save_for_backward(pred, next_states, goal, weights)
    ctx.goal_weight = goal_weight


def _backward(ctx, grad):
    pred, next_states, goal, weights = ctx.saved_tensors
    grad_pred, grad_next, grad_goal = collocation_loss_backward_op(
        grad, pred, next_states, goal, ctx.goal_weight, weights
    )
    grad_weights = None
    if ctx.needs_input_grad[4]:
        # Rarely wanted (learned step weights); a plain expression is fast enough.
        dtype = _accumulation_dtype(pred.dtype)
        per_step = _squared_error_per_step(
            pred.to(dtype), next_states.to(dtype), goal.to(dtype), ctx.goal_weight
        )
        grad_weights = (per_step * grad.to(dtype).unsqueeze(-1) / pred.shape[-1]).to(weights.dtype)
    return grad_pred, grad_next, grad_goal, None, grad_weights


torch.library.register_autograd(
    "torchrl_grasp::collocation_loss", _backward, setup_context=_setup_context
)
