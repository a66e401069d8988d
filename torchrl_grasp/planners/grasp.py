"""GRASP: Gradient RelAxed Stochastic Planner, as a TorchRL MPC planner.

The algorithm reads top to bottom in :meth:`GRASPPlanner._solve`: the initial plan, then
collocation iterations (:func:`collocation_iteration`: one batched model call, the objective's
fused loss, one Adam step, noise on the states, projection), a sync every ``sync.every``
iterations (:mod:`torchrl_grasp.planners.syncs`), and the best plan over every rollout evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor
from torchrl.envs.model_based import ModelBasedEnvBase

from torchrl_grasp.objectives import GoalObjective, RewardObjective
from torchrl_grasp.planners.base import GoalPlanner, check_rates
from torchrl_grasp.planners.best import BestPlan
from torchrl_grasp.planners.compiled import CompiledForward
from torchrl_grasp.planners.context import PlanContext
from torchrl_grasp.planners.descent import descend, plan_variable
from torchrl_grasp.planners.noise import powerlaw_noise
from torchrl_grasp.planners.result import PlanResult
from torchrl_grasp.planners.schedules import Schedule, schedule_value
from torchrl_grasp.planners.state_steps import AdamStates, NewtonStates, StateStep, plan_optimizers
from torchrl_grasp.planners.syncs import _UNSET, CEMSync, GDSync, sync_from_legacy
from torchrl_grasp.world_models.step import WorldModelStep


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
    the states, and actions are clamped to the action spec. Every ``sync.every`` iterations and
    at the end, the sync grounds the plan in the model's serial rollout:
    :class:`~torchrl_grasp.planners.syncs.GDSync` takes Adam steps on
    :math:`\operatorname{mean}_d(F^T(s_0, a) - g)^2`;
    :class:`~torchrl_grasp.planners.syncs.CEMSync` runs CEM around the current actions;
    ``None`` only evaluates the rollout, at the end. The plan returned is, per batch element,
    the best over restarts and over every evaluated rollout, by the distance of the rollout's
    last state to the goal.

    **Planning by reward.** With ``reward_key`` set and no goal in the input (TorchRL's
    Dreamer and PlaNet score plans by a learned reward), the goal term is replaced by the
    model's reward :math:`r` on the predicted states, written by the world model at
    ``reward_key`` (e.g. a :class:`~torchrl.modules.WorldModelWrapper`'s reward head):

    .. math::

        L(s, a) = \sum_{t=0}^{T-1} \operatorname{mean}_d \big(F(\bar s_t, a_t) - s_{t+1}\big)^2
                  - \lambda \sum_{t=0}^{T-1} r\big(F(\bar s_t, a_t)\big)

    with :math:`\lambda` = ``reward_weight``. The dynamics part still goes through the fused
    op, with its stop-gradient; the reward's gradient reaches the actions and, one step through
    the model's state input, the virtual states (an action's reward often comes a step or more
    after it, through the state it sets: without this the plan would be myopic); no virtual
    state is pinned. Syncs take Adam steps on minus the serial rollout's return
    (:math:`-\sum_t r(s_{t+1})`), plans are ranked by that return, ``stop_distance`` does not
    apply, and :attr:`PlanResult.predicted_return` holds the best plan's return
    (:class:`~torchrl_grasp.objectives.RewardObjective`).

    Args:
        env (ModelBasedEnvBase): its ``world_model`` maps the state keys and the action to the
            next state keys. :class:`~torchrl_grasp.world_models.TransitionModelEnv` builds one
            from a plain network.
        planning_horizon (int): :math:`T`, unless :meth:`plan` is given another.
        optim_steps (int, optional): collocation iterations per plan. Defaults to ``300``.

    Keyword Args:
        lr_states (float): Adam learning rate of the virtual states, short for
            ``state_step=AdamStates(lr_states)``. Defaults to ``0.1``.
        state_step (AdamStates or NewtonStates, optional): how the virtual states move each
            iteration (:mod:`torchrl_grasp.planners.state_steps`): Adam at ``lr`` (in the
            state's units, or with ``unit="step"`` in the plan's step length), or
            :class:`~torchrl_grasp.planners.NewtonStates`, which moves each state ``damping`` of
            the way to the model's prediction of it, whatever the state's units. Defaults to
            ``AdamStates(lr_states)``; pass one or the other, not both.
        lr_actions (float): Adam learning rate of the actions. Defaults to ``0.005``. ``0``
            leaves the actions to the syncs (an ablation: what the collocation adds is the
            difference); it needs a ``sync``.
        state_noise_std (float or callable): :math:`\sigma`, or a schedule ``iteration -> sigma``
            (:class:`~torchrl_grasp.planners.SyncPhaseDecay`, the authors' decay within each sync
            phase). Defaults to ``0.005``, the method's: on a point mass at the default
            ``lr_states`` it speeds convergence (after 100 iterations 69 of 96 goals reached
            against 46 without it); on the benchmark's worlds it bought no success
            (``docs/benchmarks.md``, "Which of GRASP's ingredients earn their place").
        state_noise_unit (str): what :math:`\sigma` is measured in: ``"state"``, the state's own
            units (the method's); ``"step"``, the plan's step length, so that the same
            :math:`\sigma` suits states of any scale: on a key with a goal,
            :math:`\lVert g - s_0 \rVert / T` (the straight line's step), on one without, the
            mean step of the initial virtual states. Defaults to ``"state"``.
        state_noise_beta (float): the noise's colour along the horizon: ``0`` white (independent
            per step, the method's), ``2`` red (correlated in time, as iCEM's samples:
            :func:`~torchrl_grasp.planners.noise.powerlaw_noise`), at the same standard deviation.
            Defaults to ``0.0``.
        reset_optimizer_at_sync (bool): rebuild the optimisers after every sync (fresh Adam
            moments for the synced actions and the states, as the authors' solver does) instead
            of keeping their moments across it. Defaults to ``False``.
        goal_weight (float or callable): :math:`\gamma`, or a schedule. Defaults to ``1.0``.
        sync (GDSync, ParallelGDSync, CEMSync or None): the periodic sync. Defaults to ``GDSync()``:
            every 50 iterations, 10 Adam steps at lr 0.05; ``ParallelGDSync()`` takes the same
            steps with rollouts computed in parallel over time.
        stop_gradient (bool): stop the gradient at the model's state input, GRASP's first
            ingredient; ``False`` gives plain collocation's full gradient
            (:class:`~torchrl_grasp.CollocationPlanner`). Defaults to ``True``.
        num_restarts (int): plans per batch element, with independent noise. Defaults to ``1``.
        restart_spread (float): restarts after the first start from the line to the goal bent by
            a random half sine whose amplitude has standard deviation ``restart_spread`` times
            the start-goal distance (per feature of the goal's keys), so that they try different
            routes. Defaults to ``0.5``.
        restart_beta (float, optional): bend the restarts by coloured noise of this exponent along
            the horizon (``2``: red, iCEM's) times the half sine, so that each bends several times
            at its own places, instead of by one arc; the same standard deviation at mid-horizon.
            Defaults to ``None``: the half sine's arc.
        warm_start (bool): start from the previous call's best plan shifted by one step (per batch
            element whose goal is unchanged; dropped when the batch shape changes and by
            :meth:`reset`). Defaults to ``True``.
        generator (torch.Generator, optional): the only source of randomness; defaults to a new
            generator seeded with 0, so planning is deterministic.
        stop_distance (float, optional): stop at the first sync after which every batch element
            has a plan whose rollout ends within this distance of the goal. Defaults to ``None``:
            always run ``optim_steps``.
        time_budget (float, optional), clock (callable): seconds of ``clock`` per plan: at the
            first iteration boundary past them GRASP evaluates its actions (without a sync; a sync
            under way stops at its next step) and returns the best plan found, with
            ``status == "deadline"`` (see :class:`~torchrl_grasp.planners.base.GoalPlanner`).
            Under a deadline the initial plan is evaluated first: a candidate, and the time an
            evaluation takes, kept in reserve. Defaults to ``None``: no deadline.
        reward_key (NestedKey, optional): where the world model writes its reward; with it set
            and no goal in the input, GRASP plans by reward (above). Defaults to ``None``.
        reward_weight (float): :math:`\lambda`. Defaults to ``1.0``.
        callback (callable, optional): ``callback(iteration, plan)`` with the plan after
            ``iteration`` collocation iterations (``0``: the initial plan): its ``"actions"``,
            ``"virtual_states"`` and ``"loss"`` (see :data:`~torchrl_grasp.planners.base.Callback`).
            Defaults to ``None``.
        model_samples (int), mean_keys (mapping): for a stochastic world model, plan on the
            average of ``model_samples`` draws, or on the mean the model writes at ``mean_keys``
            (see :class:`~torchrl_grasp.planners.base.GoalPlanner`; the model's noise is fixed
            within a plan either way).
        penalty_weight (float), penalty_key (NestedKey): :math:`\beta` and where the model writes
            a penalty such as an ensemble's disagreement (``"disagreement"``): the collocation
            loss, the syncs and the ranking add :math:`\beta` times its sum along the plan, and
            its gradient reaches the virtual states as a reward's does (see
            :class:`~torchrl_grasp.planners.base.GoalPlanner`). Defaults to ``0.0``: none.
        compile (bool): compile each iteration's model call and loss (:func:`collocation_forward`)
            with ``torch.compile``, once per shape: the first plan of a shape pays the compilation
            (seconds), the next ones reuse it. Needs a constant ``goal_weight``; by reward or with a
            penalty the iteration stays eager
            (:class:`~torchrl_grasp.planners.compiled.CompiledForward`). Whether it is faster
            depends on the model and the device (``docs/benchmarks.md``, eager against compiled).
            Defaults to ``False``.
        sync_mode, sync_every, sync_steps, sync_lr, sync_cem_samples, sync_cem_top_k: deprecated,
            with a ``DeprecationWarning`` that names the ``sync=`` to pass instead.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import GRASPPlanner, TransitionModelEnv
        >>> from torchrl_grasp.planners.syncs import GDSync
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> planner = GRASPPlanner(env, planning_horizon=20, optim_steps=100, lr_actions=0.05, sync=GDSync(every=25))
        >>> start = TensorDict(observation=torch.zeros(2), goal=torch.tensor([1.0, -0.5]))
        >>> result = planner.plan(start)
        >>> result.actions.shape, bool(result.goal_distance < 0.05), result.status
        (torch.Size([20, 2]), True, 'completed')
        >>> env.rollout(5, planner, tensordict=env.reset(start), auto_reset=False)["action"].shape
        torch.Size([5, 2])
    """

    def __init__(
        self,
        env: ModelBasedEnvBase,
        planning_horizon: int,
        optim_steps: int = 300,
        *,
        lr_states: float | None = None,
        state_step: StateStep | None = None,
        lr_actions: float = 0.005,
        state_noise_std: Schedule = 0.005,
        state_noise_unit: str = "state",
        state_noise_beta: float = 0.0,
        reset_optimizer_at_sync: bool = False,
        goal_weight: Schedule = 1.0,
        sync: GDSync | CEMSync | None = GDSync(),
        stop_gradient: bool = True,
        restart_spread: float = 0.5,
        restart_beta: float | None = None,
        sync_mode=_UNSET,
        sync_every: int | None = None,
        sync_steps: int | None = None,
        sync_lr: float | None = None,
        sync_cem_samples: int | None = None,
        sync_cem_top_k: int | None = None,
        compile: bool = False,
        **options,
    ):
        super().__init__(env, planning_horizon, optim_steps, **options)
        if compile and callable(goal_weight):
            raise ValueError(
                "compile=True needs a constant goal_weight: a schedule gives the compiled loss a new "
                "float each iteration, and torch.compile would recompile for each. Pass a float, or "
                "compile=False."
            )
        self.compiles_iteration = bool(compile)  # (``compile`` itself is nn.Module's method)
        self.collocation_forward = (
            CompiledForward(self.model_step.module, collocation_forward) if compile else collocation_forward
        )
        sync = sync_from_legacy(
            sync,
            sync_mode=sync_mode,
            sync_every=sync_every,
            sync_steps=sync_steps,
            sync_lr=sync_lr,
            sync_cem_samples=sync_cem_samples,
            sync_cem_top_k=sync_cem_top_k,
        )
        if sync is not None and not isinstance(sync, (GDSync, CEMSync)):
            raise ValueError(f"sync must be a GDSync, a CEMSync or None, got {sync!r}.")
        if not restart_spread >= 0:
            raise ValueError(f"restart_spread must be a non-negative float, got {restart_spread!r}.")
        if state_step is not None and lr_states is not None:
            raise ValueError(
                f"Pass lr_states or state_step, not both: lr_states={lr_states!r} is short for "
                f"state_step=AdamStates(lr={lr_states!r}), and state_step={state_step!r} was given."
            )
        if state_noise_unit not in ("state", "step"):
            raise ValueError(f"state_noise_unit must be 'state' or 'step', got {state_noise_unit!r}.")
        if state_step is None:
            check_rates(positive=dict(lr_states=0.1 if lr_states is None else lr_states))
            state_step = AdamStates(0.1 if lr_states is None else lr_states)
        if not isinstance(state_step, (AdamStates, NewtonStates)):
            raise TypeError(f"state_step must be an AdamStates or a NewtonStates, got {state_step!r}.")
        check_rates(
            non_negative=dict(
                lr_actions=lr_actions,
                state_noise_std=state_noise_std,
                goal_weight=goal_weight,
                state_noise_beta=state_noise_beta,
            ),
        )
        if lr_actions == 0 and sync is None:
            raise ValueError(
                "lr_actions=0 leaves the actions to the syncs, and sync=None has none: nothing would "
                "move the actions. Pass a positive lr_actions or a sync (GDSync(), CEMSync())."
            )
        self.state_step, self.lr_actions = state_step, lr_actions
        self.state_noise_std, self.state_noise_beta = state_noise_std, state_noise_beta
        self.state_noise_unit = state_noise_unit
        self.goal_weight, self.reset_optimizer_at_sync = goal_weight, reset_optimizer_at_sync
        if restart_beta is not None:
            check_rates(non_negative=dict(restart_beta=restart_beta))
        self.sync, self.stop_gradient, self.restart_spread = sync, stop_gradient, restart_spread
        self.restart_beta = restart_beta

    # -- the algorithm -----------------------------------------------------------------------

    def _solve(self, context: PlanContext) -> PlanResult:
        plan, warm_started = self._initial_plan(context)
        actions, virtual = plan["actions"], plan["virtual_states"]
        leaves = [virtual.get(key) for key in context.problem.state_keys]  # the optimiser's, read once
        in_steps = self.state_step.needs_step_lengths or self.state_noise_unit == "step"
        lengths = step_lengths(context, leaves) if in_steps else None
        optimizer = self.optimizer(plan, lengths)
        noise_scales = lengths if self.state_noise_unit == "step" else None
        history = actions.new_full(
            (self.optim_steps, context.problem.num_plans), math.nan, dtype=context.problem.dtype
        )
        best = BestPlan()
        if warm_started or context.deadline.bounded:
            # The shifted previous plan is a candidate, so a replan never returns a worse one. Under
            # a deadline the initial plan is one too (a plan stopped at once returns it), and its
            # rollout, timed, is the reserve kept for the evaluation that ends the plan: without it
            # the first check could not know that a rollout costs more than an iteration.
            context.evaluate(actions.detach(), virtual, best)
        every = self.sync.every if self.sync is not None else self.optim_steps
        last_check, status, iterations = 0, "completed", self.optim_steps
        if self.callback is not None:
            self.callback(0, self._view(context, actions=actions, virtual_states=virtual, loss=history[0]))
        for iteration in range(self.optim_steps):
            history[iteration] = collocation_iteration(
                context,
                actions,
                leaves,
                optimizer,
                goal_weight=schedule_value(self.goal_weight, iteration),
                noise_std=schedule_value(self.state_noise_std, iteration),
                noise_beta=self.state_noise_beta,
                noise_scales=noise_scales,
                stop_gradient=self.stop_gradient,
                forward=self.collocation_forward,
            )
            if self.callback is not None:
                self.callback(
                    iteration + 1,
                    self._view(context, actions=actions, virtual_states=virtual, loss=history[iteration]),
                )
            if iteration == 0 and not torch.isfinite(history[0]).all():
                raise ValueError(
                    "The world model returned NaN or infinite values on the initial plan; check the "
                    "model and the start and goal states."
                )
            last = iteration + 1 == self.optim_steps
            out_of_time = not last and context.out_of_time()  # then evaluate, without the sync
            if (iteration + 1) % every == 0 or last or out_of_time:
                if not torch.isfinite(history[last_check : iteration + 1]).all():
                    self._recover(best, iteration)
                    status, iterations = "non_finite", iteration + 1
                    break
                last_check = iteration + 1
                if self.sync is not None and not out_of_time:
                    self.sync(context, actions, virtual, best)  # stops early once out of time
                    if self.reset_optimizer_at_sync:
                        optimizer = self.optimizer(plan, lengths)
                if self.sync is not None:
                    self.sync.evaluate(context, actions, virtual, best)
                else:
                    context.evaluate(actions.detach(), virtual, best)
                if context.reached(best) or context.stopped_by_deadline:
                    status, iterations = context.status(best), iteration + 1
                    break
        return self._result(context, best, history[:iterations], iterations, status)

    @property
    def lr_states(self) -> float | None:
        """The states' Adam learning rate; ``None`` when they take :class:`NewtonStates` steps."""
        return self.state_step.lr if isinstance(self.state_step, AdamStates) else None

    def optimizer(
        self, plan: TensorDictBase, step_lengths: Sequence[Tensor] | None = None
    ) -> list[torch.optim.Optimizer]:
        """The optimisers of a plan (for :func:`~torchrl_grasp.planners.descent.descend`): the
        ``state_step``'s on its virtual states and Adam at ``lr_actions`` on its actions, fused
        where torch has it (:func:`~torchrl_grasp.planners.state_steps.plan_optimizers`); each
        key's ``step_lengths`` (:func:`step_lengths`) scale the states' steps of
        ``AdamStates(unit="step")``."""
        return plan_optimizers(
            self.state_step,
            list(plan["virtual_states"].values(True, True)),
            plan["actions"],
            self.lr_actions,
            step_lengths,
        )

    def _initial_plan(self, context: PlanContext) -> tuple[TensorDictBase, bool]:
        r"""Zero (or warm-started) actions; virtual states on the line to the goal, or the rollout's.

        Restarts after the first bend the line by a half sine, :math:`\sin(\pi t / T)\,\delta`
        with :math:`\delta \sim N(0, (\text{restart\_spread}\,|g - s_0|)^2)` per feature, so
        that restarts explore different routes (around a wall on either side) instead of
        differing only by their noise. Returns a TensorDict ``[N, T]`` of contiguous leaves
        for the optimiser, ``"actions"`` and ``"virtual_states"`` (the user's state keys), and
        whether it was warm-started.
        """
        problem, horizon = context.problem, context.horizon
        actions = context.zero_actions()
        fraction = torch.arange(1, horizon + 1, device=context.device, dtype=problem.dtype) / horizon
        virtual, rollout = {}, None
        for key, start, goal in zip(problem.state_keys, problem.start_leaves, problem.objective.goal_leaves):
            if goal is None:
                if rollout is None:
                    with torch.no_grad():
                        rollout = context.rollout(actions).states
                virtual[key] = rollout.get(key)[:, 1:]
                continue
            to_goal = (goal - start).unsqueeze(1)
            line = start.unsqueeze(1) + _along_time(fraction, to_goal) * to_goal
            if problem.restarts > 1 and self.restart_spread > 0:
                spread = self.restart_spread * (goal - start).flatten(1).norm(dim=-1).reshape(
                    -1, *[1] * (start.ndim - 1)
                )
                if self.restart_beta is None:  # one arc: the same bend at every step
                    bend = context.normal(start.shape, dtype=start.dtype).unsqueeze(1)
                else:
                    bend = powerlaw_noise(
                        line.shape,
                        self.restart_beta,
                        time_dim=1,
                        generator=context.generator,
                        device=context.device,
                        dtype=start.dtype,
                    )
                bend = bend * (spread * (~problem.first_restarts()).reshape(spread.shape)).unsqueeze(1)
                line = line + _along_time(torch.sin(math.pi * fraction), to_goal) * bend
            virtual[key] = line
        plan = TensorDict(
            actions=actions,
            virtual_states=TensorDict(virtual, batch_size=[problem.num_plans, horizon]),
            batch_size=[problem.num_plans, horizon],
        )
        warm = self._warm_started(context, plan)
        return (plan if warm is None else warm).apply(plan_variable), warm is not None


