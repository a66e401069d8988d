"""GRASP: Gradient RelAxed Stochastic Planner, as a TorchRL MPC planner."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from tensordict import NestedKey
from torch import Tensor
from torchrl.envs.model_based import ModelBasedEnvBase

from torchrl_grasp.ops import collocation_loss
from torchrl_grasp.planners._common import BestPlan, PlanningProblem, PlanResult
from torchrl_grasp.planners.descent import descend, plan_variable
from torchrl_grasp.planners.base import GoalPlanner, check_positive_ints

Schedule = float | Callable[[int], float]
SYNC_MODES = ("gd", "cem", None)


def _value(schedule: Schedule, iteration: int) -> float:
    return float(schedule(iteration)) if callable(schedule) else float(schedule)


class GRASPPlanner(GoalPlanner):
    r"""GRASP planner (Psenka et al., 2026): virtual states optimised in parallel across time.

    For a start :math:`s_0`, a goal :math:`g` and a horizon :math:`T`, GRASP optimises actions
    :math:`a_{0..T-1}` and virtual states :math:`s_{1..T-1}` (:math:`s_T = g` on the goal's keys):

    .. math::

        L(s, a) = \sum_{t=0}^{T-1} \operatorname{mean}_d \big(F(\bar s_t, a_t) - s_{t+1}\big)^2
                  + \gamma \operatorname{mean}_d \big(F(\bar s_t, a_t) - g\big)^2

    with :math:`\bar s` the stop-gradient states, so only the action input of the world model
    is differentiated. Each iteration is ONE batched world-model call over all plans and time
    steps, the loss is :func:`torchrl_grasp.ops.collocation_loss`, Adam updates states
    (``lr_states``) and actions (``lr_actions``), Gaussian noise (``state_noise_std``) is added to
    the states, and actions are clamped to the action spec. Every ``sync_every`` iterations and
    at the end, a sync grounds the plan in the model's serial rollout: ``"gd"`` takes
    ``sync_steps`` Adam steps (lr ``sync_lr``) on :math:`\operatorname{mean}_d(F^T(s_0, a) - g)^2`;
    ``"cem"`` runs ``sync_steps`` CEM iterations around the current actions, with a per-step
    standard deviation ``sync_lr * drift_t / mean_t(drift_t)``, where ``drift_t`` is the RMS gap
    between the virtual state :math:`s_{t+1}` and the rollout's; ``None`` only evaluates the
    rollout. The plan returned is, per batch element, the best over restarts and over every
    evaluated rollout, by the distance of the rollout's last state to the goal.

    **Planning by reward.** With ``reward_key`` set and no goal in the input (TorchRL's
    Dreamer and PlaNet score plans by a learned reward), the goal term is replaced by the
    model's reward :math:`r` on the predicted states, written by the world model at
    ``reward_key`` (e.g. a :class:`~torchrl.modules.WorldModelWrapper`'s reward head):

    .. math::

        L(s, a) = \sum_{t=0}^{T-1} \operatorname{mean}_d \big(F(\bar s_t, a_t) - s_{t+1}\big)^2
                  - \lambda \sum_{t=0}^{T-1} r\big(F(\bar s_t, a_t)\big)

    with :math:`\lambda` = ``reward_weight``. The dynamics part still goes through the fused
    op and the reward reaches the actions through the model's action input only; no virtual
    state is pinned. Syncs take Adam steps on minus the serial rollout's return
    (:math:`-\sum_t r(s_{t+1})`), plans are ranked by that return, ``stop_distance`` does not
    apply, and :attr:`PlanResult.predicted_return` holds the best plan's return.

    Args:
        env (ModelBasedEnvBase): its ``world_model`` maps the state keys and the action to the
            next state keys. :class:`~torchrl_grasp.world_models.TransitionModelEnv` builds one
            from a plain network.
        planning_horizon (int): :math:`T`.
        optim_steps (int, optional): collocation iterations per plan. Defaults to ``300``.

    Keyword Args:
        goal_key (NestedKey): where the input holds the goal: a TensorDict with the state keys or
            a subset of them (only those enter the goal term), or a tensor when there is one
            state key. Defaults to ``"goal"``.
        state_keys (list of NestedKey, optional): the state; defaults to the keys the world model
            both reads and writes.
        action_key (NestedKey): Defaults to ``"action"``.
        lr_states (float): Adam learning rate of the virtual states. Defaults to ``0.1``.
        lr_actions (float): Adam learning rate of the actions. Defaults to ``0.005``.
        state_noise_std (float or callable): :math:`\sigma`, or a schedule ``iteration -> sigma``.
            Defaults to ``0.005``.
        goal_weight (float or callable): :math:`\gamma`, or a schedule. Defaults to ``1.0``.
        sync_every (int): iterations between syncs. Defaults to ``50``.
        sync_steps (int): Adam steps (``"gd"``) or CEM iterations (``"cem"``) per sync. Defaults to ``10``.
        sync_lr (float): Adam learning rate of a ``"gd"`` sync, base CEM std of a ``"cem"`` sync.
            Defaults to ``0.05``.
        sync_mode (str or None): ``"gd"``, ``"cem"`` or ``None``. Defaults to ``"gd"``.
        num_restarts (int): plans per batch element, with independent noise. Defaults to ``1``.
        restart_spread (float): restarts after the first start from the line to the goal bent by
            a random half sine whose amplitude has standard deviation ``restart_spread`` times
            the start-goal distance (per feature of the goal's keys), so that they try different
            routes. Defaults to ``0.5``.
        warm_start (bool): start from the previous call's best plan shifted by one step (per batch
            element whose goal is unchanged; dropped when the batch shape changes and by
            :meth:`reset`). Defaults to ``True``.
        generator (torch.Generator, optional): the only source of randomness; defaults to a new
            generator seeded with 0, so planning is deterministic.
        sync_cem_samples (int): CEM samples per plan. Defaults to ``64``.
        sync_cem_top_k (int): CEM elites. Defaults to ``8``.
        stop_distance (float, optional): stop at the first sync after which every batch element
            has a plan whose rollout ends within this distance of the goal. Defaults to ``None``:
            always run ``optim_steps``.
        reward_key (NestedKey, optional): where the world model writes its reward; with it set
            and no goal in the input, GRASP plans by reward (above). Defaults to ``None``.
        reward_weight (float): :math:`\lambda`. Defaults to ``1.0``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import GRASPPlanner, TransitionModelEnv
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> planner = GRASPPlanner(env, planning_horizon=20, optim_steps=100, lr_actions=0.05)
        >>> start = TensorDict(observation=torch.zeros(2), goal=torch.tensor([1.0, -0.5]))
        >>> result = planner.plan(start)
        >>> result.actions.shape, bool(result.goal_distance < 0.05)
        (torch.Size([20, 2]), True)
        >>> env.rollout(5, planner, tensordict=env.reset(start), auto_reset=False)["action"].shape
        torch.Size([5, 2])
    """

    def __init__(
        self,
        env: ModelBasedEnvBase,
        planning_horizon: int,
        optim_steps: int = 300,
        *,
        goal_key: NestedKey = "goal",
        state_keys: Sequence[NestedKey] | None = None,
        action_key: NestedKey = "action",
        lr_states: float = 0.1,
        lr_actions: float = 0.005,
        state_noise_std: Schedule = 0.005,
        goal_weight: Schedule = 1.0,
        sync_every: int = 50,
        sync_steps: int = 10,
        sync_lr: float = 0.05,
        sync_mode: str | None = "gd",
        num_restarts: int = 1,
        restart_spread: float = 0.5,
        warm_start: bool = True,
        generator: torch.Generator | None = None,
        sync_cem_samples: int = 64,
        sync_cem_top_k: int = 8,
        stop_distance: float | None = None,
        reward_key: NestedKey | None = None,
        reward_weight: float = 1.0,
    ):
        super().__init__(
            env,
            planning_horizon,
            optim_steps,
            goal_key=goal_key,
            state_keys=state_keys,
            action_key=action_key,
            num_restarts=num_restarts,
            warm_start=warm_start,
            generator=generator,
            stop_distance=stop_distance,
            reward_key=reward_key,
            reward_weight=reward_weight,
        )
        check_positive_ints(sync_every=sync_every, sync_cem_samples=sync_cem_samples, sync_cem_top_k=sync_cem_top_k)
        if sync_mode not in SYNC_MODES:
            raise ValueError(f"sync_mode must be one of {SYNC_MODES}, got {sync_mode!r}.")
        if not restart_spread >= 0:
            raise ValueError(f"restart_spread must be a non-negative float, got {restart_spread!r}.")
        if sync_cem_top_k > sync_cem_samples:
            raise ValueError(f"sync_cem_top_k={sync_cem_top_k} exceeds sync_cem_samples={sync_cem_samples}.")
        self.lr_states, self.lr_actions = lr_states, lr_actions
        self.state_noise_std, self.goal_weight = state_noise_std, goal_weight
        self.sync_every, self.sync_steps, self.sync_lr, self.sync_mode = sync_every, sync_steps, sync_lr, sync_mode
        self.sync_cem_samples, self.sync_cem_top_k = sync_cem_samples, sync_cem_top_k
        self.restart_spread = restart_spread

    # -- the optimisation -------------------------------------------------------------------

    def _plan(self, problem: PlanningProblem) -> PlanResult:
        actions, virtual = self._initial_plan(problem)
        optimizer = self._optimizer(actions, virtual)
        history = actions.new_full((self.optim_steps, problem.num_plans), math.nan, dtype=problem.start[0].dtype)
        best = BestPlan()
        if self.warm_start and self._previous is not None:
            # The shifted previous plan is a candidate, so a replan never returns a worse one.
            self._evaluate(problem, actions.detach(), virtual, best)
        last_check = 0
        for iteration in range(self.optim_steps):
            history[iteration] = self._iteration(problem, actions, virtual, optimizer, iteration)
            if iteration == 0 and not torch.isfinite(history[0]).all():
                raise ValueError(
                    "The world model returned NaN or infinite values on the initial plan; check the "
                    "model and the start and goal states."
                )
            if (iteration + 1) % self.sync_every == 0 or iteration + 1 == self.optim_steps:
                if not torch.isfinite(history[last_check : iteration + 1]).all():
                    self._recover(best, iteration)
                    break
                last_check = iteration + 1
                self._sync(problem, actions, virtual, best)
                if self._reached(problem, best):
                    history = history[: iteration + 1]
                    break
        return self._result(problem, best, history)

    def _optimizer(self, actions: Tensor, virtual: list[Tensor]) -> torch.optim.Optimizer:
        """Adam over the virtual states (``lr_states``) and the actions (``lr_actions``), one fused kernel."""
        groups = [{"params": virtual, "lr": self.lr_states}, {"params": [actions], "lr": self.lr_actions}]
        return torch.optim.Adam(groups, fused=actions.device.type in ("cpu", "cuda", "mps", "xpu"))

    def _iteration(self, problem, actions, virtual, optimizer, iteration: int) -> Tensor:
        """One GRASP iteration: the batched loss, its gradient on the plan, Adam, noise and bounds.

        Returns the loss per plan ``[N]`` (detached).
        """
        loss = self._collocation_loss(problem, virtual, actions, _value(self.goal_weight, iteration))
        descend(optimizer, loss, [*virtual, actions])
        self._perturb_and_project(problem, virtual, actions, _value(self.state_noise_std, iteration))
        return loss.detach()

    def _initial_plan(self, problem: PlanningProblem) -> tuple[Tensor, list[Tensor]]:
        r"""Zero (or warm-started) actions; virtual states on the line to the goal, or the rollout's.

        Restarts after the first bend the line by a half sine, :math:`\sin(\pi t / T)\,\delta`
        with :math:`\delta \sim N(0, (\text{restart\_spread}\,|g - s_0|)^2)` per feature, so
        that restarts explore different routes (around a wall on either side) instead of
        differing only by their noise.
        """
        actions = self._initial_actions(problem)
        horizon = self.planning_horizon
        fraction = torch.arange(1, horizon + 1, device=actions.device, dtype=problem.start[0].dtype) / horizon
        bend = torch.sin(math.pi * fraction)[:, None]
        first_restart = torch.arange(problem.num_plans, device=actions.device) % problem.restarts == 0
        virtual = []
        rollout = None
        for index, start in enumerate(problem.start):
            if index in problem.goal:
                goal = problem.goal[index]
                line = start[:, None] + fraction[:, None] * (goal - start)[:, None]
                if problem.restarts > 1 and self.restart_spread > 0:
                    amplitude = torch.randn(start.shape, generator=self.generator, device=start.device, dtype=start.dtype)
                    amplitude *= self.restart_spread * (goal - start).norm(dim=-1, keepdim=True)
                    amplitude[first_restart] = 0
                    line = line + bend * amplitude[:, None]
                virtual.append(line)
            else:
                if rollout is None:
                    with torch.no_grad():
                        rollout = self._rollout(problem, actions)
                virtual.append(rollout[index][:, 1:])
        actions, virtual = self._warm_started(problem, actions, virtual)
        return plan_variable(actions), [plan_variable(v) for v in virtual]

    def _collocation_loss(self, problem: PlanningProblem, virtual: list[Tensor], actions: Tensor, goal_weight: float):
        """One batched world-model call over all plans and steps, then the fused loss ``[N]``."""
        n, horizon = problem.num_plans, self.planning_horizon
        states_in = [
            torch.cat([start[:, None], self._state_input(v[:, :-1])], dim=1) for start, v in zip(problem.start, virtual)
        ]
        states_in, actions_in = problem.unflatten(states_in, horizon), actions.reshape(n * horizon, *self.action_shape)
        if problem.by_reward:
            predicted, reward = self.model_step.with_reward(states_in, actions_in)
            loss = -self.reward_weight * reward.reshape(n, horizon).sum(1)
        else:
            predicted, loss = self.model_step(states_in, actions_in), 0
        self._model_calls += 1
        for index, (pred, v) in enumerate(zip(predicted, virtual)):
            goal = problem.goal.get(index)
            loss = loss + collocation_loss(
                pred.reshape(n, horizon, -1), v, goal, goal_weight if goal is not None else 0.0
            )
        return loss

    @torch.no_grad()
    def _perturb_and_project(self, problem, virtual, actions, noise_std):
        for index, v in enumerate(virtual):
            if noise_std > 0:
                v.add_(torch.randn(v.shape, generator=self.generator, device=v.device, dtype=v.dtype), alpha=noise_std)
            if index in problem.goal:
                v[:, -1] = problem.goal[index]
        if self.bounds is not None:
            actions.clamp_(*self.bounds)

    def _state_input(self, virtual: Tensor) -> Tensor:
        """The world model's state input: the virtual states with their gradient stopped."""
        return virtual.detach()

    # -- syncs ------------------------------------------------------------------------------

    def _sync(self, problem, actions, virtual, best) -> None:
        if self.sync_mode == "gd":
            self._sync_gd(problem, actions, virtual, best)
        elif self.sync_mode == "cem":
            self._sync_cem(problem, actions, virtual, best)
        self._evaluate(problem, actions.detach(), virtual, best)

    def _sync_gd(self, problem, actions, virtual, best) -> None:
        """``sync_steps`` Adam steps on the serial loss; each step's rollout is also a candidate plan."""
        self._shoot(problem, actions, self.sync_steps, self.sync_lr, best, virtual)

    @torch.no_grad()
    def _sync_cem(self, problem, actions, virtual, best) -> None:
        """CEM around the actions, with a per-step std that grows where the virtual states drifted."""
        n, horizon, samples = problem.num_plans, self.planning_horizon, self.sync_cem_samples
        rollout = self._evaluate(problem, actions.detach(), virtual, best)
        drift = torch.stack([(v - x[:, 1:]).square().mean(-1) for v, x in zip(virtual, rollout)]).sum(0).sqrt()
        std = self.sync_lr * drift / (drift.mean(-1, keepdim=True) + 1e-8)
        std = std.reshape(n, 1, horizon, *[1] * len(self.action_shape)).expand(n, 1, horizon, *self.action_shape)
        mean = actions.detach()[:, None]
        repeated = PlanningProblem(
            problem.batch_shape,
            problem.restarts * samples,
            problem.state_keys,
            problem.feature_shapes,
            [x.repeat_interleave(samples, 0) for x in problem.start],
            {i: g.repeat_interleave(samples, 0) for i, g in problem.goal.items()},
        )
        for _ in range(self.sync_steps):
            noise = torch.randn((n, samples, horizon, *self.action_shape), generator=self.generator, device=mean.device)
            noise[:, 0] = 0  # the current mean is always a candidate
            candidates = self._clamp(mean + std * noise)
            trajectories, _, score = self._scored_rollout(
                repeated, candidates.reshape(n * samples, horizon, *self.action_shape)
            )
            distance = score.reshape(n, samples)
            elite = distance.topk(self.sync_cem_top_k, dim=1, largest=False).indices
            elites = candidates[torch.arange(n, device=mean.device)[:, None], elite]
            winner = elite[:, 0]
            rows = torch.arange(n, device=mean.device) * samples + winner
            best.offer(distance[torch.arange(n), winner], elites[:, 0], [x[rows] for x in trajectories], virtual)
            mean, std = elites.mean(1, keepdim=True), elites.std(1, keepdim=True)
        actions.copy_(mean[:, 0])
