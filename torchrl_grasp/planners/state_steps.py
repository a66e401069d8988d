r"""How GRASP moves its virtual states each iteration: Adam (the method's), or a Newton step.

With the stop-gradient, a virtual state :math:`s_{t+1}` enters the collocation loss in one term
only, :math:`\operatorname{mean}_d (F(\bar s_t, a_t) - s_{t+1})^2`: a quadratic whose curvature
is :math:`2 / D` per feature (:math:`D` the features of its key). Adam ignores that curvature and
moves every state by about its learning rate per iteration, whatever its gradient, so the rate
that works depends on the state's units (``docs/tuning.md``). :class:`NewtonStates` divides the
gradient by the curvature: each state moves ``damping`` of the way to the model's prediction,
:math:`s_{t+1} \leftarrow s_{t+1} + \alpha (F(\bar s_t, a_t) - s_{t+1})`, in whatever units the
states are. A step cost's gradient (a reward, a penalty) is scaled alike.

A state step is chosen by one typed argument, ``GRASPPlanner(state_step=...)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


def _fused(device: torch.device) -> bool:
    return device.type in ("cpu", "cuda", "mps", "xpu")


@dataclass(frozen=True)
class AdamStates:
    r"""Adam on the virtual states at ``lr`` (the method's state step; ``GRASPPlanner``'s ``lr_states``).

    Adam moves each state feature by about ``lr`` per iteration whatever its gradient, so ``lr``
    is a distance: in the state's own units (``unit="state"``, the method's), or in the plan's
    step length (``unit="step"``): :math:`\lVert g - s_0 \rVert / T` per plan on a key with a
    goal, the mean step of the initial virtual states on one without
    (:func:`~torchrl_grasp.planners.grasp.step_lengths`), so that one ``lr`` suits states of any
    scale and plans of any length (``docs/tuning.md``, "Settings per scale").

    Examples:
        >>> AdamStates(lr=0.01)
        AdamStates(lr=0.01, unit='state')
        >>> AdamStates(lr=0.4, unit="step")  # 0.4 step lengths per iteration
        AdamStates(lr=0.4, unit='step')
        >>> AdamStates(lr=0.0)
        Traceback (most recent call last):
        ValueError: AdamStates: lr must be a positive, finite number, got 0.0.
    """

    lr: float = 0.1
    unit: str = "state"

    def __post_init__(self):
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"AdamStates: lr must be a positive, finite number, got {self.lr!r}.")
        if self.unit not in ("state", "step"):
            raise ValueError(f"AdamStates: unit must be 'state' or 'step', got {self.unit!r}.")

    @property
    def needs_step_lengths(self) -> bool:
        """Whether :func:`plan_optimizers` needs the plan's step lengths (``unit="step"``)."""
        return self.unit == "step"

    def param_groups(self, leaves: Sequence[Tensor]) -> list[dict]:
        """Adam's parameter groups for the states' ``leaves`` ``[N, T, *F_k]``."""
        return [{"params": list(leaves), "lr": self.lr}]


@dataclass(frozen=True)
class NewtonStates:
    r"""Each virtual state moves ``damping`` of the way to the model's prediction of it, per iteration.

    The Newton step of the stop-gradient collocation loss in the states: gradient descent whose
    rate for a key of :math:`D` features is ``damping * D / 2``, the inverse of the quadratic's
    curvature times ``damping``. ``damping = 1`` sets each state to its prediction (the loss's
    minimum in the states, given the actions); smaller values move part of the way, so that the
    actions, which are moved by the same loss, can follow. Exact with GRASP's stop-gradient; with
    ``stop_gradient=False`` the state also enters the next step's prediction and the step is only
    a preconditioning.

    Examples:
        >>> step = NewtonStates(damping=0.5)
        >>> state = torch.zeros(1, 3, 4, requires_grad=True)  # 4 features
        >>> prediction = torch.ones(1, 3, 4)
        >>> state.grad = torch.autograd.grad((prediction - state).square().mean(-1).sum(), state)[0]
        >>> torch.optim.SGD(step.param_groups([state])).step()
        >>> state[0, 0]  # half way to the prediction, whatever the units
        tensor([0.5000, 0.5000, 0.5000, 0.5000], grad_fn=<SelectBackward0>)
        >>> NewtonStates(damping=1.5)
        Traceback (most recent call last):
        ValueError: NewtonStates: damping must be in (0, 1], got 1.5.
    """

    damping: float = 0.5

    def __post_init__(self):
        if not (0 < self.damping <= 1):
            raise ValueError(f"NewtonStates: damping must be in (0, 1], got {self.damping!r}.")

    #: Newton steps are in the states' own units already: no step lengths.
    needs_step_lengths = False

    def param_groups(self, leaves: Sequence[Tensor]) -> list[dict]:
        """SGD's parameter groups for the states' ``leaves`` ``[N, T, *F_k]``: one per key, at its rate."""
        return [{"params": [leaf], "lr": self.damping * leaf[0, 0].numel() / 2} for leaf in leaves]


