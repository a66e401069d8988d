"""Tests of the Triton kernels in :mod:`torchrl_grasp.ops._triton` against the reference.

On a machine without CUDA, ``tests/conftest.py`` sets ``TRITON_INTERPRET=1`` so the
kernels run on CPU tensors in Triton's interpreter; shapes stay small because the
interpreter is slow.
"""

import pytest
import torch

pytest.importorskip(
    "triton", reason="triton is not installed; the Triton backend of the collocation loss is optional"
)

from torchrl_grasp.ops import _triton  # noqa: E402
from torchrl_grasp.ops.reference import collocation_loss_reference  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

# (N, T, D): D=1, D not a power of two, D above both kernels' block caps (256 and 128),
# T=1, N=1, N=3, T above the T-block cap (64).
SHAPES = [(1, 1, 1), (3, 4, 5), (2, 3, 37), (1, 2, 300), (3, 70, 1)]

# (weights layout, goal layout, goal_weight)
#   weights: "none" | "full" [N, T] | "expand_t" [T] expanded to [N, T] (stride 0 on dim 0)
#            | "expand_n" [N, 1] expanded to [N, T] (stride 0 on dim 1)
#   goal:    "full" [N, D] | "expand" [D] expanded to [N, D] (stride 0 on dim 0)
LAYOUTS = [
    ("none", "full", 1.5),
    ("full", "expand", 0.0),
    ("expand_t", "expand", 1.5),
    ("expand_n", "full", 0.1),  # 0.1 is not a float32: checks goal_weight keeps float64 precision
]

TOL = {
    torch.float32: {"rtol": 1e-5, "atol": 1e-6},
    torch.float64: {"rtol": 1e-12, "atol": 1e-13},
}


def _inputs(shape, dtype, weights_layout, goal_layout, seed=0):
    n, t, d = shape
    gen = torch.Generator().manual_seed(seed)

    def randn(*size):
        return torch.randn(*size, generator=gen, dtype=torch.float64).to(DEVICE, dtype)

    def rand(*size):
        return torch.rand(*size, generator=gen, dtype=torch.float64).to(DEVICE, dtype)

    pred = randn(n, t, d)
    next_states = randn(n, t, d)
    goal = randn(n, d) if goal_layout == "full" else randn(d).expand(n, d)
    if weights_layout == "none":
        weights = None
    elif weights_layout == "full":
        weights = rand(n, t)
    elif weights_layout == "expand_t":
        weights = rand(t).expand(n, t)
    elif weights_layout == "expand_n":
        weights = rand(n, 1).expand(n, t)
    else:
        raise ValueError(weights_layout)
    return pred, next_states, goal, weights


def _reference_grads(grad, pred, next_states, goal, goal_weight, weights):
    leaves = [x.detach().clone().requires_grad_(True) for x in (pred, next_states, goal)]
    loss = collocation_loss_reference(*leaves, goal_weight=goal_weight, weights=weights)
    return loss, torch.autograd.grad(loss, leaves, grad)


def _assert_layouts(goal, weights, goal_layout, weights_layout):
    # Make sure the stride-0 cases really reach the kernels as stride-0 views (torch
    # gives a size-1 dim a nonzero stride even when expanded, and there it is moot).
    if goal_layout == "expand" and goal.shape[0] > 1:
        assert goal.stride(0) == 0
    if weights_layout == "expand_t" and weights.shape[0] > 1:
        assert weights.stride(0) == 0
    if weights_layout == "expand_n" and weights.shape[1] > 1:
        assert weights.stride(1) == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda x: "-".join(map(str, x)))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward_matches_reference(shape, layout, dtype):
    weights_layout, goal_layout, goal_weight = layout
    pred, next_states, goal, weights = _inputs(shape, dtype, weights_layout, goal_layout)
    _assert_layouts(goal, weights, goal_layout, weights_layout)

    out = _triton.collocation_loss_forward(pred, next_states, goal, goal_weight, weights)
    expected = collocation_loss_reference(pred, next_states, goal, goal_weight, weights)

    assert out.shape == (shape[0],)
    assert out.dtype == dtype
    torch.testing.assert_close(out, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda x: "-".join(map(str, x)))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_backward_matches_autograd(shape, layout, dtype):
    weights_layout, goal_layout, goal_weight = layout
    pred, next_states, goal, weights = _inputs(shape, dtype, weights_layout, goal_layout)
    grad = torch.randn(shape[0], generator=torch.Generator().manual_seed(1), dtype=dtype).to(DEVICE)

    grads = _triton.collocation_loss_backward(grad, pred, next_states, goal, goal_weight, weights)
    _, expected = _reference_grads(grad, pred, next_states, goal, goal_weight, weights)

    n, t, d = shape
    for name, got, want, size in zip(
        ("pred", "next_states", "goal"), grads, expected, [(n, t, d), (n, t, d), (n, d)]
    ):
        assert got.shape == size, name
        assert got.dtype == dtype, name
        torch.testing.assert_close(got, want, **TOL[dtype], msg=lambda m, name=name: f"{name}: {m}")


