"""The fused collocation loss against its pure-PyTorch reference."""

import pytest
import torch
from tensordict import TensorDict

from torchrl_grasp.ops import collocation_loss, collocation_loss_reference
from torchrl_grasp.ops._custom_op import collocation_loss_backward_op, collocation_loss_op

TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}


def make_inputs(batch, steps, dim, goal_batch=None, weights_shape=None, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    goal_batch = batch if goal_batch is None else goal_batch

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype).requires_grad_()

    weights = None
    if weights_shape is not None:
        weights = torch.rand(*weights_shape, generator=gen, dtype=dtype).requires_grad_()
    return rand(*batch, steps, dim), rand(*batch, steps, dim), rand(*goal_batch, dim), weights


def inputs_requiring_grad(pred, next_states, goal, weights):
    return [t for t in (pred, next_states, goal, weights) if t is not None]


def assert_matches_reference(fn, pred, next_states, goal, goal_weight, weights, seed=1):
    """Loss and every input gradient under a random upstream gradient equal the reference's."""
    loss = fn(pred, next_states, goal, goal_weight, weights)
    expected = collocation_loss_reference(pred, next_states, goal, goal_weight, weights)
    tol = TOLERANCE[pred.dtype]
    torch.testing.assert_close(loss, expected, **tol)
    upstream = torch.randn(loss.shape, generator=torch.Generator().manual_seed(seed), dtype=loss.dtype)
    leaves = inputs_requiring_grad(pred, next_states, goal, weights)
    grads = torch.autograd.grad(loss, leaves, upstream)
    expected_grads = torch.autograd.grad(expected, leaves, upstream)
    for name, got, want in zip(["pred", "next_states", "goal", "weights"], grads, expected_grads):
        torch.testing.assert_close(got, want, **tol, msg=lambda m, name=name: f"grad of {name}: {m}")


