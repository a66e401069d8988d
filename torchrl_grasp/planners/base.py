"""What every goal-conditioned planner of this package shares: set-up, rollouts, warm start, results."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from tensordict import NestedKey, TensorDictBase, unravel_key
from torch import Tensor
from torchrl.envs.model_based import ModelBasedEnvBase
from torchrl.modules.planners.common import MPCPlannerBase

from torchrl_grasp.planners._common import (
    BestPlan,
    PlanningProblem,
    PlanResult,
    action_bounds,
    goal_distance,
    goal_mse,
    pick_restart,
    read_problem,
    serial_rollout,
    spec_feature_shapes,
)
from torchrl_grasp.planners.descent import descend, plan_variable
from torchrl_grasp.world_models.step import WorldModelStep, infer_state_keys


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

    A subclass implements :meth:`_plan`, which returns a :class:`PlanResult`; this class reads
    the problem (:func:`read_problem`), steps the world model (:class:`WorldModelStep`), keeps
    actions inside the spec, warm-starts from the previous plan, and writes the first action
    (through :class:`~torchrl.modules.planners.MPCPlannerBase`).

    Args:
        env (ModelBasedEnvBase): its ``world_model`` maps the state keys and the action to the
            next state keys.
        planning_horizon (int): :math:`T`.
        optim_steps (int): iterations per plan.

    Keyword Args:
        goal_key (NestedKey): where the input holds the goal. Defaults to ``"goal"``.
        state_keys (list of NestedKey, optional): the state; defaults to the keys the world model
            both reads and writes.
        action_key (NestedKey): Defaults to ``"action"``.
        num_restarts (int): plans per batch element. Defaults to ``1``.
        warm_start (bool): start from the previous call's best plan shifted by one step, per batch
            element whose goal is unchanged. Defaults to ``True``.
        generator (torch.Generator, optional): the only source of randomness; defaults to a new
            generator seeded with 0.
        stop_distance (float, optional): stop planning once every batch element has a plan whose
            rollout through the model ends within this distance of the goal (checked wherever a
            rollout is evaluated). Defaults to ``None``: always run ``optim_steps``.
        reward_key (NestedKey, optional): where the world model writes its reward. When set and
            the input holds no goal, the planner maximises the rollout's return (the sum of the
            rewards of the predicted states) instead of reaching a goal. Defaults to ``None``.
        reward_weight (float): the weight of the return against the dynamics loss, for the
            planners that have one. Defaults to ``1.0``.

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
    """

    def __init__(
        self,
        env: ModelBasedEnvBase,
        planning_horizon: int,
        optim_steps: int,
        *,
        goal_key: NestedKey = "goal",
        state_keys: Sequence[NestedKey] | None = None,
        action_key: NestedKey = "action",
        num_restarts: int = 1,
        warm_start: bool = True,
        generator: torch.Generator | None = None,
        stop_distance: float | None = None,
        reward_key: NestedKey | None = None,
        reward_weight: float = 1.0,
    ):
        super().__init__(env=env, action_key=action_key)
        if stop_distance is not None and not stop_distance >= 0:
            raise ValueError(f"stop_distance must be None or a non-negative float, got {stop_distance!r}.")
        self.stop_distance = stop_distance
        check_positive_ints(planning_horizon=planning_horizon, optim_steps=optim_steps, num_restarts=num_restarts)
        if not isinstance(env, ModelBasedEnvBase):
            raise ValueError(f"env must be a ModelBasedEnvBase with a world_model, got {type(env).__name__}.")
        self.planning_horizon = planning_horizon
        self.optim_steps = optim_steps
        self.goal_key = unravel_key(goal_key)
        self.action_key = unravel_key(action_key)
        self.state_keys = (
            [unravel_key(key) for key in state_keys]
            if state_keys is not None
            else infer_state_keys(env.world_model, action_key)
        )
        self.num_restarts, self.warm_start = num_restarts, warm_start
        self.generator = generator if generator is not None else torch.Generator(env.device).manual_seed(0)
        self.reward_key = None if reward_key is None else unravel_key(reward_key)
        self.reward_weight = reward_weight
        self.model_step = WorldModelStep(env.world_model, self.state_keys, self.action_key, self.reward_key)
        self.state_shapes = spec_feature_shapes(env, self.state_keys)
        self.action_shape = self.action_spec.shape[len(env.batch_size) :]
        self.bounds = action_bounds(self.action_spec, self.action_shape)
        self._previous = None
        self._model_calls = 0

    def reset(self, tensordict: TensorDictBase | None = None) -> None:
        """Forgets the previous plan, so the next call does not warm start."""
        self._previous = None

    def planning(self, tensordict: TensorDictBase) -> Tensor:
        """The first action of :meth:`plan`'s plan, ``[*B, *action_shape]``."""
        return self.plan(tensordict).actions.select(tensordict.batch_dims, 0)

    def plan(self, tensordict: TensorDictBase) -> PlanResult:
        """Plans from the state in ``tensordict`` ``[*B]`` to the goal at ``goal_key``; see :class:`PlanResult`.

        The input is not modified. Gradients are enabled inside (collectors call policies under
        ``torch.no_grad()``), and none is left on the world model's parameters.
        """
        with torch.enable_grad():
            problem = read_problem(
                tensordict,
                self.state_keys,
                self.goal_key,
                self.num_restarts,
                goal_optional=self.reward_key is not None,
                expected_shapes=self.state_shapes,
            )
            self._model_calls = 0
            return self._plan(problem)

    def _plan(self, problem: PlanningProblem) -> PlanResult:
        raise NotImplementedError

    # -- plans, rollouts ----------------------------------------------------------------------

    def _initial_actions(self, problem: PlanningProblem) -> Tensor:
        """Zero actions ``[N, T, *A]``, inside the bounds."""
        shape = (problem.num_plans, self.planning_horizon, *self.action_shape)
        return self._clamp(torch.zeros(shape, device=self.env.device, dtype=self.action_spec.dtype))

    def _warm_started(self, problem: PlanningProblem, actions: Tensor, states: list[Tensor]):
        """``actions`` and per-key ``states`` ``[N, T, D_k]``, replaced by the previous plan shifted by
        one step for the plans whose goal has not changed."""
        previous = self._previous
        if (
            not self.warm_start
            or previous is None
            or previous["batch_shape"] != problem.batch_shape
            or set(previous["goal"]) != set(problem.goal)
        ):
            return actions, states
        same_goal = torch.ones(problem.num_plans, dtype=torch.bool, device=actions.device)
        for index, goal in problem.goal.items():
            same_goal &= torch.isclose(goal, previous["goal"][index]).all(-1)

        def choose(new: Tensor, old: Tensor) -> Tensor:
            shifted = torch.cat([old[:, 1:], old[:, -1:]], dim=1)
            return torch.where(same_goal.reshape(-1, *[1] * (new.ndim - 1)), shifted, new)

        return choose(actions, previous["actions"]), [choose(s, old) for s, old in zip(states, previous["states"])]

    def _clamp(self, actions: Tensor) -> Tensor:
        return actions if self.bounds is None else actions.clamp(*self.bounds)

    def _rollout(self, problem: PlanningProblem, actions: Tensor) -> list[Tensor]:
        """Flat serial rollout ``[N, T+1, D_k]`` per key."""
        self._model_calls += actions.shape[1]
        return serial_rollout(self.model_step, problem, actions)

    def _scored_rollout(self, problem: PlanningProblem, actions: Tensor):
        """The rollout, its objective ``[N]`` (differentiable) and its score ``[N]`` (lower is better).

        Towards a goal: the final state's mean squared goal error, and its distance to the goal.
        By reward: minus the return, for both.
        """
        if problem.by_reward:
            self._model_calls += actions.shape[1]
            rollout, rewards = serial_rollout(self.model_step, problem, actions, with_reward=True)
            objective = -rewards.sum(1)
            return rollout, objective, objective.detach()
        rollout = self._rollout(problem, actions)
        final = [x[:, -1] for x in rollout]
        return rollout, goal_mse(final, problem.goal), goal_distance(final, problem.goal).detach()

    def _evaluate(self, problem: PlanningProblem, actions: Tensor, states: list[Tensor], best: BestPlan):
        """Rolls ``actions`` out, offers the plan to ``best``, returns the rollout."""
        with torch.no_grad():
            rollout, _, score = self._scored_rollout(problem, actions)
        best.offer(score, actions, rollout, states)
        return rollout

    def _reached(self, problem: PlanningProblem, best: BestPlan) -> bool:
        """Whether ``best`` holds, for every batch element, a plan within ``stop_distance`` of the goal."""
        return not problem.by_reward and best.reached(problem.restarts, self.stop_distance)

    def _shoot(self, problem, actions: Tensor, steps: int, lr: float, best: BestPlan, states, history=None) -> int:
        """``steps`` Adam steps (lr ``lr``) on the serial rollout's objective: the final state's goal
        error, or minus the return when planning by reward.

        ``actions`` ``[N, T, *A]`` is updated in place and stays inside the bounds; each step's
        rollout is offered to ``best`` (with ``states`` as the plan's states; ``None`` takes the
        rollout's), and its loss ``[N]`` written to ``history[step]`` when given. Returns the
        steps taken: fewer than ``steps`` when ``best`` reached ``stop_distance``.
        """
        candidate = plan_variable(actions)
        optimizer = torch.optim.Adam([candidate], lr=lr)
        taken = 0
        for step in range(steps):
            taken += 1
            rollout, loss, score = self._scored_rollout(problem, candidate)
            with torch.no_grad():
                best.offer(score, candidate, rollout, states)
                if history is not None:
                    history[step] = loss
            if self._reached(problem, best):
                break
            descend(optimizer, loss, [candidate])
            with torch.no_grad():
                candidate.copy_(self._clamp(candidate))
        with torch.no_grad():
            actions.copy_(candidate)
        return taken

    # -- results ------------------------------------------------------------------------------

    def _recover(self, best: BestPlan, iteration: int) -> None:
        """After the loss became non-finite: warns, or raises if no finite plan was found yet."""
        if best.score is None or not torch.isfinite(best.score).any():
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

    def _result(self, problem: PlanningProblem, best: BestPlan, history: Tensor) -> PlanResult:
        """The best plan per batch element (over restarts); remembered for the next warm start."""
        batch, restarts = problem.batch_shape, problem.restarts
        index = best.score.reshape(math.prod(batch), restarts).argmin(-1).reshape(batch)
        score = pick_restart(best.score, index, batch, restarts)
        states = [torch.cat([start[:, None], s], dim=1) for start, s in zip(problem.start, best.virtual)]
        self._previous = {
            "batch_shape": batch,
            "goal": dict(problem.goal),
            "actions": best.actions,
            "states": best.virtual,
        }
        return PlanResult(
            actions=pick_restart(best.actions, index, batch, restarts),
            virtual_states=problem.to_tensordict(states, index),
            rollout=problem.to_tensordict(best.rollout, index),
            goal_distance=None if problem.by_reward else score,
            loss_history=history.reshape(-1, math.prod(batch), restarts).mean(-1).reshape(-1, *batch),
            model_calls=self._model_calls,
            predicted_return=-score if problem.by_reward else None,
        )
