"""One optimiser step on a plan's variables: the one place the package hands gradients to an optimiser."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def plan_variable(value: Tensor) -> Tensor:
    """A fresh contiguous leaf holding ``value``, for an optimiser to own.

    Examples:
        >>> view = torch.arange(6.0).reshape(2, 3).t()  # a transposed view
        >>> variable = plan_variable(view)
        >>> variable.is_contiguous(), variable.requires_grad, torch.equal(variable, view)
        (True, True, True)
    """
    return value.detach().clone(memory_format=torch.contiguous_format).requires_grad_()


def descend(
    optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
    loss: Tensor,
    variables: Sequence[Tensor],
    added: Sequence[Tensor | None] | None = None,
) -> None:
    """Sets each of ``variables`` (contiguous leaves, see :func:`plan_variable`) its gradient of
    ``loss.sum()``, contiguous, plus its tensor in ``added`` (if any), and takes one ``optimizer`` step
    (one step of each, given a sequence of optimisers over disjoint variables).

    ``torch.autograd.grad`` returns each gradient with the strides the model's backward gave
    it: a slice of the gradient of ``torch.cat([state, action], -1)`` (strides ``(120, 6, 1)``
    for an action ``[1, 20, 2]`` beside a 4-D state), or an expanded, zero-stride tensor when
    the model sums the action. Fused Adam on CPU (torch 2.13) reads a gradient as if it were
    laid out like its parameter, so it applies a wrong update to the first and NaN to the
    second, silently. Every optimiser step on plan variables goes through :func:`apply_gradients`
    (from here, or with gradients computed another way), so none does.
    The model's parameters are not touched.

    Examples:
        >>> action = plan_variable(torch.zeros(1, 4, 2))
        >>> optimizer = torch.optim.Adam([action], lr=0.1, fused=True)
        >>> loss = (0.1 * action.sum(-1, keepdim=True) - 1.0).square().sum()  # a zero-stride gradient
        >>> descend(optimizer, loss, [action])
        >>> action  # Adam's first step: lr times the sign of the gradient, everywhere
        tensor([[[0.1000, 0.1000],
                 [0.1000, 0.1000],
                 [0.1000, 0.1000],
                 [0.1000, 0.1000]]], requires_grad=True)
    """
    gradients = gradients_of(loss, variables)
    added = added or [None] * len(variables)
    apply_gradients(
        optimizer, variables, [gradient if extra is None else gradient + extra for gradient, extra in zip(gradients, added)]
    )


def gradients_of(loss: Tensor, variables: Sequence[Tensor]) -> list[Tensor]:
    """The gradients of ``loss.sum()`` with respect to ``variables``, with the strides the model's
    backward gave them; a ``ValueError`` that names the fix when the loss does not depend on them.

    Examples:
        >>> action = plan_variable(torch.ones(2))
        >>> gradients_of((3 * action).square(), [action])
        [tensor([18., 18.])]
    """
    try:
        return list(torch.autograd.grad(loss.sum(), list(variables)))
    except RuntimeError as error:
        if "not have been used in the graph" not in str(error) and "does not require grad" not in str(error):
            raise
        raise ValueError(
            "The plan's loss has no gradient with respect to the actions: the world model is not "
            "differentiable in its action input (a torch.no_grad() or detach() inside it, or inference-mode "
            "tensors). Gradient planners need that gradient; make the model differentiable, or plan with "
            "GoalCEMPlanner, which needs none."
        ) from error


def apply_gradients(
    optimizer: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
    variables: Sequence[Tensor],
    gradients: Sequence[Tensor],
) -> None:
    """Sets each of ``variables`` (contiguous leaves) its gradient, made contiguous, and takes one
    ``optimizer`` step: :func:`descend` for gradients computed another way (the parallel sync's adjoint).

    Examples:
        >>> action = plan_variable(torch.zeros(2))
        >>> apply_gradients(torch.optim.SGD([action], lr=0.5), [action], [torch.tensor([1.0, -2.0])])
        >>> action
        tensor([-0.5000,  1.0000], requires_grad=True)
    """
    for variable, gradient in zip(variables, gradients):
        if not variable.is_contiguous():
            raise ValueError(
                f"descend needs contiguous variables (see plan_variable), got strides {variable.stride()}."
            )
        variable.grad = gradient.contiguous()
    for each in [optimizer] if isinstance(optimizer, torch.optim.Optimizer) else optimizer:
        each.step()