CASES = [
    # batch, steps, dim, goal_batch, weights_shape, goal_weight
    ((), 1, 1, None, None, 1.0),
    ((3,), 5, 7, None, None, 1.0),
    ((3,), 5, 7, (), (5,), 0.5),
    ((2, 3), 4, 6, (2, 1), (2, 3, 4), 2.5),
    ((4,), 16, 33, None, (4, 16), 0.0),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batch,steps,dim,goal_batch,weights_shape,goal_weight", CASES)
def test_matches_reference_eager(batch, steps, dim, goal_batch, weights_shape, goal_weight, dtype):
    inputs = make_inputs(batch, steps, dim, goal_batch, weights_shape, dtype)
    pred, next_states, goal, weights = inputs
    assert_matches_reference(collocation_loss, pred, next_states, goal, goal_weight, weights)


@pytest.mark.parametrize("batch,steps,dim,goal_batch,weights_shape,goal_weight", [CASES[2], CASES[3]])
def test_matches_reference_compiled(batch, steps, dim, goal_batch, weights_shape, goal_weight):
    compiled = torch.compile(collocation_loss, fullgraph=True, backend="aot_eager")
    pred, next_states, goal, weights = make_inputs(batch, steps, dim, goal_batch, weights_shape, torch.float32)
    assert_matches_reference(compiled, pred, next_states, goal, goal_weight, weights)


def test_matches_reference_compiled_inductor():
    compiled = torch.compile(collocation_loss, fullgraph=True)
    pred, next_states, goal, weights = make_inputs((3,), 8, 5, (), (8,), torch.float32)
    assert_matches_reference(compiled, pred, next_states, goal, 1.5, weights)


@pytest.mark.parametrize("argnum", [0, 1, 2, 3])
def test_gradcheck_float64(argnum):
    inputs = list(make_inputs((2,), 3, 4, weights_shape=(2, 3)))
    for i, tensor in enumerate(inputs):
        tensor.requires_grad_(i == argnum)
    assert torch.autograd.gradcheck(lambda p, x, g, w: collocation_loss(p, x, g, 0.7, w), inputs)


def canonical_args(requires_grad):
    pred, next_states, goal, weights = make_inputs((3,), 4, 5, weights_shape=(3, 4), dtype=torch.float32)
    args = [t.detach().requires_grad_(requires_grad) for t in (pred, next_states, goal)]
    return args, weights.detach()


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck_forward(requires_grad):
    (pred, next_states, goal), weights = canonical_args(requires_grad)
    torch.library.opcheck(collocation_loss_op, (pred, next_states, goal, 0.5, weights))
    torch.library.opcheck(collocation_loss_op, (pred, next_states, goal[:1].expand(3, 5), 0.0, weights))


def test_opcheck_backward():
    (pred, next_states, goal), weights = canonical_args(False)
    grad = torch.randn(3)
    torch.library.opcheck(collocation_loss_backward_op, (grad, pred, next_states, goal, 0.5, weights))


def test_bfloat16_close_to_float32_reference():
    pred, next_states, goal, _ = make_inputs((4,), 8, 16, dtype=torch.float32)
    low = [t.detach().bfloat16().requires_grad_() for t in (pred, next_states, goal)]
    loss = collocation_loss(*low, 1.0)
    assert loss.dtype == torch.bfloat16
    exact = [t.detach().float().requires_grad_() for t in low]
    expected = collocation_loss_reference(*exact, 1.0)
    torch.testing.assert_close(loss.float(), expected, rtol=2e-2, atol=2e-2)
    upstream = torch.randn(4)
    grads = torch.autograd.grad(loss, low, upstream.bfloat16())
    expected_grads = torch.autograd.grad(expected, exact, upstream)
    for got, want in zip(grads, expected_grads):
        assert got.dtype == torch.bfloat16
        torch.testing.assert_close(got.float(), want, rtol=2e-2, atol=2e-2)


def nested_states(seed, batch=(2, 5)):
    gen = torch.Generator().manual_seed(seed)
    return TensorDict(
        {
            "state": torch.randn(*batch, 4, generator=gen, dtype=torch.float64),
            "belief": torch.randn(*batch, 3, 2, generator=gen, dtype=torch.float64),
            ("agent", "position"): torch.randn(*batch, 2, generator=gen, dtype=torch.float64),
        },
        batch_size=batch,
    )


def test_tensordict_equals_weighted_sum_of_leaf_calls():
    pred, next_states = nested_states(0), nested_states(1)
    pred.apply_(lambda t: t.requires_grad_())
    goal = nested_states(2, batch=(2,)).exclude("belief")
    weights = torch.rand(5, dtype=torch.float64)
    key_weights = {"belief": 0.25, ("agent", "position"): 3.0}

    loss = collocation_loss(pred, next_states, goal, 1.5, weights, key_weights=key_weights)

    expected = (
        collocation_loss(pred["state"], next_states["state"], goal["state"], 1.5, weights)
        + 0.25 * collocation_loss(pred["belief"].flatten(-2), next_states["belief"].flatten(-2), None, 1.5, weights)
        + 3.0 * collocation_loss(
            pred["agent", "position"], next_states["agent", "position"], goal["agent", "position"], 1.5, weights
        )
    )
    torch.testing.assert_close(loss, expected)
    leaves = [pred["state"], pred["belief"], pred["agent", "position"]]
    upstream = torch.randn(2, dtype=torch.float64)
    for got, want in zip(torch.autograd.grad(loss, leaves, upstream), torch.autograd.grad(expected, leaves, upstream)):
        torch.testing.assert_close(got, want)


def test_tensordict_goal_without_key_has_no_goal_term():
    pred, next_states = nested_states(0), nested_states(1)
    far_goal = nested_states(2, batch=(2,)).select("state").apply(lambda t: t + 100.0)
    with_goal = collocation_loss(pred, next_states, far_goal)
    without_goal = collocation_loss(pred, next_states, None)
    only_state_goal = collocation_loss(pred["state"], next_states["state"], far_goal["state"]) - collocation_loss(
        pred["state"], next_states["state"], None
    )
    torch.testing.assert_close(with_goal - without_goal, only_state_goal)


def valid():
    return [torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.randn(2, 4)]


BAD_TENSOR_INPUTS = {
    "mismatched T": (lambda p, x, g: (p, x[:, :2], g), "next_states"),
    "mismatched D": (lambda p, x, g: (p, x[..., :3], g), "next_states"),
    "goal D": (lambda p, x, g: (p, x, g[:, :3]), "goal"),
    "goal batch": (lambda p, x, g: (p, x, torch.randn(3, 4)), "goal"),
    "integer pred": (lambda p, x, g: (p.long(), x, g), "pred"),
    "integer goal": (lambda p, x, g: (p, x, g.long()), "goal"),
    "mixed dtypes": (lambda p, x, g: (p, x.double(), g), "next_states"),
    "other device": (lambda p, x, g: (p, x, g.to("meta")), "goal"),
    "pred without time": (lambda p, x, g: (p[0, 0], x[0, 0], g[0]), "pred"),
}


@pytest.mark.parametrize("case", BAD_TENSOR_INPUTS)
def test_bad_tensor_input_raises(case):
    mutate, name = BAD_TENSOR_INPUTS[case]
    with pytest.raises(ValueError, match=name) as info:
        collocation_loss(*mutate(*valid()))
    assert "shape=" in str(info.value)


def test_bad_weights_and_goal_weight_raise():
    with pytest.raises(ValueError, match="weights"):
        collocation_loss(*valid(), weights=torch.ones(4))
    with pytest.raises(ValueError, match="goal_weight"):
        collocation_loss(*valid(), goal_weight=-1.0)
    with pytest.raises(ValueError, match="goal_weight"):
        collocation_loss(*valid(), goal_weight=float("nan"))


BAD_TENSORDICT_INPUTS = {
    "missing key in next_states": (lambda p, x, g: (p, x.exclude("belief"), g), "missing from next_states"),
    "extra goal key": (lambda p, x, g: (p, x, g.set("velocity", torch.zeros(2, 4))), "goal holds keys"),
    "next_states batch": (lambda p, x, g: (p, x[:, :4], g), "batch_size"),
    "tensor next_states": (lambda p, x, g: (p, x["state"], g), "next_states must be one too"),
    "goal feature shape": (lambda p, x, g: (p, x, g.set("state", torch.zeros(2, 3))), "feature shape"),
    "no time dim": (lambda p, x, g: (p[0, 0], x[0, 0], g[0]), "time is the last batch dim"),
}


@pytest.mark.parametrize("case", BAD_TENSORDICT_INPUTS)
def test_bad_tensordict_input_raises(case):
    mutate, message = BAD_TENSORDICT_INPUTS[case]
    pred, next_states = nested_states(0).float(), nested_states(1).float()
    goal = nested_states(2, batch=(2,)).float().select("state")
    with pytest.raises(ValueError, match=message):
        collocation_loss(*mutate(pred, next_states, goal))


def test_unknown_key_weight_raises():
    pred = nested_states(0)
    with pytest.raises(ValueError, match="key_weights"):
        collocation_loss(pred, pred, None, key_weights={"nope": 1.0})