def step_lengths(context: PlanContext, leaves: Sequence[Tensor]) -> list[Tensor]:
    r"""Per state key, each plan's step length ``[N, 1, *1]``: :math:`\lVert g - s_0 \rVert / T` on a
    key with a goal, else the mean distance between consecutive states of ``leaves`` (from the start).

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import GRASPPlanner, TransitionModelEnv
        >>> env = TransitionModelEnv(torch.nn.Identity(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> planner = GRASPPlanner(env, 10)
        >>> context = planner.make_context(TensorDict(observation=torch.zeros(2), goal=torch.tensor([3.0, 4.0])))
        >>> step_lengths(context, [torch.zeros(1, 10, 2)])[0].flatten()  # |g - s_0| / T = 5 / 10
        tensor([0.5000])
    """
    problem, scales = context.problem, []
    for start, goal, states in zip(problem.start_leaves, problem.objective.goal_leaves, leaves):
        if goal is not None:
            length = (goal - start).flatten(1).norm(dim=-1) / context.horizon
        else:
            path = torch.cat([start.unsqueeze(1), states.detach()], dim=1)
            length = path.diff(dim=1).flatten(2).norm(dim=-1).mean(-1)
        scales.append(length.reshape(-1, *[1] * (states.ndim - 1)))
    return scales


