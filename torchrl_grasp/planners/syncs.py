"""GRASP's periodic syncs: how the plan is grounded in the world model's serial rollout.

A sync is chosen by one typed argument, ``GRASPPlanner(sync=...)``: :class:`GDSync` (the
default), :class:`CEMSync`, or ``None`` (the rollout is evaluated at the end only).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor

from torchrl_grasp.planners.best import BestPlan
from torchrl_grasp.planners.context import PlanContext, ScoredRollout
from torchrl_grasp.planners.descent import gradients_of
from torchrl_grasp.planners.parallel_rollout import FlatStates, NewtonRollout, adjoint_gradient, newton_rollout
from torchrl_grasp.planners.sampling import Population, elite_mean, sample_search
from torchrl_grasp.planners.shooting import shoot


def _check_positive_int(owner: str, **values) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}.")


class Sync:
    """What every sync shares: after it (and where GRASP stops), the plan's actions are evaluated."""

    def evaluate(self, context: PlanContext, actions: Tensor, virtual: TensorDictBase, best: BestPlan) -> None:
        """Rolls ``actions`` out and offers the plan to ``best``: the serial rollout (:meth:`PlanContext.evaluate`)."""
        context.evaluate(actions.detach(), virtual, best)


@dataclass(frozen=True)
class GDSync(Sync):
    """Every ``every`` iterations (and at the end): ``steps`` Adam steps at ``lr`` on the serial rollout's loss.

    Each step's rollout is a candidate plan. The authors' default sync.

    Examples:
        >>> GDSync()
        GDSync(every=50, steps=10, lr=0.05)
        >>> GDSync(every=0)
        Traceback (most recent call last):
        ValueError: GDSync: every must be a positive int, got 0.
    """

    every: int = 50
    steps: int = 10
    lr: float = 0.05

    def __post_init__(self):
        _check_positive_int("GDSync", every=self.every, steps=self.steps)
        if not self.lr > 0:
            raise ValueError(f"GDSync: lr must be a positive float, got {self.lr!r}.")

    def __call__(
        self, context: PlanContext, actions: Tensor, virtual: TensorDictBase, best: BestPlan
    ) -> None:
        shoot(context, actions, self.steps, self.lr, best, virtual=virtual)


@dataclass(frozen=True)
class ParallelGDSync(GDSync):
    r""":class:`GDSync` whose rollouts and gradients are computed over all time steps at once.

    Each GD step's rollout comes from Newton's method on the whole trajectory
    (:func:`~torchrl_grasp.planners.parallel_rollout.newton_rollout`, DEER), started from
    GRASP's virtual states at the sync's first step and from the previous step's rollout after,
    and its gradient from the adjoint (:func:`~torchrl_grasp.planners.parallel_rollout.adjoint_gradient`):
    at most ``newton_iterations`` batched model calls (the adjoint reuses the last one's
    Jacobians), instead of ``T`` serial calls and their backward. A rollout is used only where its residual
    :math:`\max_t |s_{t+1} - F(s_t, a_t)|` met ``tolerance`` (relative to the states' size);
    where ``newton_iterations`` did not get there, the steps from the first that missed it
    are rolled out serially (forward only), one more batched call checks the whole rollout and
    the adjoint still gives the gradient, and
    :attr:`PlanResult.serial_fallbacks <torchrl_grasp.PlanResult>` counts it (a check that
    fails too, on a model whose batched and single calls disagree, takes the serial rollout and
    its backward). It serves goal
    objectives on deterministic models that write no done flag; other plans (a reward, a
    penalty, a stochastic or terminating model) take :class:`GDSync`'s serial steps, all counted
    as fallbacks. The state Jacobians cost ``D`` copies of each batched call (``D`` the flat
    state size): meant for states of up to tens of features.

    Examples:
        >>> ParallelGDSync(every=25)
        ParallelGDSync(every=25, steps=10, lr=0.05, newton_iterations=8, tolerance=1e-05)
        >>> ParallelGDSync(newton_iterations=0)
        Traceback (most recent call last):
        ValueError: ParallelGDSync: newton_iterations must be a positive int, got 0.
    """

    newton_iterations: int = 8
    tolerance: float = 1e-5

    def __post_init__(self):
        super().__post_init__()
        _check_positive_int("ParallelGDSync", newton_iterations=self.newton_iterations)
        if not self.tolerance > 0:
            raise ValueError(f"ParallelGDSync: tolerance must be a positive float, got {self.tolerance!r}.")

    def __call__(
        self, context: PlanContext, actions: Tensor, virtual: TensorDictBase, best: BestPlan
    ) -> None:
        if not parallel_rollout_serves(context):
            context.serial_fallbacks += shoot(context, actions, self.steps, self.lr, best, virtual=virtual)
            return
        rollout_gradient = ParallelRolloutGradient(context, virtual, self.newton_iterations, self.tolerance)
        shoot(context, actions, self.steps, self.lr, best, virtual=virtual, rollout_gradient=rollout_gradient)
        context.rollout_guess = rollout_gradient.guess  # for the evaluation that follows

    def evaluate(self, context: PlanContext, actions: Tensor, virtual: TensorDictBase, best: BestPlan) -> None:
        """The evaluation by Newton's rollout too, from the sync's last rollout (or the virtual states)."""
        if not parallel_rollout_serves(context):
            context.serial_fallbacks += 1
            return super().evaluate(context, actions, virtual, best)
        rollout = ParallelRolloutGradient(context, virtual, self.newton_iterations, self.tolerance)
        if context.rollout_guess is not None:
            rollout.guess, context.rollout_guess = context.rollout_guess, None
        with context.deadline.timed(), torch.no_grad():
            scored, _ = rollout.scored(context, actions.detach())
            best.offer(scored.score, actions.detach(), scored.states, virtual, scored.penalty)


