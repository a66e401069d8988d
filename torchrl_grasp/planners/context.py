"""What a solver works with during one plan call: the problem, the world model, the bounds, when to stop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from tensordict import TensorDictBase
from torch import Tensor

from torchrl_grasp.objectives import PlanRollout
from torchrl_grasp.planners.best import BestPlan
from torchrl_grasp.planners.deadline import Deadline
from torchrl_grasp.planners.problem import PlanningProblem
from torchrl_grasp.planners.result import Status
from torchrl_grasp.world_models.step import WorldModelStep


class ScoredRollout(NamedTuple):
    """A serial rollout of ``N`` plans and what the objective makes of it (:meth:`PlanContext.scored_rollout`)."""

    #: the states ``s_0 .. s_T``, ``[N, T+1]``.
    states: TensorDictBase
    #: the differentiable loss ``[N]``.
    loss: Tensor
    #: the score ``[N]`` that ranks plans (lower is better), detached.
    score: Tensor
    #: the model's penalty summed along each rollout ``[N]`` (unweighted); ``None`` without a penalty.
    penalty: Tensor | None


@dataclass
class PlanContext:
    """One plan call's problem and means, shared by every piece of a solver (iterations, syncs, shooting).

    Every world-model call of a plan goes through :meth:`step` or :meth:`rollout`, which count them.

    Attributes:
        problem (PlanningProblem): the ``N`` plans' start states and objective.
        model_step (WorldModelStep): the world model on plain tensors.
        horizon (int): :math:`T`.
        action_shape (torch.Size): ``A``, the action's shape without batch dims.
        action_dtype (torch.dtype): the action spec's dtype.
        bounds (tuple of Tensor, optional): ``(low, high)`` of the actions; ``None`` if unbounded.
        stop_distance (float, optional): stop once every batch element has a plan scoring this or less.
        generator (torch.Generator): the only source of randomness.
        warm_start_shift (int): steps of the previous plan executed since it was made; the warm
            start drops that many. Defaults to ``1``.
        deadline (Deadline): the plan's time budget; defaults to none.
        model_calls (int): batched world-model calls so far (a serial rollout counts ``T``).
        model_transitions (int): transitions predicted so far, summed over the calls' batches
            (a rollout of ``K`` candidates per plan counts ``N * K * T``).
        stopped_by_deadline (bool): a loop stopped because the time budget was spent.
        serial_fallbacks (int): rollouts of the parallel sync that fell back to the serial one.
        deterministic_model (bool, optional): whether the model draws no noise, once checked.
        rollout_guess (Tensor, optional): the parallel sync's last rollout, flat ``[N, T, D]``:
            where the evaluation after it starts its Newton iterations.
    """

    problem: PlanningProblem
    model_step: WorldModelStep
    horizon: int
    action_shape: torch.Size
    action_dtype: torch.dtype
    bounds: tuple[Tensor, Tensor] | None
    stop_distance: float | None
    generator: torch.Generator
    warm_start_shift: int = 1
    deadline: Deadline = field(default_factory=lambda: Deadline(None))
    model_calls: int = field(default=0)
    model_transitions: int = field(default=0)
    stopped_by_deadline: bool = field(default=False)
    serial_fallbacks: int = field(default=0)
    deterministic_model: bool | None = field(default=None)
    rollout_guess: Tensor | None = field(default=None)

    @property
    def objective(self):
        return self.problem.objective

    @property
    def device(self) -> torch.device:
        return self.problem.device

    def zero_actions(self) -> Tensor:
        """Zero actions ``[N, T, *A]``, inside the bounds."""
        shape = (self.problem.num_plans, self.horizon, *self.action_shape)
        return self.clamp(torch.zeros(shape, device=self.device, dtype=self.action_dtype))

    def clamp(self, actions: Tensor) -> Tensor:
        """``actions`` inside the spec's bounds."""
        return actions if self.bounds is None else actions.clamp(*self.bounds)

    def normal(self, shape, dtype: torch.dtype | None = None) -> Tensor:
        """Standard normal noise of ``shape`` from the plan's generator."""
        return torch.randn(shape, generator=self.generator, device=self.device, dtype=dtype)

    def step(self, states: list[Tensor], actions: Tensor):
        """One batched world-model call through the objective: its
        :class:`~torchrl_grasp.world_models.step.Prediction` (next states per key, rewards, done flags)."""
        self.count_call(actions)
        return self.objective.step(self.model_step, states, actions)

    def count_call(self, actions: Tensor) -> None:
        """Counts one batched world-model call on ``actions`` ``[M, *A]`` (or ``[N, T, *A]``), for a
        caller that makes it itself (a compiled iteration: counters stay outside what is compiled)."""
        self.model_calls += 1
        self.model_transitions += actions.numel() // max(1, self.action_shape.numel())

    def rollout(self, actions: Tensor, problem: PlanningProblem | None = None) -> PlanRollout:
        """The serial rollout of ``actions`` ``[N, T, *A]``: the
        :class:`~torchrl_grasp.objectives.PlanRollout` (states ``[N, T+1]``; rewards, done flags and
        penalties ``[N, T]``, each ``None`` where the objective needs none or the model writes none)."""
        problem = problem or self.problem
        self.model_calls += actions.shape[1]
        self.model_transitions += actions.numel() // max(1, self.action_shape.numel())
        return problem.objective.rollout(self.model_step, problem.start, actions)

    def scored_rollout(self, actions: Tensor, problem: PlanningProblem | None = None) -> ScoredRollout:
        """The rollout with its loss, score and penalty: the :class:`ScoredRollout`."""
        problem = problem or self.problem
        rollout = self.rollout(actions, problem)
        objective = problem.objective
        return ScoredRollout(
            rollout.states,
            objective.rollout_loss(*rollout),
            objective.score(*rollout),
            objective.penalty_total(rollout.penalties, rollout.done),
        )

    @torch.no_grad()
    def evaluate(self, actions: Tensor, virtual: TensorDictBase | None, best: BestPlan) -> TensorDictBase:
        """Rolls ``actions`` out, offers the plan (with ``virtual`` as its states) to ``best``, returns the
        rollout. Under a deadline its duration is the reserve that the next checks keep for the
        final evaluation (:meth:`Deadline.timed`)."""
        with self.deadline.timed():
            scored = self.scored_rollout(actions)
            best.offer(scored.score, actions, scored.states, virtual, scored.penalty)
        return scored.states

    def reached(self, best: BestPlan) -> bool:
        """Whether ``best`` holds, for every batch element, a plan within ``stop_distance`` (by its
        unpenalised score: the distance the model predicts)."""
        return best.score is not None and self.objective.reached(
            self.objective.unpenalised(best.score, best.penalty), self.problem.restarts, self.stop_distance
        )

    def out_of_time(self) -> bool:
        """Whether the plan's time budget is spent. Every loop that asks stops when told so (at its
        next iteration boundary, after evaluating what it holds), and the plan ends ``"deadline"``."""
        if self.deadline.passed():
            self.stopped_by_deadline = True
        return self.stopped_by_deadline

    def status(self, best: BestPlan) -> Status:
        """How a plan that ran to its end (no NaN) ended: ``"reached"`` if ``best`` is within
        ``stop_distance`` for every batch element, else ``"deadline"`` if a loop stopped for the
        time budget, else ``"completed"``."""
        if self.reached(best):
            return "reached"
        return "deadline" if self.stopped_by_deadline else "completed"
