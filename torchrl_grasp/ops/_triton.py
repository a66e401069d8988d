r"""Triton kernels for GRASP's collocation loss, and their Python launchers.

Per plan ``n`` the loss is

.. math::

    L_n = \sum_t w_{nt} \Big( \tfrac{1}{D} \sum_d (p_{ntd} - x_{ntd})^2
        + \gamma \tfrac{1}{D} \sum_d (p_{ntd} - g_{nd})^2 \Big)

with predictions ``p`` (``pred``), virtual states ``x`` (``next_states``), goal ``g``,
per-step weights ``w`` and goal weight :math:`\gamma`. With upstream gradient
:math:`\bar L_n` and :math:`c_{nt} = 2 \bar L_n w_{nt} / D` the gradients are

.. math::

    \partial L / \partial p_{ntd} &= c_{nt} \big( (p_{ntd} - x_{ntd})
        + \gamma (p_{ntd} - g_{nd}) \big) \\
    \partial L / \partial x_{ntd} &= -c_{nt} (p_{ntd} - x_{ntd}) \\
    \partial L / \partial g_{nd} &= -\gamma \sum_t c_{nt} (p_{ntd} - g_{nd})

Kernel layout:

* Forward: one program per ``(n, block of t)``; it loops over blocks of ``d`` with a
  ``[BLOCK_T, BLOCK_D]`` tile, keeps elementwise squared-error sums in registers,
  reduces them to one weighted partial sum and writes it to ``partial[n, t_block]``.
  A torch ``.sum(-1)`` over the (usually one or few) ``t`` blocks finishes the loss.
  Every input element is read once; no atomics, so results are deterministic.
* Backward: one program per ``(n, block of d)``; it loops over ``t`` in
  ``[BLOCK_T, BLOCK_D]`` tiles, recomputes the differences from the inputs (no saved
  residuals), writes ``grad_pred`` and ``grad_next_states`` and accumulates
  ``grad_goal`` in registers, so it needs no atomics either.

Accumulation is in float32, or float64 when the inputs are float64; outputs are in the
input dtype. ``goal_weight`` is passed to the kernels as a float32 pair ``(hi, lo)``
with ``hi + lo == goal_weight`` to about 48 bits, because Triton passes Python floats
as float32 scalars, which would cost float64 inputs their precision.

This module imports only ``torch`` and ``triton``. Set ``TRITON_INTERPRET=1`` before
importing it to run the kernels on CPU tensors with Triton's interpreter.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["collocation_loss_forward", "collocation_loss_backward"]

# Block-size caps, read at call time (tests lower them to exercise multi-block loops).
_FWD_MAX_BLOCK_D = 256
_FWD_MAX_BLOCK_T = 64
_BWD_MAX_BLOCK_D = 128
_BWD_MAX_BLOCK_T = 64
# Target number of elements in one [BLOCK_T, BLOCK_D] tile.
_TILE_ELEMS = 2048

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@triton.jit
def _collocation_fwd_kernel(
    pred_ptr,
    next_ptr,
    goal_ptr,
    w_ptr,
    partial_ptr,
    T,
    D,
    gw_hi,
    gw_lo,
    s_pn,
    s_pt,
    s_pd,
    s_xn,
    s_xt,
    s_xd,
    s_gn,
    s_gd,
    s_wn,
    s_wt,
    s_on,
    ACC: tl.constexpr,
    HAS_WEIGHTS: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Writes ``partial[n, tb] = sum_{t in block tb} w[n,t] (sx[n,t] + gw sg[n,t]) / D``.

    ``sx[n,t] = sum_d (p - x)^2`` and ``sg[n,t] = sum_d (p - g)^2``. Grid
    ``(N, cdiv(T, BLOCK_T))``.
    """
    n = tl.program_id(0).to(tl.int64)
    tb = tl.program_id(1)
    t = tb * BLOCK_T + tl.arange(0, BLOCK_T)
    t_mask = t < T
    t64 = t.to(tl.int64)
    p_row = pred_ptr + n * s_pn + t64[:, None] * s_pt
    x_row = next_ptr + n * s_xn + t64[:, None] * s_xt
    g_row = goal_ptr + n * s_gn

    acc_x = tl.zeros([BLOCK_T, BLOCK_D], dtype=ACC)
    acc_g = tl.zeros([BLOCK_T, BLOCK_D], dtype=ACC)
    for d0 in range(0, D, BLOCK_D):
        d = d0 + tl.arange(0, BLOCK_D)
        d_mask = d < D
        mask = t_mask[:, None] & d_mask[None, :]
        p = tl.load(p_row + d[None, :] * s_pd, mask=mask, other=0.0).to(ACC)
        x = tl.load(x_row + d[None, :] * s_xd, mask=mask, other=0.0).to(ACC)
        g = tl.load(g_row + d * s_gd, mask=d_mask, other=0.0).to(ACC)
        dx = p - x
        dg = p - g[None, :]  # padded t rows are dropped below, padded d are 0 - 0
        acc_x += dx * dx
        acc_g += dg * dg

    sx = tl.sum(acc_x, axis=1)
    sg = tl.sum(acc_g, axis=1)
    per_step = (sx + (gw_hi * sg + gw_lo * sg)) / D
    if HAS_WEIGHTS:
        w = tl.load(w_ptr + n * s_wn + t64 * s_wt, mask=t_mask, other=0.0).to(ACC)
        per_step = w * per_step
    per_step = tl.where(t_mask, per_step, 0.0)
    tl.store(partial_ptr + n * s_on + tb, tl.sum(per_step, axis=0))