StateStep = AdamStates | NewtonStates


def plan_optimizers(
    state_step: StateStep,
    leaves: Sequence[Tensor],
    actions: Tensor,
    lr_actions: float,
    step_lengths: Sequence[Tensor] | None = None,
) -> list[torch.optim.Optimizer]:
    """The optimisers of one GRASP plan: ``state_step`` on the states' ``leaves``, Adam at
    ``lr_actions`` on ``actions``; one Adam over both when the states take Adam steps too.
    ``AdamStates(unit="step")`` needs each key's ``step_lengths`` ``[N, 1, *1]`` (per plan).

    Examples:
        >>> states, actions = torch.zeros(2, 5, 3, requires_grad=True), torch.zeros(2, 5, 1, requires_grad=True)
        >>> [type(o).__name__ for o in plan_optimizers(AdamStates(0.01), [states], actions, 0.05)]
        ['Adam']
        >>> [type(o).__name__ for o in plan_optimizers(NewtonStates(0.5), [states], actions, 0.05)]
        ['SGD', 'Adam']
    """
    fused = _fused(actions.device)
    action_group = {"params": [actions], "lr": lr_actions}
    if isinstance(state_step, NewtonStates):
        return [
            torch.optim.SGD(state_step.param_groups(leaves), foreach=True),
            torch.optim.Adam([action_group], fused=fused),
        ]
    optimizer = torch.optim.Adam([*state_step.param_groups(leaves), action_group], fused=fused)
    if state_step.needs_step_lengths:
        if step_lengths is None:
            raise ValueError("AdamStates(unit='step') needs the plan's step_lengths.")
        scale_updates(optimizer, leaves, step_lengths)
    return [optimizer]


def scale_updates(
    optimizer: torch.optim.Optimizer, leaves: Sequence[Tensor], scales: Sequence[Tensor]
) -> None:
    """Multiplies every update ``optimizer`` makes to each of ``leaves`` by its ``scales`` (broadcast,
    e.g. one per plan ``[N, 1, *1]``): a per-plan learning rate, which torch's optimisers take per
    parameter group only. Through the optimiser's public step hooks.

    Examples:
        >>> state = torch.zeros(2, 3, requires_grad=True)
        >>> optimizer = torch.optim.Adam([state], lr=0.1)
        >>> scale_updates(optimizer, [state], [torch.tensor([[1.0], [10.0]])])
        >>> state.grad = torch.ones(2, 3)
        >>> optimizer.step()
        >>> state  # Adam's first step, lr times the gradient's sign, then 1 and 10 times it
        tensor([[-0.1000, -0.1000, -0.1000],
                [-1.0000, -1.0000, -1.0000]], requires_grad=True)
    """
    before: list[Tensor] = []

    def remember(optimizer, args, kwargs):
        before[:] = [leaf.detach().clone() for leaf in leaves]

    @torch.no_grad()
    def rescale(optimizer, args, kwargs):
        for leaf, old, scale in zip(leaves, before, scales):
            leaf.sub_(old).mul_(scale).add_(old)

    optimizer.register_step_pre_hook(remember)
    optimizer.register_step_post_hook(rescale)