def test_backward_accepts_stride0_upstream_grad():
    # ``loss.sum().backward()`` hands the op an expanded scalar as the upstream gradient.
    pred, next_states, goal, weights = _inputs((3, 4, 5), torch.float32, "full", "full")
    grad = torch.tensor(-0.7, device=DEVICE).expand(3)
    assert grad.stride(0) == 0

    grads = _triton.collocation_loss_backward(grad, pred, next_states, goal, 1.5, weights)
    _, expected = _reference_grads(grad.contiguous(), pred, next_states, goal, 1.5, weights)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, **TOL[torch.float32])


def test_multi_block_loops(monkeypatch):
    # Tiny blocks force several d-blocks in the forward, several t-tiles in the backward
    # and ragged last blocks in both dims.
    monkeypatch.setattr(_triton, "_FWD_MAX_BLOCK_D", 4)
    monkeypatch.setattr(_triton, "_FWD_MAX_BLOCK_T", 2)
    monkeypatch.setattr(_triton, "_BWD_MAX_BLOCK_D", 2)
    monkeypatch.setattr(_triton, "_BWD_MAX_BLOCK_T", 4)
    pred, next_states, goal, weights = _inputs((2, 7, 9), torch.float64, "full", "expand")
    grad = torch.randn(2, generator=torch.Generator().manual_seed(2), dtype=torch.float64).to(DEVICE)

    out = _triton.collocation_loss_forward(pred, next_states, goal, 1.5, weights)
    grads = _triton.collocation_loss_backward(grad, pred, next_states, goal, 1.5, weights)
    expected_out, expected_grads = _reference_grads(grad, pred, next_states, goal, 1.5, weights)

    torch.testing.assert_close(out, expected_out.detach(), **TOL[torch.float64])
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, **TOL[torch.float64])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("shape", [(3, 4, 5), (1, 2, 300)], ids=lambda s: "x".join(map(str, s)))
def test_low_precision_close_to_float32_reference(shape, dtype):
    pred, next_states, goal, weights = _inputs(shape, dtype, "expand_t", "full")
    grad = torch.randn(shape[0], generator=torch.Generator().manual_seed(3)).to(DEVICE, dtype)

    out = _triton.collocation_loss_forward(pred, next_states, goal, 1.5, weights)
    grads = _triton.collocation_loss_backward(grad, pred, next_states, goal, 1.5, weights)

    # The reference runs in float32 on the same (already rounded) inputs, so the only
    # differences left are the rounding of the outputs.
    grad32, pred32, next32, goal32, weights32 = (
        x.float() for x in (grad, pred, next_states, goal, weights)
    )
    expected_out, expected_grads = _reference_grads(grad32, pred32, next32, goal32, 1.5, weights32)
    tol = {"rtol": 2e-2, "atol": 2e-3}
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), expected_out.detach(), **tol)
    for got, want in zip(grads, expected_grads):
        assert got.dtype == dtype
        torch.testing.assert_close(got.float(), want, **tol)


def test_deterministic():
    pred, next_states, goal, weights = _inputs((2, 70, 37), torch.float32, "full", "full")
    grad = torch.randn(2, generator=torch.Generator().manual_seed(4)).to(DEVICE)
    first = [_triton.collocation_loss_forward(pred, next_states, goal, 1.5, weights)]
    first += _triton.collocation_loss_backward(grad, pred, next_states, goal, 1.5, weights)
    second = [_triton.collocation_loss_forward(pred, next_states, goal, 1.5, weights)]
    second += _triton.collocation_loss_backward(grad, pred, next_states, goal, 1.5, weights)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_rejects_integer_dtype():
    x = torch.zeros(1, 2, 3, dtype=torch.int32, device=DEVICE)
    with pytest.raises(TypeError, match="floating dtype"):
        _triton.collocation_loss_forward(x, x, x[:, 0], 1.0, None)