@triton.jit
def _collocation_bwd_kernel(
    grad_ptr,
    pred_ptr,
    next_ptr,
    goal_ptr,
    w_ptr,
    gp_ptr,
    gx_ptr,
    gg_ptr,
    T,
    D,
    gw_hi,
    gw_lo,
    s_gradn,
    s_pn,
    s_pt,
    s_pd,
    s_xn,
    s_xt,
    s_xd,
    s_gn,
    s_gd,
    s_wn,
    s_wt,
    s_gpn,
    s_gpt,
    s_gxn,
    s_gxt,
    s_ggn,
    ACC: tl.constexpr,
    HAS_WEIGHTS: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Writes the three gradients for one ``(n, block of d)``, looping over ``t``.

    The output tensors are contiguous in ``d``. Grid ``(N, cdiv(D, BLOCK_D))``.
    """
    n = tl.program_id(0).to(tl.int64)
    db = tl.program_id(1)
    d = db * BLOCK_D + tl.arange(0, BLOCK_D)
    d_mask = d < D

    g = tl.load(goal_ptr + n * s_gn + d * s_gd, mask=d_mask, other=0.0).to(ACC)
    upstream = tl.load(grad_ptr + n * s_gradn).to(ACC)
    scale = 2.0 * upstream / D

    p_base = pred_ptr + n * s_pn + d[None, :] * s_pd
    x_base = next_ptr + n * s_xn + d[None, :] * s_xd
    gp_base = gp_ptr + n * s_gpn + d[None, :]
    gx_base = gx_ptr + n * s_gxn + d[None, :]

    acc_g = tl.zeros([BLOCK_T, BLOCK_D], dtype=ACC)
    for t0 in range(0, T, BLOCK_T):
        t = t0 + tl.arange(0, BLOCK_T)
        t_mask = t < T
        t64 = t.to(tl.int64)
        mask = t_mask[:, None] & d_mask[None, :]
        p = tl.load(p_base + t64[:, None] * s_pt, mask=mask, other=0.0).to(ACC)
        x = tl.load(x_base + t64[:, None] * s_xt, mask=mask, other=0.0).to(ACC)
        if HAS_WEIGHTS:
            w = tl.load(w_ptr + n * s_wn + t64 * s_wt, mask=t_mask, other=0.0).to(ACC)
            c = (scale * w)[:, None]
        else:
            c = tl.where(t_mask, scale, 0.0)[:, None]
        dx = p - x
        dg = p - g[None, :]  # padded t rows have c == 0, padded d are 0 - 0
        gdg = gw_hi * dg + gw_lo * dg
        gp = c * (dx + gdg)
        gx = -(c * dx)
        tl.store(gp_base + t64[:, None] * s_gpt, gp.to(gp_ptr.dtype.element_ty), mask=mask)
        tl.store(gx_base + t64[:, None] * s_gxt, gx.to(gx_ptr.dtype.element_ty), mask=mask)
        acc_g += c * gdg

    gg = -tl.sum(acc_g, axis=0)
    tl.store(gg_ptr + n * s_ggn + d, gg.to(gg_ptr.dtype.element_ty), mask=d_mask)


def _acc_dtype(dtype: torch.dtype) -> tuple[torch.dtype, tl.dtype]:
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(f"collocation loss kernels need a floating dtype, got {dtype}")
    if dtype == torch.float64:
        return torch.float64, tl.float64
    return torch.float32, tl.float32


def _split_goal_weight(goal_weight: float) -> tuple[float, float]:
    """Splits ``goal_weight`` into float32-representable ``hi + lo``."""
    gw = float(goal_weight)
    hi = torch.tensor(gw, dtype=torch.float32).item()
    lo = torch.tensor(gw - hi, dtype=torch.float32).item()
    return float(hi), float(lo)


def _tile(extent_t: int, extent_d: int, max_t: int, max_d: int) -> tuple[int, int, int]:
    """Picks ``(BLOCK_T, BLOCK_D, num_warps)`` for a ``[T, D]`` problem."""
    block_d = min(triton.next_power_of_2(extent_d), max_d)
    block_t = min(triton.next_power_of_2(extent_t), max_t, max(1, _TILE_ELEMS // block_d))
    num_warps = max(1, min(8, (block_t * block_d) // 256))
    return block_t, block_d, num_warps


def _weight_args(weights: torch.Tensor | None, pred: torch.Tensor):
    if weights is None:
        return pred, 0, 0, False
    return weights, weights.stride(0), weights.stride(1), True


def collocation_loss_forward(
    pred: torch.Tensor,
    next_states: torch.Tensor,
    goal: torch.Tensor,
    goal_weight: float,
    weights: torch.Tensor | None,
) -> torch.Tensor:
    r"""Collocation loss per plan, in one pass over the inputs.

    .. math::

        L_n = \sum_t w_{nt} \Big( \tfrac{1}{D} \sum_d (p_{ntd} - x_{ntd})^2
            + \gamma \tfrac{1}{D} \sum_d (p_{ntd} - g_{nd})^2 \Big)

    Args:
        pred (Tensor): predictions ``p``, ``[N, T, D]``.
        next_states (Tensor): virtual states ``x``, ``[N, T, D]``.
        goal (Tensor): goal ``g``, ``[N, D]``; may be an expanded view (stride 0).
        goal_weight (float): :math:`\gamma`.
        weights (Tensor or None): per-step weights ``w``, ``[N, T]``; either stride may
            be 0. ``None`` means all ones.

    Returns:
        Tensor of shape ``[N]`` in the input dtype, accumulated in float32 (float64
        for float64 inputs).
    """
    N, T, D = pred.shape
    acc_torch, acc_tl = _acc_dtype(pred.dtype)
    if N == 0 or T == 0:
        return torch.zeros(N, dtype=pred.dtype, device=pred.device)
    if D == 0:
        return torch.full((N,), float("nan"), dtype=pred.dtype, device=pred.device)

    block_t, block_d, num_warps = _tile(T, D, _FWD_MAX_BLOCK_T, _FWD_MAX_BLOCK_D)
    n_tb = triton.cdiv(T, block_t)
    partial = torch.empty((N, n_tb), dtype=acc_torch, device=pred.device)
    w, s_wn, s_wt, has_w = _weight_args(weights, pred)
    gw_hi, gw_lo = _split_goal_weight(goal_weight)
    _collocation_fwd_kernel[(N, n_tb)](
        pred,
        next_states,
        goal,
        w,
        partial,
        T,
        D,
        gw_hi,
        gw_lo,
        pred.stride(0),
        pred.stride(1),
        pred.stride(2),
        next_states.stride(0),
        next_states.stride(1),
        next_states.stride(2),
        goal.stride(0),
        goal.stride(1),
        s_wn,
        s_wt,
        partial.stride(0),
        ACC=acc_tl,
        HAS_WEIGHTS=has_w,
        BLOCK_T=block_t,
        BLOCK_D=block_d,
        num_warps=num_warps,
    )
    loss = partial.view(N) if n_tb == 1 else partial.sum(-1)
    return loss.to(pred.dtype)


def collocation_loss_backward(
    grad: torch.Tensor,
    pred: torch.Tensor,
    next_states: torch.Tensor,
    goal: torch.Tensor,
    goal_weight: float,
    weights: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Gradients of the collocation loss, recomputed from the inputs.

    With :math:`c_{nt} = 2 \bar L_n w_{nt} / D`:

    .. math::

        \partial L / \partial p_{ntd} &= c_{nt} \big( (p_{ntd} - x_{ntd})
            + \gamma (p_{ntd} - g_{nd}) \big) \\
        \partial L / \partial x_{ntd} &= -c_{nt} (p_{ntd} - x_{ntd}) \\
        \partial L / \partial g_{nd} &= -\gamma \sum_t c_{nt} (p_{ntd} - g_{nd})

    Args:
        grad (Tensor): upstream gradient :math:`\bar L`, ``[N]``; may have stride 0.
        pred (Tensor): predictions ``p``, ``[N, T, D]``.
        next_states (Tensor): virtual states ``x``, ``[N, T, D]``.
        goal (Tensor): goal ``g``, ``[N, D]``; may be an expanded view (stride 0).
        goal_weight (float): :math:`\gamma`.
        weights (Tensor or None): per-step weights ``w``, ``[N, T]``; either stride may
            be 0. ``None`` means all ones.

    Returns:
        ``(grad_pred, grad_next_states, grad_goal)``: new contiguous tensors of shapes
        ``[N, T, D]``, ``[N, T, D]`` and ``[N, D]`` in the input dtype. ``grad_goal``
        is per plan even when ``goal`` was expanded; reducing it is the caller's job.
    """
    N, T, D = pred.shape
    _, acc_tl = _acc_dtype(pred.dtype)
    grad_pred = torch.empty((N, T, D), dtype=pred.dtype, device=pred.device)
    grad_next = torch.empty((N, T, D), dtype=pred.dtype, device=pred.device)
    grad_goal = torch.empty((N, D), dtype=pred.dtype, device=pred.device)
    if N == 0 or D == 0:
        return grad_pred, grad_next, grad_goal
    if T == 0:
        return grad_pred, grad_next, grad_goal.zero_()

    block_t, block_d, num_warps = _tile(T, D, _BWD_MAX_BLOCK_T, _BWD_MAX_BLOCK_D)
    w, s_wn, s_wt, has_w = _weight_args(weights, pred)
    gw_hi, gw_lo = _split_goal_weight(goal_weight)
    _collocation_bwd_kernel[(N, triton.cdiv(D, block_d))](
        grad,
        pred,
        next_states,
        goal,
        w,
        grad_pred,
        grad_next,
        grad_goal,
        T,
        D,
        gw_hi,
        gw_lo,
        grad.stride(0),
        pred.stride(0),
        pred.stride(1),
        pred.stride(2),
        next_states.stride(0),
        next_states.stride(1),
        next_states.stride(2),
        goal.stride(0),
        goal.stride(1),
        s_wn,
        s_wt,
        grad_pred.stride(0),
        grad_pred.stride(1),
        grad_next.stride(0),
        grad_next.stride(1),
        grad_goal.stride(0),
        ACC=acc_tl,
        HAS_WEIGHTS=has_w,
        BLOCK_T=block_t,
        BLOCK_D=block_d,
        num_warps=num_warps,
    )
    return grad_pred, grad_next, grad_goal