def parallel_rollout_serves(context: PlanContext) -> bool:
    """Whether the plan's rollouts can be computed in parallel over time: a goal objective without
    a penalty, on a model that writes no done flag and draws no noise (checked once per plan)."""
    objective = context.objective
    if objective.uses_reward or objective.uses_penalty or context.model_step.done_keys:
        return False
    if context.deterministic_model is None:
        zero = context.zero_actions()[:, 0]
        context.deterministic_model = not context.model_step.draws_noise(context.problem.start_leaves, zero)
    return context.deterministic_model


class ParallelRolloutGradient:
    """A :data:`~torchrl_grasp.planners.shooting.RolloutGradient` by Newton's method and the adjoint,
    falling back to the serial rollout where Newton's did not converge; each call's rollout is
    the next call's first guess."""

    def __init__(self, context: PlanContext, virtual: TensorDictBase, iterations: int, tolerance: float):
        problem = context.problem
        self.keys = problem.state_keys
        self.flat = FlatStates([leaf.shape[1:] for leaf in problem.start_leaves])
        self.start = self.flat.flatten(problem.start_leaves, batch_dims=1)
        self.guess = self.flat.flatten([virtual.get(key) for key in self.keys], batch_dims=2).detach()
        self.iterations, self.tolerance = iterations, tolerance

    def __call__(self, context: PlanContext, candidate: Tensor):
        scored, found = self.scored(context, candidate)
        if found is None:
            return scored, lambda: gradients_of(scored.loss, [candidate])[0]
        return scored, lambda: adjoint_gradient(self.flat, found, candidate, self.loss(context))[1]

    def scored(self, context: PlanContext, candidate: Tensor) -> tuple[ScoredRollout, NewtonRollout | None]:
        """``candidate``'s rollout, loss and score, and Newton's rollout behind them (``None`` where
        it did not converge and the serial rollout, differentiable, took its place)."""
        found = newton_rollout(
            self.leaf_step(context), self.flat, self.start, candidate, self.guess,
            iterations=self.iterations, tolerance=self.tolerance, complete_serially=True,
        )
        if found.serial_steps or not found.converged:
            context.serial_fallbacks += 1
        if not found.converged:  # not even after the serial completion: a model whose calls disagree
            scored = context.scored_rollout(candidate)
            self.guess = self.flat.flatten([scored.states.get(key) for key in self.keys], batch_dims=2)[:, 1:].detach()
            return scored, None
        self.guess = found.states[:, 1:]
        states = self.states(found.states)
        scored = ScoredRollout(states, self.loss(context)(found.states), context.objective.score(states, None), None)
        return scored, found

    @staticmethod
    def leaf_step(context: PlanContext) -> Callable[[list[Tensor], Tensor], list[Tensor]]:
        """The world model's step on the state leaves, as Newton's rollout and the adjoint call it."""
        return lambda leaves, action: context.step(leaves, action).states

    def loss(self, context: PlanContext) -> Callable[[Tensor], Tensor]:
        """The objective's rollout loss of a flat rollout ``[N, T+1, D]``."""
        return lambda flat_states: context.objective.rollout_loss(self.states(flat_states), None)

    def states(self, flat_states: Tensor) -> TensorDictBase:
        """The flat rollout ``[N, T+1, D]`` as the state keys' TensorDict."""
        return TensorDict(dict(zip(self.keys, self.flat.unflatten(flat_states))), batch_size=flat_states.shape[:2])


