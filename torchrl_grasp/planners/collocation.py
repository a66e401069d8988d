"""Plain collocation: GRASP's variables and loss, without its stop-gradient, noise and syncs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import NestedKey
from torch import Tensor
from torchrl.envs.model_based import ModelBasedEnvBase

from torchrl_grasp.planners.grasp import GRASPPlanner


class CollocationPlanner(GRASPPlanner):
    r"""Plain collocation (the LatCo-style baseline of GRASP's paper).

    Optimises the same variables and loss as :class:`~torchrl_grasp.GRASPPlanner`,

    .. math::

        L(s, a) = \sum_{t=0}^{T-1} \operatorname{mean}_d \big(F(s_t, a_t) - s_{t+1}\big)^2
                  + \gamma \operatorname{mean}_d \big(F(s_t, a_t) - g\big)^2,

    but with full gradients through the world model's state input :math:`s_t` (no
    stop-gradient), no noise on the states and no sync through the serial rollout: the rollout
    is only evaluated at the end, to return the plan the model actually executes. Everything
    else (batched world-model call, fused loss, Adam on states and actions with their own
    learning rates, restarts, warm start) is GRASP's.

    Args:
        env (ModelBasedEnvBase): the world model, as for :class:`~torchrl_grasp.GRASPPlanner`.
        planning_horizon (int): :math:`T`.
        optim_steps (int, optional): iterations per plan. Defaults to ``300``.

    Keyword Args:
        goal_key, state_keys, action_key, lr_states, lr_actions, goal_weight, num_restarts,
            warm_start, generator, stop_distance, reward_key, reward_weight: as for
            :class:`~torchrl_grasp.GRASPPlanner` (same defaults),
            except ``goal_weight``, which defaults to ``0.0``: plain collocation reaches the goal
            only through the pinned last state :math:`s_T = g`.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import CollocationPlanner, TransitionModelEnv
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> planner = CollocationPlanner(env, planning_horizon=20, optim_steps=200, lr_states=0.01, lr_actions=0.05)
        >>> result = planner.plan(TensorDict(observation=torch.zeros(2), goal=torch.tensor([1.0, -0.5])))
        >>> bool(result.goal_distance < 0.05)
        True
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
        goal_weight: float = 0.0,
        num_restarts: int = 1,
        warm_start: bool = True,
        generator: torch.Generator | None = None,
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
            lr_states=lr_states,
            lr_actions=lr_actions,
            state_noise_std=0.0,
            goal_weight=goal_weight,
            sync_every=optim_steps,
            sync_mode=None,
            num_restarts=num_restarts,
            warm_start=warm_start,
            generator=generator,
            stop_distance=stop_distance,
            reward_key=reward_key,
            reward_weight=reward_weight,
        )

    def _state_input(self, virtual: Tensor) -> Tensor:
        """The virtual states themselves: gradients flow through the model's state input."""
        return virtual