def collocation_iteration(
    context: PlanContext,
    actions: Tensor,
    leaves: Sequence[Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    goal_weight: float,
    noise_std: float,
    noise_beta: float = 0.0,
    noise_scales: Sequence[Tensor] | None = None,
    stop_gradient: bool = True,
    forward: Callable[..., CollocationForward] | None = None,
) -> Tensor:
    """One GRASP iteration on the plan ``actions`` ``[N, T, *A]`` and ``leaves`` (the virtual states'
    leaves ``[N, T, *F_k]`` in the problem's state-key order), in place: the batched model call, the
    objective's collocation loss, one step of the ``optimizer`` (one or a sequence, see
    :func:`~torchrl_grasp.planners.descent.descend`), noise of standard deviation ``noise_std``
    coloured with ``noise_beta`` along the horizon (times each key's ``noise_scales``, per plan, if
    given), and bounds. No TensorDict is read here.

    By reward (``objective.uses_reward``) or with a penalty (``objective.uses_penalty``), the
    step cost's gradient also reaches the virtual states, one step through the model's state
    input: the dynamics term's gradient stops there (GRASP's stop-gradient), the step cost's
    does not, so each virtual state climbs the next step's reward (or leaves where the model is
    unsure) and the dynamics term pulls the actions after it. Without it the cost reaches the
    actions one step ahead only, and the plan is myopic (``docs/tuning.md``, reward section). It
    costs a second backward pass of the same graph.

    ``forward`` is :func:`collocation_forward` (the default) or its compiled version
    (``GRASPPlanner(compile=True)``). Returns the loss per plan ``[N]`` (detached).
    """
    forward = forward or collocation_forward
    problem = context.problem
    inputs = [
        torch.cat([start.unsqueeze(1), states[:, :-1].detach() if stop_gradient else states[:, :-1]], dim=1)
        for start, states in zip(problem.start_leaves, leaves)
    ]
    objective = problem.objective
    cost_to_states = stop_gradient and objective.has_step_cost
    if cost_to_states:
        # leaves of their own: the step cost's path to the states
        inputs = [x.requires_grad_() for x in inputs]
    context.count_call(actions)
    context.model_step.reseed()
    if cost_to_states:  # two backward passes through one graph: eager (see CompiledForward)
        forward = collocation_forward
    loss, rewards, penalties, done = forward(
        objective, context.model_step, inputs, actions, leaves, goal_weight
    )
    added = None
    if cost_to_states:
        step_cost = objective.step_cost(rewards, penalties, done).sum()
        if step_cost.requires_grad:  # (else descend says the model is not differentiable)
            through = torch.autograd.grad(step_cost, inputs, retain_graph=True, allow_unused=True)
            added = [*map(_onto_virtual_states, through), None]  # nothing added to the actions' gradient
    descend(optimizer, loss, [*leaves, actions], added)
    with torch.no_grad():
        for index, (states, goal) in enumerate(zip(leaves, problem.objective.goal_leaves)):
            if noise_std > 0:
                noise = powerlaw_noise(
                    states.shape,
                    noise_beta,
                    time_dim=1,
                    generator=context.generator,
                    device=context.device,
                    dtype=states.dtype,
                )
                if noise_scales is not None:
                    noise *= noise_scales[index]
                states.add_(noise, alpha=noise_std)
            if goal is not None:
                states[:, -1] = goal
        actions.copy_(context.clamp(actions))
    return loss.detach()


class CollocationForward(NamedTuple):
    """What :func:`collocation_forward` returns: the loss per plan ``[N]`` and the model's rewards,
    penalties and done flags ``[N, T]`` (each ``None`` where the objective needs none or the model writes none)."""

    loss: Tensor
    rewards: Tensor | None
    penalties: Tensor | None
    done: Tensor | None


def collocation_forward(
    objective: GoalObjective | RewardObjective,
    model_step: WorldModelStep,
    inputs: Sequence[Tensor],
    actions: Tensor,
    leaves: Sequence[Tensor],
    goal_weight: float,
) -> CollocationForward:
    """The iteration's batched world-model call on the state ``inputs`` ``[N, T, *F_k]`` (the start and
    the virtual states ``s_0 .. s_{T-1}``) and ``actions`` ``[N, T, *A]``, and the ``objective``'s
    collocation loss against the virtual states' ``leaves`` ``[N, T, *F_k]``: the
    :class:`CollocationForward`.

    The part of an iteration that ``GRASPPlanner(compile=True)`` compiles: tensors in, tensors out,
    nothing read from or written to the plan call's Python state (the call is counted and the model's
    noise seeded before it), so one compilation serves every plan of the same shapes.

    Examples:
        >>> from torchrl_grasp.objectives import GoalObjective
        >>> from torchrl_grasp.world_models.step import WorldModelStep
        >>> from tensordict.nn import TensorDictModule
        >>> model = TensorDictModule(lambda s, a: s + a, in_keys=["s", "action"], out_keys=["s"])
        >>> objective = GoalObjective(TensorDict(s=torch.ones(1, 2), batch_size=[1]), ["s"])
        >>> virtual = torch.ones(1, 3, 2)  # s_1 .. s_3, already at the goal
        >>> inputs = [torch.cat([torch.zeros(1, 1, 2), virtual[:, :-1]], dim=1)]
        >>> forward = collocation_forward(objective, WorldModelStep(model, ["s"], "action"), inputs,
        ...                               torch.zeros(1, 3, 2), [virtual], goal_weight=1.0)
        >>> forward.loss  # s_0 + a_0 = 0 misses s_1 = 1 (1) and the goal (1); the other steps are exact
        tensor([2.])
    """
    n, horizon = actions.shape[:2]
    prediction = objective.step(
        model_step, [x.flatten(0, 1) for x in inputs], actions.flatten(0, 1), reseed=False
    )
    done = None if prediction.done is None else prediction.done.reshape(n, horizon)
    rewards = None if prediction.reward is None else prediction.reward.reshape(n, horizon)
    penalties = None if prediction.penalty is None else prediction.penalty.reshape(n, horizon)
    loss = objective.collocation_loss(
        [pred.reshape(n, horizon, -1) for pred in prediction.states],
        [states.reshape(n, horizon, -1) for states in leaves],
        rewards,
        goal_weight,
        done,
        penalties,
    )
    return CollocationForward(loss, rewards, penalties, done)


def _onto_virtual_states(gradient: Tensor | None) -> Tensor | None:
    """A gradient w.r.t. the model's state inputs ``[N, T, *F]`` (``s_0 .. s_{T-1}``) as one w.r.t. the
    virtual states ``s_1 .. s_T``: shifted by one step, zero for ``s_T`` (``None`` stays ``None``)."""
    if gradient is None:
        return None
    return torch.cat([gradient[:, 1:], torch.zeros_like(gradient[:, :1])], dim=1)


def _along_time(values: Tensor, like: Tensor) -> Tensor:
    """``values`` ``[T]`` shaped to broadcast against ``[N, 1, *F]`` along its time dim: ``[T, 1, ...]``."""
    return values.reshape(-1, *[1] * (like.ndim - 2))
