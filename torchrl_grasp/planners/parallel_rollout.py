r"""The serial rollout and its gradient, computed over all time steps at once (DEER's Newton method).

A rollout :math:`s_{t+1} = F(s_t, a_t)` is the root of the residual
:math:`r_t(s) = s_{t+1} - F(s_t, a_t)` over the whole trajectory. Newton's method on it
(Lim et al., "Parallelizing non-linear sequential models over the sequence length", ICLR 2024)
linearises every step at the current guess, :math:`s_{t+1} \approx F(\bar s_t, a_t) + J_t (s_t - \bar s_t)`
with :math:`J_t = \partial F / \partial s` at :math:`(\bar s_t, a_t)`, and solves the linear
recurrence with a parallel scan (:func:`~torchrl_grasp.planners.scan.affine_scan`): each iteration
is one batched model call over every step (with its state Jacobians) plus a scan of
:math:`\log_2 T` rounds. After ``k`` iterations the first ``k`` steps are exact, so ``T`` iterations
reproduce the serial rollout anywhere; from a guess near the trajectory (GRASP's virtual states,
or the previous step's rollout) a few do. The gradient of a loss on the rollout with respect to
the actions is the adjoint recurrence :math:`\lambda_t = \partial L / \partial s_t + J_t^\top \lambda_{t+1}`,
the same scan backwards, then a product with the action Jacobians that the last Newton call
computed in the same backward pass as the state Jacobians: a GD step on the rollout costs its
Newton calls and no more (one, from the previous step's rollout, on a smooth model). Where
Newton's iterations run out, the steps it missed are completed serially, forward only.

The Jacobians are ``D x D`` per step (``D`` the flat state size): the model is called on ``D``
copies of the batch. That suits states of tens of features; a large latent wants the
diagonal variant (Gonzalez et al., NeurIPS 2024), which this module does not have.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from torchrl_grasp.planners.scan import affine_scan

#: ``step(states, actions) -> next states``: one batched world-model call on state leaves
#: ``[M, *F_k]`` and actions ``[M, *A]`` (:meth:`PlanContext.step
#: <torchrl_grasp.planners.context.PlanContext.step>`'s ``.states``).
BatchedStep = Callable[[list[Tensor], Tensor], list[Tensor]]


class FlatStates:
    """Between state leaves ``[*batch, *F_k]`` (one per state key) and one flat tensor ``[*batch, D]``.

    Examples:
        >>> flat = FlatStates([torch.Size([2]), torch.Size([1, 3])])
        >>> x = flat.flatten([torch.zeros(4, 2), torch.ones(4, 1, 3)], batch_dims=1)
        >>> x.shape, flat.size, [leaf.shape for leaf in flat.unflatten(x)]
        (torch.Size([4, 5]), 5, [torch.Size([4, 2]), torch.Size([4, 1, 3])])
    """

    def __init__(self, shapes: Sequence[torch.Size]):
        self.shapes = [torch.Size(shape) for shape in shapes]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.size = sum(self.sizes)

    def flatten(self, leaves: Sequence[Tensor], batch_dims: int) -> Tensor:
        return torch.cat([leaf.reshape(*leaf.shape[:batch_dims], -1) for leaf in leaves], dim=-1)

    def unflatten(self, flat: Tensor) -> list[Tensor]:
        parts = flat.split(self.sizes, dim=-1)
        return [part.reshape(*flat.shape[:-1], *shape) for part, shape in zip(parts, self.shapes)]


class NewtonRollout(NamedTuple):
    """What :func:`newton_rollout` found."""

    #: the flat states ``s_0 .. s_T``, ``[N, T+1, D]``: the model's predictions at the last iterate.
    states: Tensor
    #: the state Jacobians :math:`J_t` at the last iterate, ``[N, T, D, D]`` (for :func:`adjoint_gradient`).
    jacobians: Tensor
    #: the action Jacobians :math:`\partial F / \partial a_t` at the last iterate, ``[N, T, D, *A]``:
    #: the adjoint's action gradient without another model call.
    action_jacobians: Tensor
    #: Newton iterations made (batched model calls on ``D`` copies), the check after a serial
    #: completion included.
    iterations: int
    #: whether ``max_t |s_{t+1} - F(s_t, a_t)|`` met the tolerance.
    converged: bool
    #: steps computed one by one after Newton's iterations ran out (``complete_serially``): those
    #: from the first whose residual missed the tolerance to ``T``; ``0`` where Newton's converged.
    serial_steps: int = 0


def step_jacobians(
    step: BatchedStep, flat: FlatStates, states: Tensor, actions: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    r"""``F(s, a)`` ``[M, D]``, :math:`\partial F / \partial s` ``[M, D, D]`` and
    :math:`\partial F / \partial a` ``[M, D, *A]`` for flat ``states`` ``[M, D]`` and ``actions`` ``[M, *A]``.

    One model call on ``D`` copies of the batch, the ``i``-th copy's output ``i`` backpropagated
    to both inputs in one backward pass (no ``torch.func``: any model differentiable in its
    inputs works).

    Examples:
        >>> flat = FlatStates([torch.Size([2])])
        >>> rotate = lambda leaves, a: [leaves[0] @ torch.tensor([[0.0, -1.0], [1.0, 0.0]]) + 2 * a]
        >>> value, jacobian, action_jacobian = step_jacobians(rotate, flat, torch.ones(1, 2), torch.zeros(1, 2))
        >>> value, jacobian[0]  # x @ R: row i of the Jacobian is column i of R
        (tensor([[ 1., -1.]]), tensor([[ 0.,  1.],
                [-1.,  0.]]))
        >>> action_jacobian[0]
        tensor([[2., 0.],
                [0., 2.]])
    """
    size, rows = flat.size, states.shape[0]
    copies = states.detach().unsqueeze(0).expand(size, *states.shape).reshape(size * rows, size).clone()
    copies.requires_grad_()
    action_shape = actions.shape[1:]
    repeated = actions.detach().unsqueeze(0).expand(size, *actions.shape).reshape(size * rows, *action_shape).clone()
    repeated.requires_grad_()
    with torch.enable_grad():
        out = flat.flatten(step(flat.unflatten(copies), repeated), batch_dims=1).reshape(size, rows, size)
        pick = torch.eye(size, dtype=out.dtype, device=out.device).unsqueeze(1)  # copy i keeps output i
        # An input the model ignores (its action, or its state) has a zero Jacobian.
        gradient, action_gradient = torch.autograd.grad(
            (out * pick).sum(), [copies, repeated], allow_unused=True, materialize_grads=True
        )
    action_jacobian = action_gradient.reshape(size, rows, *action_shape).transpose(0, 1)
    return out[0].detach(), gradient.reshape(size, rows, size).transpose(0, 1), action_jacobian


def newton_rollout(
    step: BatchedStep,
    flat: FlatStates,
    start: Tensor,
    actions: Tensor,
    guess: Tensor,
    *,
    iterations: int,
    tolerance: float,
    complete_serially: bool = False,
) -> NewtonRollout:
    r"""The rollout of ``actions`` ``[N, T, *A]`` from flat ``start`` ``[N, D]``, by Newton's method from ``guess`` ``[N, T, D]``.

    Stops at the first iterate whose residual :math:`\max_t |s_{t+1} - F(s_t, a_t)|` is at most
    ``tolerance`` times :math:`1 + \max |s|`, checked on the model call that the next iteration
    needs anyway; returns the model's predictions there (``converged``), or after ``iterations``
    calls without it (not ``converged``: use the serial rollout).

    With ``complete_serially``, ``iterations`` calls without convergence are not wasted: the
    steps before the first whose residual missed the tolerance are kept (the last call checked
    them), the rest are rolled out one by one without a graph, and one more call checks the
    whole trajectory and computes its Jacobians, so the adjoint still serves for the gradient.
    A guess far from the rollout (GRASP's virtual states at a sync's first step, on a long
    horizon) costs Newton's calls, that suffix's serial forward and one batched check, not a
    serial forward and backward of every step.

    Examples:
        >>> flat = FlatStates([torch.Size([1])])
        >>> step = lambda leaves, a: [torch.tanh(2 * leaves[0]) + a]  # nonlinear in the state
        >>> actions = torch.full((1, 5, 1), 0.3)
        >>> found = newton_rollout(step, flat, torch.zeros(1, 1), actions, torch.zeros(1, 5, 1), iterations=10, tolerance=1e-6)
        >>> serial = [torch.zeros(1, 1)]
        >>> for t in range(5):
        ...     serial.append(step([serial[-1]], actions[:, t])[0])
        >>> found.converged, found.iterations <= 6, torch.allclose(found.states, torch.stack(serial, 1), atol=1e-5)
        (True, True, True)
        >>> short = newton_rollout(step, flat, torch.zeros(1, 1), actions, torch.zeros(1, 5, 1), iterations=2,
        ...                        tolerance=1e-6, complete_serially=True)  # the second call checks the first iterate
        >>> short.converged, short.serial_steps, short.iterations, torch.allclose(short.states, torch.stack(serial, 1), atol=1e-5)
        (True, 4, 3, True)
    """
    n, horizon = actions.shape[:2]
    action_shape = actions.shape[2:]
    start, current = start.detach(), guess.detach()
    flat_actions = actions.detach().reshape(n * horizon, *action_shape)
    for made in range(1, iterations + 1):
        previous = torch.cat([start.unsqueeze(1), current[:, :-1]], dim=1)
        value, jacobian, action_jacobian = step_jacobians(step, flat, previous.reshape(n * horizon, -1), flat_actions)
        value, jacobian = value.reshape(n, horizon, -1), jacobian.reshape(n, horizon, flat.size, flat.size)
        residual, bound = (value - current).abs(), tolerance * (1 + current.abs().amax())
        if residual.amax() <= bound:
            action_jacobian = action_jacobian.reshape(n, horizon, flat.size, *action_shape)
            return NewtonRollout(torch.cat([start.unsqueeze(1), value], dim=1), jacobian, action_jacobian, made, True)
        if complete_serially and made == iterations:
            first_missed = int((residual.amax(dim=(0, 2)) > bound).nonzero()[0])
            completed = _complete_serially(step, flat, start, actions, value[:, :first_missed])
            checked = newton_rollout(step, flat, start, actions, completed, iterations=1, tolerance=tolerance)
            return checked._replace(iterations=made + 1, serial_steps=horizon - first_missed)
        offsets = value - (jacobian @ previous.unsqueeze(-1)).squeeze(-1)
        current = affine_scan(jacobian, offsets, start)
    action_jacobian = action_jacobian.reshape(n, horizon, flat.size, *action_shape)
    return NewtonRollout(torch.cat([start.unsqueeze(1), current], dim=1), jacobian, action_jacobian, iterations, False)


@torch.no_grad()
def _complete_serially(step: BatchedStep, flat: FlatStates, start: Tensor, actions: Tensor, exact: Tensor) -> Tensor:
    """The states ``s_1 .. s_T`` ``[N, T, D]``: ``exact`` ``[N, k, D]`` for the first ``k``, then one
    model call per step from the last of them (or ``start``)."""
    states, state = [exact], (exact[:, -1] if exact.shape[1] else start)
    for t in range(exact.shape[1], actions.shape[1]):
        state = flat.flatten(step(flat.unflatten(state), actions[:, t].detach()), batch_dims=1)
        states.append(state.unsqueeze(1))
    return torch.cat(states, dim=1)


def adjoint_gradient(
    flat: FlatStates,
    rollout: NewtonRollout,
    actions: Tensor,
    loss: Callable[[Tensor], Tensor],
) -> tuple[Tensor, Tensor]:
    r"""``loss(states)`` ``[N]`` of the flat rollout ``[N, T+1, D]`` and its gradient with respect to ``actions`` ``[N, T, *A]``.

    The gradient that backpropagation through the serial rollout gives: the adjoint
    :math:`\lambda_T = \partial L / \partial s_T`, :math:`\lambda_t = \partial L / \partial s_t + J_t^\top \lambda_{t+1}`
    by a scan backwards in time, then :math:`\partial L / \partial a_t = (\partial F / \partial a_t)^\top \lambda_{t+1}`
    from the action Jacobians that Newton's last call computed: no model call.

    Examples:
        >>> flat = FlatStates([torch.Size([1])])
        >>> step = lambda leaves, a: [torch.tanh(2 * leaves[0]) + a]
        >>> actions = torch.full((1, 4, 1), 0.3, requires_grad=True)
        >>> found = newton_rollout(step, flat, torch.zeros(1, 1), actions, torch.zeros(1, 4, 1), iterations=8, tolerance=1e-7)
        >>> final_error = lambda states: (states[:, -1] - 1.0).square().sum(-1)
        >>> value, gradient = adjoint_gradient(flat, found, actions, final_error)
        >>> state = torch.zeros(1, 1)
        >>> for t in range(4):  # backpropagation through the serial rollout
        ...     state = step([state], actions[:, t])[0]
        >>> (expected,) = torch.autograd.grad(final_error(state[:, None]).sum(), actions)
        >>> torch.allclose(gradient, expected, atol=1e-5)
        True
    """
    n, horizon = actions.shape[:2]
    states = rollout.states.detach().requires_grad_()
    with torch.enable_grad():
        value = loss(states)
        (direct,) = torch.autograd.grad(value.sum(), states)
    adjoint = direct[:, horizon]  # lambda_T
    if horizon > 1:  # lambda_{T-1} .. lambda_1, as a forward scan over reversed time
        transposed = rollout.jacobians[:, 1:].flip(1).transpose(-1, -2)
        earlier = affine_scan(transposed, direct[:, 1:horizon].flip(1), adjoint).flip(1)
        adjoint = torch.cat([earlier, adjoint.unsqueeze(1)], dim=1)
    else:
        adjoint = adjoint.unsqueeze(1)
    action_jacobians = rollout.action_jacobians.reshape(n, horizon, flat.size, -1)
    gradient = (adjoint.unsqueeze(-2) @ action_jacobians).squeeze(-2)  # lambda_{t+1}^T dF/da_t
    return value.detach(), gradient.reshape(actions.shape)
