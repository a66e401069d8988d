"""Gradient descent through the serial rollout ("shooting"): the GD baseline."""

from __future__ import annotations

import math
import torch
from tensordict import TensorDict
from torchrl.envs.model_based import ModelBasedEnvBase

from torchrl_grasp.planners.base import GoalPlanner, check_rates
from torchrl_grasp.planners.best import BestPlan
from torchrl_grasp.planners.context import PlanContext
from torchrl_grasp.planners.result import PlanResult
from torchrl_grasp.planners.shooting import shoot


class GradientPlanner(GoalPlanner):
    r"""Adam on the actions through the world model's serial rollout (the GD baseline of GRASP's paper).

    Minimises :math:`\sum_k \operatorname{mean}_d (F^T(s_0, a) - g)^2`, the final state's goal
    error after rolling :math:`s_{t+1} = F(s_t, a_t)` out for :math:`T` steps, by backpropagation
    through time. Each step costs a serial rollout of ``T`` world-model calls and its backward;
    the gradient is a product of ``T`` state Jacobians, which is what makes shooting fragile at
    long horizons. Restarts start from independent uniform noise of scale ``init_std`` (the first
    restart from zero actions); the plan returned is the best rollout seen.

    Args:
        env (ModelBasedEnvBase): the world model, as for :class:`~torchrl_grasp.GRASPPlanner`.
        planning_horizon (int): :math:`T`.
        optim_steps (int, optional): Adam steps per plan. Defaults to ``100``.

    Keyword Args:
        goal_key, state_keys, action_key, num_restarts, warm_start, generator, stop_distance,
            time_budget, clock, reward_key, callback: as for
            :class:`~torchrl_grasp.planners.base.GoalPlanner`; with ``reward_key`` and no goal,
            Adam maximises the rollout's return instead.
        lr (float): Adam learning rate. Defaults to ``0.05``.
        init_std (float): scale of the initial action noise of restarts after the first.
            Defaults to ``0.3``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import GradientPlanner, TransitionModelEnv
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> planner = GradientPlanner(env, planning_horizon=20, optim_steps=50)
        >>> result = planner.plan(TensorDict(observation=torch.zeros(2), goal=torch.tensor([1.0, -0.5])))
        >>> bool(result.goal_distance < 0.05), result.model_calls
        (True, 1020)
    """

    def __init__(
        self,
        env: ModelBasedEnvBase,
        planning_horizon: int,
        optim_steps: int = 100,
        *,
        lr: float = 0.05,
        init_std: float = 0.3,
        **options,
    ):
        super().__init__(env, planning_horizon, optim_steps, **options)
        check_rates(positive=dict(lr=lr), non_negative=dict(init_std=init_std))
        self.lr, self.init_std = lr, init_std

    def _solve(self, context: PlanContext) -> PlanResult:
        problem = context.problem
        actions = context.zero_actions()
        if problem.restarts > 1:
            noise = torch.rand(
                actions.shape, generator=context.generator, device=actions.device, dtype=actions.dtype
            )
            noise = noise.mul_(2).sub_(1).mul_(self.init_std)
            noise[problem.first_restarts()] = 0
            actions = context.clamp(actions + noise)
        plan = TensorDict(actions=actions, batch_size=actions.shape[:2])
        warm = self._warm_started(context, plan)
        actions = (plan if warm is None else warm)["actions"].clone()
        history = actions.new_full((self.optim_steps, problem.num_plans), math.nan, dtype=problem.dtype)

        on_update = None
        if self.callback is not None:
            self.callback(0, self._view(context, actions=actions, loss=torch.full_like(history[0], math.nan)))

            def on_update(step, candidate, loss):
                self.callback(step, self._view(context, actions=candidate, loss=loss))

        best = BestPlan()
        taken = shoot(context, actions, self.optim_steps, self.lr, best, history=history, on_update=on_update)
        history = history[:taken]
        if not context.stopped_by_deadline:  # else the last rollout was of these actions
            context.evaluate(actions, None, best)
        status = context.status(best)
        if not torch.isfinite(history).all():
            self._recover(best, int((~torch.isfinite(history)).any(-1).nonzero()[0]))
            status = "non_finite"
        return self._result(context, best, history, taken, status)
