r"""Sampling planners: the cross-entropy method (CEM), iCEM and MPPI, scored by the package's objective.

All run one search (:func:`sample_search`), written like TD-MPC2's ``_plan``: per plan, sample
``K`` action sequences around a mean, roll all of them out in one batched serial rollout, rank
them by the objective's score (the final distance to the goal, or minus the model's return;
:mod:`torchrl_grasp.objectives`), and refit the mean and the spread to the ``k`` best (the
elites). CEM and MPPI differ in the refit only:

.. math::

    \text{CEM:}\ \mu = \operatorname{mean}(a_{\text{elite}}),\ \sigma = \operatorname{std}(a_{\text{elite}})
    \qquad
    \text{MPPI:}\ w_i \propto e^{-\tau \, \text{score}_i},\ \mu = \textstyle\sum_i w_i a_i,\
    \sigma^2 = \textstyle\sum_i w_i (a_i - \mu)^2

At TorchRL's settings (``init_std=1``, no warm start) the iterates are those of TorchRL's
:class:`~torchrl.modules.planners.CEMPlanner` / :class:`~torchrl.modules.planners.MPPIPlanner`
for the same noise: the refits are theirs, with MPPI's weights normalised by a softmax (TorchRL's
``exp(temperature * advantage)`` underflows to 0/0 for returns of a few hundred). What this
package adds: any env batch size and action shape, the whole plan (TorchRL's return the first
action), draws from ``generator`` only, a warm start from the previous plan, restarts, the best
candidate seen (the final mean among them) as the plan, ``stop_distance``, the callback, and the
same :class:`~torchrl_grasp.PlanResult` as every planner here.

iCEM (:class:`GoalICEMPlanner`) is CEM with another :class:`Population`: how each iteration's
candidates are drawn (coloured noise, a shrinking population, kept elites, momentum).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor
from torchrl.envs.model_based import ModelBasedEnvBase

from torchrl_grasp.planners.base import GoalPlanner, check_positive_ints
from torchrl_grasp.planners.best import BestPlan
from torchrl_grasp.planners.context import PlanContext
from torchrl_grasp.planners.noise import powerlaw_noise
from torchrl_grasp.planners.result import PlanResult

#: ``refit(elites, scores) -> (mean, std)``: elites ``[N, k, T, *A]`` ranked best first with their
#: scores ``[N, k]``, to the next sampling distribution, each ``[N, 1, T, *A]``.
Refit = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def elite_mean(elites: Tensor, scores: Tensor) -> tuple[Tensor, Tensor]:
    """CEM's refit: the elites' mean and (unbiased) standard deviation, each ``[N, 1, T, *A]``.

    Examples:
        >>> elites = torch.tensor([[[[0.0]], [[2.0]]]])  # N = 1 plan, k = 2 elites, T = 1, A = (1,)
        >>> [x.flatten().tolist() for x in elite_mean(elites, torch.tensor([[0.1, 0.3]]))]
        [[1.0], [1.4142135381698608]]
    """
    return elites.mean(1, keepdim=True), elites.std(1, keepdim=True)


@dataclass(frozen=True)
class ExponentialWeights:
    """MPPI's refit: elites weighted by ``exp(-temperature * score)``, normalised (a softmax).

    With ``relative=True`` the scores are first rescaled to ``[0, 1]`` over each plan's elites
    (best 0, worst 1), so that ``temperature`` is the log-ratio of the best elite's weight to the
    worst's, whatever the scale of the score (a distance of 0.1 or a return of -500).

    Examples:
        >>> refit = ExponentialWeights(temperature=math.log(3))  # weights 3 : 1 for scores 0 and 1
        >>> elites = torch.tensor([[[[0.0]], [[4.0]]]])
        >>> mean, std = refit(elites, torch.tensor([[0.0, 1.0]]))
        >>> mean.flatten().tolist(), std.flatten().tolist()  # 0.25 * 4; sqrt(0.75 * 1 + 0.25 * 9)
        ([1.0], [1.7320507764816284])
        >>> relative = ExponentialWeights(math.log(3), relative=True)  # the same weights for scores 100x apart
        >>> relative(elites, torch.tensor([[0.0, 100.0]]))[0].flatten().tolist()
        [1.0]
        >>> ExponentialWeights(0.0)
        Traceback (most recent call last):
        ValueError: temperature must be a positive number, got 0.0.
    """

    temperature: float
    relative: bool = False

    def __post_init__(self):
        if not math.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"temperature must be a positive number, got {self.temperature!r}.")

    def __call__(self, elites: Tensor, scores: Tensor) -> tuple[Tensor, Tensor]:
        if self.relative:
            finite = torch.isfinite(scores)
            lowest = scores.masked_fill(~finite, math.inf).amin(1, keepdim=True)
            highest = scores.masked_fill(~finite, -math.inf).amax(1, keepdim=True)
            scores = (scores - lowest) / (highest - lowest).clamp_min(torch.finfo(scores.dtype).tiny)
        # Non-finite scores (inf) get the lowest finite logit: weight 0, or uniform if all are.
        logits = torch.nan_to_num(
            -self.temperature * scores, nan=0.0, neginf=torch.finfo(scores.dtype).min
        )
        weights = torch.softmax(logits, dim=1).reshape(*scores.shape, *[1] * (elites.ndim - 2))
        weights = weights.to(elites.dtype)
        mean = (weights * elites).sum(1, keepdim=True)
        std = (weights * (elites - mean).square()).sum(1, keepdim=True).sqrt()
        return mean, std


@dataclass(frozen=True)
class Population:
    """How a sampling search draws each iteration's candidates: CEM's by default, iCEM's with :meth:`icem`.

    Attributes:
        noise_beta (float): the noise's colour along time, :math:`1/f^\\beta`
            (:func:`~torchrl_grasp.planners.noise.powerlaw_noise`); ``0`` is white.
        decay (float): iteration ``i`` draws ``samples / decay**i`` new candidates, down to
            ``2 * top_k``; ``1`` keeps the population.
        keep_elites (float): the fraction of each iteration's elites that join the next
            iteration's candidates (and, warm-started, the next plan's first iteration, shifted).
        momentum (float): the refit keeps this fraction of the previous mean and spread.
        mean_last (bool): the last iteration's candidates include the sampling mean.

    Examples:
        >>> Population()  # the cross-entropy method
        Population(noise_beta=0.0, decay=1.0, keep_elites=0.0, momentum=0.0, mean_last=False)
        >>> Population.icem()  # Pinneri et al.'s settings
        Population(noise_beta=2.0, decay=1.25, keep_elites=0.3, momentum=0.1, mean_last=True)
        >>> [Population.icem().size(i, samples=300, top_k=30) for i in range(0, 12, 2)]
        [300, 192, 122, 78, 60, 60]
        >>> Population(keep_elites=1.5)
        Traceback (most recent call last):
        ValueError: keep_elites must be in [0, 1], got 1.5.
    """

    noise_beta: float = 0.0
    decay: float = 1.0
    keep_elites: float = 0.0
    momentum: float = 0.0
    mean_last: bool = False

    def __post_init__(self):
        if not (math.isfinite(self.noise_beta) and self.noise_beta >= 0):
            raise ValueError(f"noise_beta must be a non-negative, finite number, got {self.noise_beta!r}.")
        if not (math.isfinite(self.decay) and self.decay >= 1):
            raise ValueError(f"decay must be a finite number of at least 1, got {self.decay!r}.")
        for name in ("keep_elites", "momentum"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}.")

    @classmethod
    def icem(cls, **changes) -> Population:
        """iCEM's (Pinneri et al., CoRL 2020): red noise, a population shrinking by 1.25, 30% of
        the elites kept, momentum 0.1, the mean among the last candidates; ``changes`` override."""
        settings = dict(noise_beta=2.0, decay=1.25, keep_elites=0.3, momentum=0.1, mean_last=True)
        return cls(**{**settings, **changes})

    def size(self, iteration: int, *, samples: int, top_k: int) -> int:
        """New candidates drawn at ``iteration`` (from 0)."""
        return max(int(samples * self.decay**-iteration), min(samples, 2 * top_k))

    def kept(self, top_k: int) -> int:
        """How many elites are carried over."""
        return math.ceil(self.keep_elites * top_k)


@dataclass
class Search:
    """What :func:`sample_search` leaves: the rounds run, the final mean ``[N, T, *A]`` and the last
    elites ``[N, k, T, *A]`` (best first)."""

    rounds: int
    mean: Tensor
    elites: Tensor


def sample_search(
    context: PlanContext,
    mean: Tensor,
    std: Tensor,
    *,
    iterations: int,
    samples: int,
    top_k: int,
    refit: Refit,
    best: BestPlan,
    population: Population = Population(),
    carried: Tensor | None = None,
    virtual: TensorDictBase | None = None,
    keep_mean: bool = False,
    history: Tensor | None = None,
    on_iteration: Callable[[int, Tensor, Tensor], None] | None = None,
) -> Search:
    """Up to ``iterations`` rounds of sampling around ``mean`` ``[N, T, *A]`` with spread ``std`` (same shape).

    Each round draws ``population.size(round)`` candidates per plan, ``mean + std * noise``
    inside the bounds (with ``keep_mean``, the first candidate is the mean itself; with
    ``population.mean_last``, at the last round), joined by the previous round's kept elites
    (by ``carried`` ``[N, k, T, *A]`` at the first), scores their rollouts in one batched serial
    rollout, offers each plan's best candidate to ``best`` (with ``virtual`` as its states;
    ``None`` takes the rollout's), writes its score to ``history[round]`` and refits the
    distribution to the ``top_k`` best with ``refit`` (keeping ``population.momentum`` of the
    old). Non-finite scores rank last. ``on_iteration(k, mean, best_score)`` is called after the
    ``k``-th refit. Stops early once ``best`` reached ``stop_distance`` or the plan is out of time.
    """
    n, horizon, action_shape = mean.shape[0], context.horizon, context.action_shape
    rows = torch.arange(n, device=mean.device)
    problems = {}  # the problem repeated per population size
    mean, std = mean[:, None], std[:, None]
    elites = carried
    for round_ in range(iterations):
        size = population.size(round_, samples=samples, top_k=top_k)
        noise = powerlaw_noise(
            (n, size, horizon, *action_shape),
            population.noise_beta,
            time_dim=2,
            generator=context.generator,
            device=context.device,
            dtype=mean.dtype,
        )
        if keep_mean or (population.mean_last and round_ == iterations - 1):
            noise[:, 0] = 0
        candidates = context.clamp(mean + std * noise)
        if elites is not None and elites.shape[1] > 0:
            candidates = torch.cat([candidates, elites.to(candidates.dtype)], dim=1)
        count = candidates.shape[1]
        if count not in problems:
            problems[count] = context.problem.repeat(count)
        scored = context.scored_rollout(candidates.reshape(n * count, horizon, *action_shape), problems[count])
        score = scored.score.reshape(n, count)
        ranked = torch.where(torch.isfinite(score), score, torch.full_like(score, math.inf))
        elite_scores, elite = ranked.topk(min(top_k, count), dim=1, largest=False)
        ranked_elites = candidates[rows[:, None], elite]
        winner = elite[:, 0]
        kept = rows * count + winner
        penalty = None if scored.penalty is None else scored.penalty[kept]
        best.offer(score[rows, winner], ranked_elites[:, 0], scored.states[kept], virtual, penalty)
        if history is not None:
            history[round_] = score[rows, winner]
        new_mean, new_std = refit(ranked_elites, elite_scores)
        if population.momentum:
            new_mean = population.momentum * mean + (1 - population.momentum) * new_mean
            new_std = population.momentum * std + (1 - population.momentum) * new_std
        mean, std = new_mean, new_std
        elites = ranked_elites[:, : population.kept(top_k)]
        if on_iteration is not None:
            on_iteration(round_ + 1, mean[:, 0], score[rows, winner])
        if context.reached(best) or (round_ + 1 < iterations and context.out_of_time()):
            return Search(round_ + 1, mean[:, 0], ranked_elites)
    return Search(iterations, mean[:, 0], ranked_elites)


class GoalCEMPlanner(GoalPlanner):
    """The cross-entropy method: sample action sequences, keep the best, refit a Gaussian to them.

    Defaults are DINO-WM's CEM on Push-T: 300 samples, the top 30, 30 iterations, from a mean
    of zero actions and a standard deviation of ``init_std`` (TorchRL's
    :class:`~torchrl.modules.planners.CEMPlanner` starts the same way). Candidates are ranked by
    the objective (see :mod:`torchrl_grasp.planners.sampling`); the plan returned is the best
    candidate seen, the final mean among them. A warm start replaces the initial mean by the
    previous plan shifted by the steps taken; the spread restarts at ``init_std``.

    Args:
        env (ModelBasedEnvBase): the world model, as for :class:`~torchrl_grasp.GRASPPlanner`.
        planning_horizon (int): :math:`T`.
        optim_steps (int, optional): iterations. Defaults to ``30``.
        num_candidates (int, optional): samples per iteration and plan. Defaults to ``300``.
        top_k (int, optional): elites. Defaults to ``30``.

    Keyword Args:
        init_std (float): the initial standard deviation of every action. Defaults to ``1.0``.
        population (Population): how each iteration's candidates are drawn; the default is
            CEM's, :meth:`Population.icem` is iCEM's (:class:`GoalICEMPlanner`). Kept elites
            carry over to the next plan through the warm start.
        goal_key, state_keys, action_key, num_restarts, warm_start, generator, stop_distance,
            time_budget, clock, reward_key, callback: as for
            :class:`~torchrl_grasp.planners.base.GoalPlanner`; the callback's ``"actions"`` is the
            sampling mean and its ``"loss"`` the iteration's best score, which ``loss_history``
            holds too. Out of time, the search stops after its current iteration.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import TransitionModelEnv
        >>> from torchrl_grasp.planners import GoalCEMPlanner
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> planner = GoalCEMPlanner(env, planning_horizon=10, optim_steps=10, num_candidates=100, top_k=10)
        >>> result = planner.plan(TensorDict(observation=torch.zeros(2), goal=torch.tensor([0.5, -0.3])))
        >>> result.actions.shape, bool(result.goal_distance < 0.05), result.model_calls  # 11 rollouts of 10 steps
        (torch.Size([10, 2]), True, 110)
    """

    def __init__(
        self,
        env: ModelBasedEnvBase,
        planning_horizon: int,
        optim_steps: int = 30,
        num_candidates: int = 300,
        top_k: int = 30,
        *,
        init_std: float = 1.0,
        population: Population = Population(),
        **options,
    ):
        super().__init__(env, planning_horizon, optim_steps, **options)
        check_positive_ints(num_candidates=num_candidates, top_k=top_k)
        if not isinstance(population, Population):
            raise TypeError(f"population must be a Population, got {type(population).__name__}.")
        if top_k < 2:
            raise ValueError(f"top_k must be at least 2 (the elites' spread needs two), got {top_k}.")
        if top_k > num_candidates:
            raise ValueError(f"top_k={top_k} exceeds num_candidates={num_candidates}.")
        if not init_std > 0:
            raise ValueError(f"init_std must be a positive float, got {init_std!r}.")
        self.num_candidates, self.top_k, self.init_std = num_candidates, top_k, init_std
        self.population = population
        self.refit: Refit = elite_mean

    def _solve(self, context: PlanContext) -> PlanResult:
        problem = context.problem
        actions = context.zero_actions()
        plan = TensorDict(actions=actions, batch_size=actions.shape[:2])
        kept = self.population.kept(self.top_k)
        if kept:  # elites [N, T, k, *A] in the plan, so that the warm start shifts them with it
            plan["elites"] = actions.unsqueeze(2).expand(*actions.shape[:2], kept, *actions.shape[2:])
        warm = self._warm_started(context, plan)
        mean = (plan if warm is None else warm)["actions"]
        carried = None if warm is None or not kept else warm["elites"].transpose(1, 2)
        history = mean.new_full((self.optim_steps, problem.num_plans), math.nan, dtype=problem.dtype)
        on_iteration = None
        if self.callback is not None:
            self.callback(0, self._view(context, actions=mean, loss=history[0]))

            def on_iteration(iteration, mean, score):
                self.callback(iteration, self._view(context, actions=mean, loss=score))

        best = BestPlan()
        with torch.no_grad():
            search = sample_search(
                context,
                mean,
                torch.full_like(mean, self.init_std),
                iterations=self.optim_steps,
                samples=self.num_candidates,
                top_k=self.top_k,
                refit=self.refit,
                best=best,
                population=self.population,
                carried=carried,
                history=history,
                on_iteration=on_iteration,
            )
            context.evaluate(search.mean, None, best)
        iterations = search.rounds
        history = history[:iterations]
        status = context.status(best)
        if not torch.isfinite(history).all():
            if not best.finite():
                raise ValueError(
                    "Every candidate's rollout scored NaN or infinite; check the world model and the "
                    "start and goal states."
                )
            warnings.warn(
                "Some plans' best candidate scored NaN or infinite at some iterations (every candidate "
                "of theirs did); returning the best finite plan found.",
                RuntimeWarning,
                stacklevel=3,
            )
            status = "non_finite"
        remember = {"elites": search.elites[:, :kept].transpose(1, 2)} if kept else {}
        return self._result(context, best, history, iterations, status, remember=remember)


class GoalMPPIPlanner(GoalCEMPlanner):
    r"""MPPI: the cross-entropy method with elites weighted by :math:`e^{-\tau\,\text{score}}`.

    The weights are a softmax over the elites' scores, so they stay finite for scores of any
    size. ``temperature`` is per unit of score (of distance to the goal, or of return), as
    TorchRL's; with ``relative_temperature=True`` it is per spread of the elites' scores (best 0,
    worst 1; :class:`ExponentialWeights`), which works at one setting for every task: per unit
    of a distance of a few tenths, ``temperature=1`` weighs the elites nearly uniformly.

    Args:
        env, planning_horizon, optim_steps, num_candidates, top_k: as for :class:`GoalCEMPlanner`
            (``top_k`` samples enter the weighted mean).

    Keyword Args:
        temperature (float): :math:`\tau`. Defaults to ``1.0``.
        relative_temperature (bool): ``temperature`` per spread of the elites' scores. Defaults
            to ``False`` (per unit of score).
        init_std and the rest: as for :class:`GoalCEMPlanner`.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import TransitionModelEnv
        >>> from torchrl_grasp.planners import GoalMPPIPlanner
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> planner = GoalMPPIPlanner(env, planning_horizon=10, optim_steps=10, num_candidates=100, top_k=10)
        >>> result = planner.plan(TensorDict(observation=torch.zeros(2), goal=torch.tensor([0.5, -0.3])))
        >>> bool(result.goal_distance < 0.05)
        True
    """

    def __init__(
        self,
        env: ModelBasedEnvBase,
        planning_horizon: int,
        optim_steps: int = 30,
        num_candidates: int = 300,
        top_k: int = 30,
        *,
        temperature: float = 1.0,
        relative_temperature: bool = False,
        **options,
    ):
        super().__init__(env, planning_horizon, optim_steps, num_candidates, top_k, **options)
        self.refit = ExponentialWeights(temperature, relative=relative_temperature)


class GoalICEMPlanner(GoalCEMPlanner):
    r"""iCEM (Pinneri et al., "Sample-efficient cross-entropy method for real-time planning", CoRL 2020).

    The cross-entropy method with the paper's improvements: action noise coloured in time
    (:math:`1/f^\beta`, ``noise_beta=2`` by default, whose smooth excursions explore where
    white noise jitters in place), a population that shrinks by ``population_decay`` per
    iteration (down to ``2 * top_k``), a fraction ``keep_elites`` of each iteration's elites
    carried into the next iteration and, shifted with the warm start, into the next plan, the
    mean among the last iteration's candidates, a ``momentum`` on the refit, and the best
    candidate seen as the plan. It is :class:`GoalCEMPlanner` with
    ``population=Population.icem(...)``; every option of the latter applies.

    Args:
        env, planning_horizon, optim_steps, num_candidates, top_k: as for :class:`GoalCEMPlanner`;
            ``num_candidates`` is the first iteration's population.

    Keyword Args:
        noise_beta (float): the colour of the noise. Defaults to ``2.0``.
        population_decay (float): the population's decay per iteration. Defaults to ``1.25``.
        keep_elites (float): the fraction of elites kept. Defaults to ``0.3``.
        momentum (float): the fraction of the old mean and spread kept by a refit. Defaults to ``0.1``.
        init_std (float): the initial standard deviation. Defaults to ``0.5``, the paper's for
            actions in ``[-1, 1]``.
        the rest: as for :class:`GoalCEMPlanner`.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import TransitionModelEnv
        >>> from torchrl_grasp.planners import GoalICEMPlanner
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> planner = GoalICEMPlanner(env, planning_horizon=10, optim_steps=10, num_candidates=100, top_k=10)
        >>> result = planner.plan(TensorDict(observation=torch.zeros(2), goal=torch.tensor([0.5, -0.3])))
        >>> bool(result.goal_distance < 0.05), planner.population.noise_beta
        (True, 2.0)
    """

    def __init__(
        self,
        env: ModelBasedEnvBase,
        planning_horizon: int,
        optim_steps: int = 30,
        num_candidates: int = 300,
        top_k: int = 30,
        *,
        noise_beta: float = 2.0,
        population_decay: float = 1.25,
        keep_elites: float = 0.3,
        momentum: float = 0.1,
        init_std: float = 0.5,
        **options,
    ):
        population = Population.icem(
            noise_beta=noise_beta, decay=population_decay, keep_elites=keep_elites, momentum=momentum
        )
        super().__init__(
            env, planning_horizon, optim_steps, num_candidates, top_k, init_std=init_std, population=population, **options
        )
