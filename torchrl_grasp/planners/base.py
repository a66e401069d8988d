"""The TorchRL side of every planner of this package: specs, keys, the first action, warm start, result."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence

import torch
from tensordict import NestedKey, TensorDict, TensorDictBase, unravel_key
from torch import Tensor
from torchrl.envs.model_based import ModelBasedEnvBase
from torchrl.modules.planners.common import MPCPlannerBase

from torchrl_grasp.planners.best import BestPlan
from torchrl_grasp.planners.context import PlanContext
from torchrl_grasp.planners.deadline import Clock, Deadline, check_time_budget
from torchrl_grasp.planners.problem import action_bounds, read_problem, spec_feature_shapes
from torchrl_grasp.planners.result import PlanResult, Status
from torchrl_grasp.world_models.step import WorldModelStep, infer_state_keys
from torchrl_grasp.world_models.transformed import model_based_env

#: ``callback(iteration, plan)``: called with the plan after ``iteration`` updates, from ``0`` (the
#: initial plan) to the last, as a locked TensorDict ``[*B, restarts]`` of detached tensors:
#: ``"actions"`` ``[*B, R, T, *A]``, ``"loss"`` ``[*B, R]`` (the loss that the last update
#: descended; NaN for the initial plan) and, for GRASP, ``"virtual_states"`` ``[*B, R, T]``
#: (:math:`s_1 .. s_T`). They are the planner's own buffers: clone what you keep.
Callback = Callable[[int, TensorDictBase], None]


def check_rates(*, positive: dict | None = None, non_negative: dict | None = None) -> None:
    """Raises a ``ValueError`` naming the first number that is not finite and positive (or non-negative).

    Callables (schedules) are left to the caller.

    Examples:
        >>> check_rates(positive=dict(lr_actions=0.05), non_negative=dict(state_noise_std=0.0))
        >>> check_rates(positive=dict(lr_actions=-0.05))
        Traceback (most recent call last):
        ValueError: lr_actions must be a positive, finite number, got -0.05 (a negative step would ascend the loss).
        >>> check_rates(non_negative=dict(state_noise_std=float("nan")))
        Traceback (most recent call last):
        ValueError: state_noise_std must be a non-negative, finite number, got nan.
        >>> check_rates(non_negative=dict(lr_actions=-0.1))  # GRASP's: 0 leaves the actions to the syncs
        Traceback (most recent call last):
        ValueError: lr_actions must be a non-negative, finite number, got -0.1 (a negative step would ascend the loss).
    """
    for name, value in (positive or {}).items():
        if not callable(value) and not (math.isfinite(value) and value > 0):
            hint = " (a negative step would ascend the loss)" if value < 0 else ""
            raise ValueError(f"{name} must be a positive, finite number, got {value!r}{hint}.")
    for name, value in (non_negative or {}).items():
        if not callable(value) and not (math.isfinite(value) and value >= 0):
            hint = " (a negative step would ascend the loss)" if value < 0 and name.startswith("lr") else ""
            raise ValueError(f"{name} must be a non-negative, finite number, got {value!r}{hint}.")


def check_positive_ints(**values: int) -> None:
    """Raises a ``ValueError`` naming the first argument that is not a positive int.

    Examples:
        >>> check_positive_ints(planning_horizon=60, optim_steps=300)  # nothing to say
        >>> check_positive_ints(planning_horizon=60, optim_steps=0)
        Traceback (most recent call last):
        ValueError: optim_steps must be a positive int, got 0.
    """
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")


class GoalPlanner(MPCPlannerBase):
    """Base of the gradient planners: plans from the state in a TensorDict to the goal at ``goal_key``.

    This class is the adapter between TorchRL and a solver: it reads the problem
    (:func:`~torchrl_grasp.planners.problem.read_problem`), builds the call's
    :class:`~torchrl_grasp.planners.context.PlanContext`, warm-starts from the previous plan,
    assembles the :class:`PlanResult` and writes the first action (through
    :class:`~torchrl.modules.planners.MPCPlannerBase`). A subclass implements :meth:`_solve`.

    Args:
        env (ModelBasedEnvBase): its ``world_model`` maps the state keys and the action to the
            next state keys.
        planning_horizon (int): :math:`T`, unless :meth:`plan` is given another.
        optim_steps (int): iterations per plan.

    Keyword Args:
        goal_key (NestedKey): where the input holds the goal. Defaults to ``"goal"``.
        state_keys (list of NestedKey, optional): the state; defaults to the keys the world model
            both reads and writes.
        action_key (NestedKey, optional): where the world model reads the action (and the planner
            writes it). Defaults to the env's ``action_key``.
        num_restarts (int): plans per batch element. Defaults to ``1``.
        warm_start (bool): start from the previous call's best plan shifted by one step, per batch
            element whose goal is unchanged. Defaults to ``True``.
        generator (torch.Generator, optional): the only source of randomness; defaults to a new
            generator seeded with 0. :meth:`reset` rewinds it to its state at construction.
        stop_distance (float, optional): stop planning once every batch element has a plan whose
            rollout through the model ends within this distance of the goal (checked wherever a
            rollout is evaluated). Defaults to ``None``: always run ``optim_steps``.
        reward_key (NestedKey, optional): where the world model writes its reward. When set and
            the input holds no goal, the planner maximises the rollout's return (the sum of the
            rewards of the predicted states) instead of reaching a goal. TorchRL's convention
            ``("next", "reward")`` (where an env step puts it) means the same as ``"reward"``.
            Defaults to ``None``.
        reward_weight (float): the weight of the return against the dynamics loss, for the
            planners that have one. Defaults to ``1.0``.
        callback (callable, optional): ``callback(iteration, plan)`` once per iteration, see
            :data:`Callback`. Defaults to ``None``.
        model_samples (int): for a stochastic world model, plan on the average of this many
            samples of each prediction (drawn in the same batched call). Defaults to ``1``.
        mean_keys (mapping, optional): plan on what the model writes at these keys instead of
            the state keys they map from: ``{"state": "prior_mean"}`` plans a Dreamer prior on its
            mean. Defaults to ``None``.
        penalty_weight (float): :math:`\beta`: with ``beta > 0``, every loss and score adds
            ``beta`` times the sum along the plan of what the world model writes at
            ``penalty_key``, such as an ensemble's disagreement: plans keep to where the model
            knows the world (:mod:`torchrl_grasp.objectives`). Defaults to ``0.0`` (none).
        penalty_key (NestedKey): where the world model writes its penalty. Defaults to
            ``"disagreement"``, where :func:`~torchrl_grasp.world_models.learned.model_env` puts
            an ensemble's.
        time_budget (float, optional): seconds of wall time per plan: the planner stops at the
            first iteration boundary past it, less the time its last evaluation takes,
            evaluates what it holds, and returns the best plan found, with
            ``status == "deadline"``. ``optim_steps`` stays the most iterations it
            runs, and at least one runs. Defaults to ``None``: no deadline.
        clock (callable): the clock that ``time_budget`` is read on, ``time.perf_counter`` by
            default; tests pass a scripted one.

    **Stochastic world models** (a Dreamer prior that writes its sampled state): within one
    plan the model's noise is fixed, so each call of the model draws the same noise at every iteration
    (common random numbers). The draw's seed comes from a stream seeded from ``generator``'s
    seed (rewound by :meth:`reset`), and the caller's global RNG state is restored when
    :meth:`plan` returns. See ``docs/world-models.md``, "Stochastic world models".

    **Episodes that end.** A world model that writes ``done`` or ``terminated`` ends each
    rollout at its first true flag: the return counts no reward after it and a goal is scored
    at the state where the episode ended, in every planner
    (:class:`~torchrl_grasp.objectives.GoalObjective`).

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import GradientPlanner, TransitionModelEnv
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> planner = GradientPlanner(env, 5, optim_steps=50, lr=0.1)  # a GoalPlanner
        >>> td = TensorDict(observation=torch.zeros(2), goal=torch.tensor([0.3, 0.0]))
        >>> result = planner.plan(td)  # the whole plan
        >>> result.actions.shape, bool(result.goal_distance < 0.01), sorted(td.keys())  # td is not modified
        (torch.Size([5, 2]), True, ['goal', 'observation'])
        >>> planner(td.clone())["action"]  # as a policy: the first action of a (warm-started) plan
        tensor([0.5997, 0.0000])
        >>> planner.plan(td, horizon=3).actions.shape  # another horizon for one call
        torch.Size([3, 2])
    """

    def __init__(
        self,
        env: ModelBasedEnvBase,
        planning_horizon: int,
        optim_steps: int,
        *,
        goal_key: NestedKey = "goal",
        state_keys: Sequence[NestedKey] | None = None,
        action_key: NestedKey | None = None,
        num_restarts: int = 1,
        warm_start: bool = True,
        generator: torch.Generator | None = None,
        stop_distance: float | None = None,
        reward_key: NestedKey | None = None,
        reward_weight: float = 1.0,
        callback: Callback | None = None,
        model_samples: int = 1,
        mean_keys: Mapping[NestedKey, NestedKey] | None = None,
        penalty_weight: float = 0.0,
        penalty_key: NestedKey = "disagreement",
        time_budget: float | None = None,
        clock: Clock = time.perf_counter,
    ):
        check_rates(non_negative=dict(penalty_weight=penalty_weight))
        check_time_budget(time_budget)
        model_env, reward_transform = model_based_env(env)  # checked before TorchRL's own checks
        action_key = env.action_key if action_key is None else action_key
        super().__init__(env=env, action_key=action_key)
        # TorchRL's env.action_spec is the whole Composite when the action is not at "action".
        self.action_spec = env.full_action_spec[action_key]
        if stop_distance is not None and not stop_distance >= 0:
            raise ValueError(f"stop_distance must be None or a non-negative float, got {stop_distance!r}.")
        self.stop_distance = stop_distance
        check_positive_ints(
            planning_horizon=planning_horizon, optim_steps=optim_steps, num_restarts=num_restarts
        )
        self.planning_horizon = planning_horizon
        self.optim_steps = optim_steps
        self.goal_key = unravel_key(goal_key)
        self.action_key = unravel_key(action_key)
        self.state_keys = (
            [unravel_key(key) for key in state_keys]
            if state_keys is not None
            else infer_state_keys(model_env.world_model, action_key)
        )
        self.num_restarts, self.warm_start = num_restarts, warm_start
        self.generator = generator if generator is not None else torch.Generator(env.device).manual_seed(0)
        self._generator_start = self.generator.get_state()  # what reset() rewinds to
        # The model's noise seeds: their own stream, so that a deterministic model's plans draw
        # exactly what they drew before stochastic models were supported.
        self._noise_seeds = torch.Generator().manual_seed(_mixed(self.generator.initial_seed()))
        self._noise_seeds_start = self._noise_seeds.get_state()
        self.reward_key = None if reward_key is None else _model_key(unravel_key(reward_key))
        self.reward_weight = reward_weight
        self.penalty_weight = penalty_weight
        self.callback = callback
        self.time_budget, self.clock = time_budget, clock
        self.model_step = WorldModelStep(
            model_env.world_model,
            self.state_keys,
            self.action_key,
            self.reward_key,
            reward_transform,
            _model_key(unravel_key(penalty_key)),
            samples=model_samples,
            mean_keys=mean_keys,
        )
        self.state_shapes = spec_feature_shapes(env, self.state_keys)
        self.action_shape = self.action_spec.shape[len(env.batch_size) :]
        self.bounds = action_bounds(self.action_spec, self.action_shape)
        self._previous = None  # the last plan: (batch shape, plan TensorDict [N, T], goal [N] or None)

    def reset(self, tensordict: TensorDictBase | None = None) -> None:
        """Forgets the previous plan and rewinds ``generator`` (and the model-noise seeds) to their state at construction.

        What is reproducible: the same sequence of calls after construction or after ``reset()``
        gives the same plans, bit for bit on the same machine (warm starts included), stochastic
        world models included. Two calls in a row differ even with ``warm_start=False``, because
        the second draws further randomness.
        """
        self._previous = None
        self.generator.set_state(self._generator_start)
        self._noise_seeds.set_state(self._noise_seeds_start)

    def planning(self, tensordict: TensorDictBase) -> Tensor:
        """The first action of :meth:`plan`'s plan, ``[*B, *action_shape]``."""
        return self.plan(tensordict).actions.select(tensordict.batch_dims, 0)

    def plan(
        self, tensordict: TensorDictBase, horizon: int | None = None, *, steps_taken: int = 1
    ) -> PlanResult:
        """Plans from the state in ``tensordict`` ``[*B]`` to the goal at ``goal_key``; see :class:`PlanResult`.

        ``horizon`` plans over that many steps for this call (``planning_horizon`` otherwise); a
        warm start of another length is cut, or padded with its last step. ``steps_taken`` says
        how many actions of the previous plan were executed since it was made (a receding-horizon
        loop that replans every ``k`` steps passes ``k``): the warm start drops as many. The input is not
        modified. Gradients are enabled inside (collectors call policies under
        ``torch.no_grad()`` or ``torch.inference_mode()``), and none is left on the world model's parameters.
        A stochastic model's noise is fixed for the call, and the global RNG state is as it was.
        ``time_budget`` counts from the call.
        """
        deadline = Deadline(self.time_budget, self.clock)
        with torch.inference_mode(False), torch.enable_grad():  # callers may run policies in either mode
            context = self.make_context(tensordict, horizon, steps_taken=steps_taken, deadline=deadline)
            seed = int(torch.randint(2**62, (), generator=self._noise_seeds, device="cpu"))
            with self.model_step.fixed_noise(seed, context.device):
                return self._solve(context)

    def make_context(
        self,
        tensordict: TensorDictBase,
        horizon: int | None = None,
        *,
        steps_taken: int = 1,
        deadline: Deadline | None = None,
    ) -> PlanContext:
        """The :class:`~torchrl_grasp.planners.context.PlanContext` that :meth:`plan` solves for
        ``tensordict`` (under ``deadline``, none by default)."""
        horizon = self.planning_horizon if horizon is None else horizon
        check_positive_ints(horizon=horizon, steps_taken=steps_taken)
        problem = read_problem(
            tensordict,
            self.state_keys,
            self.goal_key,
            self.num_restarts,
            reward_weight=self.reward_weight if self.reward_key is not None else None,
            expected_shapes=self.state_shapes,
            penalty_weight=self.penalty_weight,
        )
        return PlanContext(
            problem=problem,
            model_step=self.model_step,
            horizon=horizon,
            action_shape=self.action_shape,
            action_dtype=self.action_spec.dtype,
            bounds=self.bounds,
            stop_distance=self.stop_distance,
            generator=self.generator,
            warm_start_shift=steps_taken,
            deadline=deadline if deadline is not None else Deadline(None),
        )

    def _solve(self, context: PlanContext) -> PlanResult:
        raise NotImplementedError

    # -- what the solvers share --------------------------------------------------------------

    def _warm_started(self, context: PlanContext, plan: TensorDictBase) -> TensorDictBase | None:
        """``plan`` ``[N, T]`` with the previous plan shifted by one step in its place, for the plans
        whose goal has not changed; ``None`` when there is nothing to warm start from."""
        previous = self._previous
        problem = context.problem
        if not self.warm_start or previous is None:
            return None
        batch_shape, old, old_goal = previous
        goal = getattr(problem.objective, "goal", None)
        if batch_shape != problem.batch_shape or (old_goal is None) != (goal is None):
            return None
        if goal is not None and set(old_goal.keys(True, True)) != set(goal.keys(True, True)):
            return None
        # The warm start (TD-MPC2's): the previous plan without its executed steps, padded with its last.
        shift = min(context.warm_start_shift, old.batch_size[1])
        shifted = _fit(old[:, shift:], context.horizon, old[:, -1:]).select(*plan.keys(True, True))
        shifted = shifted.apply(lambda old_leaf, new_leaf: old_leaf.to(new_leaf.dtype), plan)  # an fp64 call after fp32
        same_goal = torch.ones(problem.num_plans, dtype=torch.bool, device=context.device)
        if goal is not None:
            for key in goal.keys(True, True):
                new_goal = goal.get(key)
                same_goal &= torch.isclose(new_goal, old_goal.get(key).to(new_goal.dtype)).flatten(1).all(-1)
        return torch.where(same_goal[:, None].expand(plan.batch_size), shifted, plan)

    def _view(self, context: PlanContext, **plan: Tensor | TensorDictBase) -> TensorDictBase:
        """The callback's read-only view of the plan: detached, ``[*B, restarts]``, locked."""
        problem = context.problem
        view = TensorDict(
            {name: value.detach() for name, value in plan.items()}, batch_size=[problem.num_plans]
        )
        return view.reshape(*problem.batch_shape, problem.restarts).lock_()

    def _recover(self, best: BestPlan, iteration: int) -> None:
        """After the loss became non-finite: warns, or raises if no finite plan was found yet."""
        if not best.finite():
            raise ValueError(
                f"The loss became NaN or infinite by iteration {iteration + 1}, before any finite plan "
                "was found; lower the learning rates / noise or check the world model."
            )
        warnings.warn(
            f"The loss became NaN or infinite by iteration {iteration + 1}; returning the best finite "
            "plan found before it.",
            RuntimeWarning,
            stacklevel=4,
        )

    def _result(
        self,
        context: PlanContext,
        best: BestPlan,
        history: Tensor,
        iterations: int,
        status: Status,
        remember: Mapping[str, Tensor] | None = None,
    ) -> PlanResult:
        """The best plan per batch element (over restarts); remembered for the next warm start,
        with ``remember``'s entries ``[N, T, ...]`` (shifted with the plan)."""
        problem = context.problem
        index = problem.best_restart(best.score)
        plan = TensorDict(
            actions=best.actions, virtual_states=best.virtual, **(remember or {}), batch_size=best.actions.shape[:2]
        )
        self._previous = (problem.batch_shape, plan, getattr(problem.objective, "goal", None))
        states = torch.cat([problem.start.unsqueeze(1), best.virtual], dim=1)
        restarts = problem.restarts
        return PlanResult(
            actions=problem.pick(best.actions, index),
            virtual_states=problem.pick(states, index),
            rollout=problem.pick(best.rollout, index),
            loss_history=history.reshape(-1, *problem.batch_shape, restarts).mean(-1),
            model_calls=context.model_calls,
            model_transitions=context.model_transitions / problem.num_plans,
            iterations=iterations,
            status=status,
            restart=index,
            serial_fallbacks=context.serial_fallbacks,
            **problem.objective.report(
                problem.pick(best.score, index), None if best.penalty is None else problem.pick(best.penalty, index)
            ),
        )


def _mixed(seed: int) -> int:
    """A seed for a second stream from ``seed`` (a 64-bit LCG step), so the two streams differ."""
    return (seed * 6364136223846793005 + 1442695040888963407) % 2**63


def _model_key(key: NestedKey) -> NestedKey:
    """The key the world model writes for an env-step key: TorchRL's planners name the reward
    ``("next", "reward")``, where an env step puts it; the model writes ``"reward"``.

    Examples:
        >>> _model_key(("next", "reward")), _model_key(("next", "agent", "reward")), _model_key("reward")
        ('reward', ('agent', 'reward'), 'reward')
    """
    if isinstance(key, tuple) and key[0] == "next":
        return key[1] if len(key) == 2 else key[1:]
    return key


def _fit(plan: TensorDictBase, horizon: int, last: TensorDictBase) -> TensorDictBase:
    """``plan`` ``[N, T']`` cut to ``horizon`` steps, or padded with ``last`` ``[N, 1]``."""
    steps = plan.batch_size[1]
    if steps >= horizon:
        return plan[:, :horizon]
    return torch.cat([plan, last.expand(last.batch_size[0], horizon - steps)], dim=1)
