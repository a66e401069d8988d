"""GRASP's iteration compiled: :func:`~torchrl_grasp.planners.grasp.collocation_forward` through ``torch.compile``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class _Forward(nn.Module):
    """Holds the world model, so that ``torch.func.functional_call`` can swap its parameters; its
    forward is the function it is given."""

    def __init__(self, model: nn.Module, forward: Callable):
        super().__init__()
        self.model, self.function = model, forward

    def forward(self, *args):
        return self.function(*args)


class CompiledForward:
    """``forward`` (the iteration's model call and loss) compiled once per shape, the world model's
    parameters passed in detached.

    Eager, ``torch.autograd.grad`` w.r.t. the plan skips the model's weight gradients; a compiled
    backward computes a gradient for every input that requires one, so with the parameters of a
    trainable model as they are it would compute the weights' gradients too (60 matrix products
    per 10 iterations of a 3-layer MLP instead of eager's 30). Detached, only the plan's are computed. The model
    itself is not touched. ``fullgraph=True`` raises where the model cannot be compiled whole
    (the tests ask it of the package's models), instead of compiling the pieces between breaks.

    A compiled backward may run once per forward (torch donates its buffers), so the iteration
    uses it only where it differentiates the loss once: planning to a goal. By reward or with a
    penalty, whose step cost is differentiated a second time, the iteration runs eager.

    Every instance compiles the same code, and torch keeps at most ``recompile_limit`` (8)
    compilations of one code: past 8 (model, shape) pairs in a process, further ones run eager,
    with torch's warning.

    Examples:
        >>> model = nn.Linear(2, 2)  # parameters that require grad, as a trainable model's do
        >>> compiled = CompiledForward(model, lambda x: model(x).square().sum())
        >>> x = torch.ones(3, 2, requires_grad=True)
        >>> gradient, = torch.autograd.grad(compiled(x), [x])
        >>> torch.allclose(gradient, torch.autograd.grad(model(x).square().sum(), [x])[0])
        True
        >>> torch.autograd.grad(compiled(x), [model.weight], allow_unused=True)  # no path to the weights
        (None,)
    """

    def __init__(self, model: nn.Module, forward: Callable, fullgraph: bool = False):
        self.holder = _Forward(model, forward)
        self.compiled = torch.compile(self._functional, dynamic=False, fullgraph=fullgraph)

    def _functional(self, parameters: dict, *args):
        return torch.func.functional_call(self.holder, parameters, args)

    def __call__(self, *args):
        parameters = {name: value.detach() for name, value in self.holder.named_parameters()}
        return self.compiled(parameters, *args)
