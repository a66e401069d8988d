r"""Sampling planners: the cross-entropy method (CEM) and MPPI, scored by the package's objective.

Both run one search (:func:`sample_search`), written like TD-MPC2's ``_plan``: per plan, sample
``K`` action sequences around a mean, roll all of them out in one batched serial rollout, rank
them by the objective's score (the final distance to the goal, or minus the model's return;
:mod:`torchrl_grasp.objectives`), and refit the mean and the spread to the ``k`` best (the
elites). They differ in the refit only:

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

    Examples:
        >>> refit = ExponentialWeights(temperature=math.log(3))  # weights 3 : 1 for scores 0 and 1
        >>> elites = torch.tensor([[[[0.0]], [[4.0]]]])
        >>> mean, std = refit(elites, torch.tensor([[0.0, 1.0]]))
        >>> mean.flatten().tolist(), std.flatten().tolist()  # 0.25 * 4; sqrt(0.75 * 1 + 0.25 * 9)
        ([1.0], [1.7320507764816284])
        >>> ExponentialWeights(0.0)
        Traceback (most recent call last):
        ValueError: temperature must be a positive number, got 0.0.
    """

    temperature: float

    def __post_init__(self):
        if not math.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"temperature must be a positive number, got {self.temperature!r}.")

    def __call__(self, elites: Tensor, scores: Tensor) -> tuple[Tensor, Tensor]:
        # Non-finite scores (inf) get the lowest finite logit: weight 0, or uniform if all are.
        logits = torch.nan_to_num(-self.temperature * scores, neginf=torch.finfo(scores.dtype).min)
        weights = torch.softmax(logits, dim=1).reshape(*scores.shape, *[1] * (elites.ndim - 2))
        weights = weights.to(elites.dtype)
        mean = (weights * elites).sum(1, keepdim=True)
        std = (weights * (elites - mean).square()).sum(1, keepdim=True).sqrt()
        return mean, std


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
    virtual: TensorDictBase | None = None,
    keep_mean: bool = False,
    history: Tensor | None = None,
    on_iteration: Callable[[int, Tensor, Tensor], None] | None = None,
) -> tuple[int, Tensor]:
    """Up to ``iterations`` rounds of sampling around ``mean`` ``[N, T, *A]`` with spread ``std`` (same shape).

    Each round draws ``samples`` candidates per plan, ``mean + std * noise`` inside the bounds
    (with ``keep_mean``, the first candidate is the mean itself), scores their rollouts in one
    batched serial rollout, offers each plan's best candidate to ``best`` (with ``virtual`` as its
    states; ``None`` takes the rollout's), writes its score to ``history[round]`` and refits the
    distribution to the ``top_k`` best with ``refit``. Non-finite scores rank last.
    ``on_iteration(k, mean, best_score)`` is called after the ``k``-th refit. Returns the rounds
    run (fewer once ``best`` reached ``stop_distance``) and the last mean ``[N, T, *A]``.
    """
    n, horizon, action_shape = mean.shape[0], context.horizon, context.action_shape
    problem = context.problem.repeat(samples)
    rows = torch.arange(n, device=mean.device)
    mean, std = mean[:, None], std[:, None]
    for round_ in range(iterations):
        noise = context.normal((n, samples, horizon, *action_shape), dtype=mean.dtype)
        if keep_mean:
            noise[:, 0] = 0
        candidates = context.clamp(mean + std * noise)
        trajectories, _, score = context.scored_rollout(
            candidates.reshape(n * samples, horizon, *action_shape), problem
        )
        score = score.reshape(n, samples)
        ranked = torch.where(torch.isfinite(score), score, torch.full_like(score, math.inf))
        elite_scores, elite = ranked.topk(top_k, dim=1, largest=False)
        elites = candidates[rows[:, None], elite]
        winner = elite[:, 0]
        best.offer(score[rows, winner], elites[:, 0], trajectories[rows * samples + winner], virtual)
        if history is not None:
            history[round_] = score[rows, winner]
        mean, std = refit(elites, elite_scores)
        if on_iteration is not None:
            on_iteration(round_ + 1, mean[:, 0], score[rows, winner])
        if context.reached(best):
            return round_ + 1, mean[:, 0]
    return iterations, mean[:, 0]


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
        goal_key, state_keys, action_key, num_restarts, warm_start, generator, stop_distance,
            reward_key, callback: as for :class:`~torchrl_grasp.planners.base.GoalPlanner`; the
            callback's ``"actions"`` is the sampling mean and its ``"loss"`` the iteration's best
            score, which ``loss_history`` holds too.

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
        **options,
    ):
        super().__init__(env, planning_horizon, optim_steps, **options)
        check_positive_ints(num_candidates=num_candidates, top_k=top_k)
        if top_k < 2:
            raise ValueError(f"top_k must be at least 2 (the elites' spread needs two), got {top_k}.")
        if top_k > num_candidates:
            raise ValueError(f"top_k={top_k} exceeds num_candidates={num_candidates}.")
        if not init_std > 0:
            raise ValueError(f"init_std must be a positive float, got {init_std!r}.")
        self.num_candidates, self.top_k, self.init_std = num_candidates, top_k, init_std
        self.refit: Refit = elite_mean

    def _solve(self, context: PlanContext) -> PlanResult:
        problem = context.problem
        actions = context.zero_actions()
        plan = TensorDict(actions=actions, batch_size=actions.shape[:2])
        warm = self._warm_started(context, plan)
        mean = (plan if warm is None else warm)["actions"]
        history = mean.new_full((self.optim_steps, problem.num_plans), math.nan, dtype=problem.dtype)
        on_iteration = None
        if self.callback is not None:
            self.callback(0, self._view(context, actions=mean, loss=history[0]))

            def on_iteration(iteration, mean, score):
                self.callback(iteration, self._view(context, actions=mean, loss=score))

        best = BestPlan()
        with torch.no_grad():
            iterations, mean = sample_search(
                context,
                mean,
                torch.full_like(mean, self.init_std),
                iterations=self.optim_steps,
                samples=self.num_candidates,
                top_k=self.top_k,
                refit=self.refit,
                best=best,
                history=history,
                on_iteration=on_iteration,
            )
            context.evaluate(mean, None, best)
        history = history[:iterations]
        status = "reached" if context.reached(best) else "completed"
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
        return self._result(context, best, history, iterations, status)


class GoalMPPIPlanner(GoalCEMPlanner):
    r"""MPPI: the cross-entropy method with elites weighted by :math:`e^{-\tau\,\text{score}}`.

    The weights are a softmax over the elites' scores, so they stay finite for scores of any
    size. ``temperature`` is per unit of score: of distance to the goal, or of return.

    Args:
        env, planning_horizon, optim_steps, num_candidates, top_k: as for :class:`GoalCEMPlanner`
            (``top_k`` samples enter the weighted mean).

    Keyword Args:
        temperature (float): :math:`\tau`. Defaults to ``1.0``.
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
        **options,
    ):
        super().__init__(env, planning_horizon, optim_steps, num_candidates, top_k, **options)
        self.refit = ExponentialWeights(temperature)