@dataclass(frozen=True)
class CEMSync(Sync):
    """Every ``every`` iterations (and at the end): ``iterations`` CEM iterations around the current actions.

    ``samples`` candidates per plan (the current actions among them), ``top_k`` elites; the
    sampling standard deviation of step ``t`` is ``std * drift_t / mean_t(drift_t)``, where
    ``drift_t`` is the RMS gap between the virtual state :math:`s_{t+1}` and the rollout's, so
    the search widens where collocation and the model disagree (the authors' CEM refinement).
    ``population`` draws the candidates as :class:`~torchrl_grasp.planners.GoalCEMPlanner` does:
    ``Population.icem()`` makes the sync an iCEM search (coloured noise, kept elites, a shrinking
    population), the same code as :class:`~torchrl_grasp.planners.GoalICEMPlanner`'s.

    Examples:
        >>> CEMSync(iterations=5, samples=64, top_k=8)
        CEMSync(every=50, iterations=5, std=0.05, samples=64, top_k=8, population=Population(noise_beta=0.0, decay=1.0, keep_elites=0.0, momentum=0.0, mean_last=False))
        >>> CEMSync(population=Population.icem()).population.noise_beta
        2.0
        >>> CEMSync(samples=8, top_k=16)
        Traceback (most recent call last):
        ValueError: CEMSync: top_k=16 exceeds samples=8.
    """

    every: int = 50
    iterations: int = 10
    std: float = 0.05
    samples: int = 64
    top_k: int = 8
    population: Population = field(default_factory=Population)

    def __post_init__(self):
        _check_positive_int(
            "CEMSync", every=self.every, iterations=self.iterations, samples=self.samples, top_k=self.top_k
        )
        if self.top_k < 2:
            raise ValueError(f"CEMSync: top_k must be at least 2 (the elites' spread needs two), got {self.top_k}.")
        if self.top_k > self.samples:
            raise ValueError(f"CEMSync: top_k={self.top_k} exceeds samples={self.samples}.")
        if not self.std > 0:
            raise ValueError(f"CEMSync: std must be a positive float, got {self.std!r}.")
        if not isinstance(self.population, Population):
            raise TypeError(f"CEMSync: population must be a Population, got {type(self.population).__name__}.")

    @torch.no_grad()
    def __call__(
        self, context: PlanContext, actions: Tensor, virtual: TensorDictBase, best: BestPlan
    ) -> None:
        n, horizon, action_shape = context.problem.num_plans, context.horizon, context.action_shape
        rollout = context.evaluate(actions.detach(), virtual, best)
        gap = (virtual - rollout[:, 1:]).apply(
            lambda x: x.flatten(2).square().mean(-1), batch_size=virtual.batch_size
        )
        drift = torch.stack(list(gap.values(True, True))).sum(0).sqrt()
        std = self.std * drift / (drift.mean(-1, keepdim=True) + 1e-8)
        std = std.reshape(n, horizon, *[1] * len(action_shape)).expand(n, horizon, *action_shape)
        search = sample_search(
            context,
            actions.detach(),
            std,
            iterations=self.iterations,
            samples=self.samples,
            top_k=self.top_k,
            refit=elite_mean,
            best=best,
            population=self.population,
            virtual=virtual,
            keep_mean=True,  # the current actions are always a candidate
        )
        actions.copy_(search.mean)  # GRASP goes on from the refitted mean


_UNSET = object()


def sync_from_legacy(
    sync,
    *,
    sync_mode=_UNSET,
    sync_every=None,
    sync_steps=None,
    sync_lr=None,
    sync_cem_samples=None,
    sync_cem_top_k=None,
):
    """The sync that the keyword arguments of torchrl_grasp 0.1 describe, with a ``DeprecationWarning``
    that names the replacement; ``sync`` unchanged when none of them is given.

    Examples:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     sync = sync_from_legacy(GDSync(), sync_every=25, sync_lr=0.1)
        >>> sync, str(caught[0].message).split(";")[0]
        (GDSync(every=25, steps=10, lr=0.1), 'sync_every, sync_lr are deprecated: pass sync=GDSync(every=25, steps=10, lr=0.1)')
    """
    legacy = dict(
        sync_every=sync_every,
        sync_steps=sync_steps,
        sync_lr=sync_lr,
        sync_cem_samples=sync_cem_samples,
        sync_cem_top_k=sync_cem_top_k,
    )
    given = [name for name, value in legacy.items() if value is not None]
    if sync_mode is not _UNSET:
        given.insert(0, "sync_mode")
    if not given:
        return sync
    mode = "gd" if sync_mode is _UNSET else sync_mode
    if mode not in ("gd", "cem", None):
        raise ValueError(f"sync_mode must be one of ('gd', 'cem', None), got {mode!r}.")
    every = sync_every if sync_every is not None else 50
    steps = sync_steps if sync_steps is not None else 10
    lr = sync_lr if sync_lr is not None else 0.05
    if mode == "gd":
        replacement = GDSync(every=every, steps=steps, lr=lr)
    elif mode == "cem":
        replacement = CEMSync(
            every=every, iterations=steps, std=lr, samples=sync_cem_samples or 64, top_k=sync_cem_top_k or 8
        )
    else:
        replacement = None
    warnings.warn(
        f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} deprecated: pass sync={replacement!r}; "
        "they will be removed in the next release.",
        DeprecationWarning,
        stacklevel=3,
    )
    return replacement
