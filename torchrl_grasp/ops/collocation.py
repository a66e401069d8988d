"""Public entry point of the fused stop-gradient collocation loss."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import torch
from tensordict import NestedKey, TensorDictBase, unravel_key
from torch import Tensor

from torchrl_grasp.ops._custom_op import collocation_loss_op


def _describe(name: str, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> str:
    return f"{name} (shape={tuple(shape)}, dtype={dtype}, device={device})"


def _describe_tensor(name: str, tensor: Tensor) -> str:
    return _describe(name, tensor.shape, tensor.dtype, tensor.device)


def _check_tensor_inputs(
    pred: Tensor, next_states: Tensor, goal: Tensor, goal_weight: float, weights: Tensor | None
) -> None:
    named = {"pred": pred, "next_states": next_states, "goal": goal, "weights": weights}
    for name, value in named.items():
        if not isinstance(value, Tensor) and not (name == "weights" and value is None):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}.")
    # A planner calls this hundreds of times with the same layout: the checks below are a
    # pure function of (shape, dtype, device) per input, so they run once per layout.
    check = _check_layout if torch.compiler.is_compiling() else _check_layout_cached
    check(
        tuple((name, t.shape, t.dtype, t.device) for name, t in named.items() if t is not None),
        goal_weight,
    )


def _check_layout(layout: tuple, goal_weight: float) -> None:
    named = {name: (shape, dtype, device) for name, shape, dtype, device in layout}
    pred_shape, pred_dtype, pred_device = named["pred"]
    for name, (shape, dtype, device) in named.items():
        if not dtype.is_floating_point:
            raise ValueError(f"{_describe(name, shape, dtype, device)} must have a floating dtype.")
        if device != pred_device:
            raise ValueError(
                f"{_describe(name, shape, dtype, device)} is on another device than "
                f"{_describe('pred', *named['pred'])}."
            )
    for name in ("next_states", "goal"):
        if named[name][1] != pred_dtype:
            raise ValueError(f"{_describe(name, *named[name])} must have pred's dtype {pred_dtype}.")
    if len(pred_shape) < 2:
        raise ValueError(f"{_describe('pred', *named['pred'])} must be [*B, T, D].")
    if named["next_states"][0] != pred_shape:
        raise ValueError(
            f"{_describe('next_states', *named['next_states'])} must have the shape of "
            f"{_describe('pred', *named['pred'])}: [*B, T, D] with the same B, T and D."
        )
    batch, dim = pred_shape[:-2], pred_shape[-1]
    goal_shape = named["goal"][0]
    if len(goal_shape) < 1 or goal_shape[-1] != dim or not _broadcasts_to(goal_shape[:-1], batch):
        raise ValueError(
            f"{_describe('goal', *named['goal'])} must be [*B, D] with D={dim} and batch dims that "
            f"broadcast to pred's B={tuple(batch)}."
        )
    if "weights" in named and not _broadcasts_to(named["weights"][0], pred_shape[:-1]):
        raise ValueError(
            f"{_describe('weights', *named['weights'])} must be [T] or [*B, T], broadcastable to "
            f"{tuple(pred_shape[:-1])}."
        )
    # A chained comparison rather than math.isfinite, so that torch.compile can trace it; NaN fails it.
    if not (isinstance(goal_weight, (int, float)) and 0.0 <= goal_weight < math.inf):
        raise ValueError(f"goal_weight must be a finite number >= 0, got {goal_weight!r}.")


_check_layout_cached = functools.lru_cache(maxsize=1024)(_check_layout)


def _broadcasts_to(shape: torch.Size, target: torch.Size) -> bool:
    try:
        return torch.broadcast_shapes(shape, target) == target
    except RuntimeError:
        return False


def _tensor_collocation_loss(
    pred: Tensor, next_states: Tensor, goal: Tensor, goal_weight: float, weights: Tensor | None
) -> Tensor:
    _check_tensor_inputs(pred, next_states, goal, goal_weight, weights)
    *batch, steps, dim = pred.shape
    num_plans = math.prod(batch)
    if weights is None:
        weights = pred.new_ones(()).expand(num_plans, steps)
    else:
        weights = weights.to(pred.dtype).expand(*batch, steps).reshape(num_plans, steps)
    loss = collocation_loss_op(
        pred.reshape(num_plans, steps, dim),
        next_states.reshape(num_plans, steps, dim),
        goal.expand(*batch, dim).reshape(num_plans, dim),
        float(goal_weight),
        weights,
    )
    return loss.reshape(batch)


def _leaf_keys(td: TensorDictBase) -> list[NestedKey]:
    return [unravel_key(key) for key in td.keys(include_nested=True, leaves_only=True)]


def _check_tensordict_inputs(
    pred: TensorDictBase,
    next_states: TensorDictBase,
    goal: TensorDictBase | None,
    key_weights: Mapping[NestedKey, float],
) -> None:
    for name, value in (("next_states", next_states), ("goal", goal)):
        if value is not None and not isinstance(value, TensorDictBase):
            raise ValueError(
                f"pred is a TensorDict, so {name} must be one too, got {type(value).__name__}."
            )
    if pred.batch_dims < 1:
        raise ValueError(
            f"pred must have batch_size [*B, T] (time is the last batch dim), got {pred.batch_size}."
        )
    if next_states.batch_size != pred.batch_size:
        raise ValueError(
            f"next_states has batch_size {next_states.batch_size}, pred has {pred.batch_size}."
        )
    pred_keys = set(_leaf_keys(pred))
    next_keys = set(_leaf_keys(next_states))
    if next_keys != pred_keys:
        raise ValueError(
            "next_states and pred must hold the same keys: missing from next_states "
            f"{sorted(map(str, pred_keys - next_keys))}, not in pred {sorted(map(str, next_keys - pred_keys))}."
        )
    if goal is not None:
        unknown = set(_leaf_keys(goal)) - pred_keys
        if unknown:
            raise ValueError(
                f"goal holds keys that pred lacks: {sorted(map(str, unknown))}. "
                f"The goal may give a subset of {sorted(map(str, pred_keys))}."
            )
    unknown = {unravel_key(key) for key in key_weights} - pred_keys
    if unknown:
        raise ValueError(f"key_weights names keys that pred lacks: {sorted(map(str, unknown))}.")
    negative = {str(key): weight for key, weight in key_weights.items() if not weight >= 0}
    if negative:
        raise ValueError(
            f"key_weights must be non-negative (a negative weight rewards breaking the dynamics), got {negative}."
        )


def _tensordict_collocation_loss(
    pred: TensorDictBase,
    next_states: TensorDictBase,
    goal: TensorDictBase | None,
    goal_weight: float,
    weights: Tensor | None,
    key_weights: Mapping[NestedKey, float] | None,
) -> Tensor:
    key_weights = {unravel_key(key): w for key, w in (key_weights or {}).items()}
    _check_tensordict_inputs(pred, next_states, goal, key_weights)
    goal_keys = set() if goal is None else set(_leaf_keys(goal))
    batch = pred.batch_size
    total = None
    for key in _leaf_keys(pred):
        leaf_pred = pred.get(key)
        features = leaf_pred.shape[len(batch):]
        leaf_goal = None
        if key in goal_keys:
            leaf_goal = goal.get(key)
            if leaf_goal.shape[leaf_goal.ndim - len(features):] != features:
                raise ValueError(
                    f"{_describe_tensor(f'goal[{key!r}]', leaf_goal)} must end with pred's feature "
                    f"shape {tuple(features)}."
                )
            leaf_goal = leaf_goal.reshape(*leaf_goal.shape[: leaf_goal.ndim - len(features)], -1)
        loss = collocation_loss(
            leaf_pred.reshape(*batch, -1),
            next_states.get(key).reshape(*batch, -1),
            leaf_goal,
            goal_weight if leaf_goal is not None else 0.0,
            weights,
        )
        loss = loss * key_weights.get(key, 1.0)
        total = loss if total is None else total + loss
    if total is None:
        raise ValueError("pred holds no tensors.")
    return total


def collocation_loss(
    pred: Tensor | TensorDictBase,
    next_states: Tensor | TensorDictBase,
    goal: Tensor | TensorDictBase | None,
    goal_weight: float = 1.0,
    weights: Tensor | None = None,
    *,
    key_weights: Mapping[NestedKey, float] | None = None,
) -> Tensor:
    r"""GRASP's stop-gradient collocation loss, fused: one value per plan.

    .. math::

        L = \sum_{t=0}^{T-1} w_t \Big( \operatorname{mean}_d (\hat s_{t+1} - s_{t+1})^2
            + \gamma \operatorname{mean}_d (\hat s_{t+1} - g)^2 \Big)

    ``pred`` holds the world model's predictions :math:`\hat s_{t+1} = F(\bar s_t, a_t)`
    from stop-gradient states, ``next_states`` the virtual states :math:`s_1 \dots s_T`
    (the last one is the goal). The gradients are analytic (see
    ``torchrl_grasp::collocation_loss_backward``): the forward makes one pass over the
    data, the backward recomputes the differences, and no graph of the elementwise
    math is kept. CUDA tensors use Triton kernels when Triton is importable; other
    devices use the PyTorch implementation. Half-precision inputs accumulate in float32.

    Args:
        pred (Tensor or TensorDictBase): ``[*B, T, D]``; a TensorDict has
            ``batch_size [*B, T]`` and leaves ``[*B, T, *F]`` (features are flattened).
        next_states (Tensor or TensorDictBase): same shape / structure as ``pred``.
        goal (Tensor, TensorDictBase or None): ``[*B, D]`` with batch dims that broadcast
            to ``B``, shared over ``T``. A TensorDict goal may hold a subset of ``pred``'s
            keys: keys it lacks have no goal term. ``None`` drops the goal term.
        goal_weight (float, optional): :math:`\gamma \ge 0`. Defaults to ``1.0``.
        weights (Tensor, optional): per-step weights :math:`w_t`, ``[T]`` or ``[*B, T]``.
            Defaults to all ones.

    Keyword Args:
        key_weights (Mapping[NestedKey, float], optional): TensorDict form only: each
            leaf's loss is multiplied by its weight (default 1) before they are summed.

    Returns:
        Tensor of shape ``[*B]``.

    Raises:
        ValueError: mismatched ``T`` or ``D``, a goal that does not broadcast, a
            non-floating dtype, tensors on different devices or of different dtypes,
            TensorDict structures that do not match.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl_grasp.ops import collocation_loss
        >>> pred = torch.zeros(2, 3, 4, requires_grad=True)
        >>> loss = collocation_loss(pred, torch.ones(2, 3, 4), torch.ones(4))
        >>> loss.detach()
        tensor([6., 6.])
        >>> loss.sum().backward()
        >>> pred.grad[0, 0]
        tensor([-1., -1., -1., -1.])
        >>> states = TensorDict(state=torch.zeros(2, 3, 4), belief=torch.zeros(2, 3, 8), batch_size=[2, 3])
        >>> goal = TensorDict(state=torch.ones(2, 4), batch_size=[2])
        >>> collocation_loss(states, states, goal, key_weights={"belief": 0.5})
        tensor([3., 3.])
    """
    if isinstance(pred, TensorDictBase):
        return _tensordict_collocation_loss(pred, next_states, goal, goal_weight, weights, key_weights)
    if key_weights is not None:
        raise ValueError("key_weights applies to TensorDict inputs only; pred is a Tensor.")
    if goal is None:
        if not isinstance(pred, Tensor):
            raise TypeError(f"pred must be a torch.Tensor or a TensorDict, got {type(pred).__name__}.")
        goal, goal_weight = pred.new_zeros(pred.shape[-1:]), 0.0
    return _tensor_collocation_loss(pred, next_states, goal, goal_weight, weights)
