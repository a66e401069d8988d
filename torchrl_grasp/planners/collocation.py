"""Plain collocation: GRASP's iteration with the stop-gradient off, and no noise or sync."""

from __future__ import annotations

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
        goal_weight: float = 0.0,
        **options,
    ):
        fixed = sorted({"stop_gradient", "state_noise_std", "sync"} & set(options))
        if fixed:
            raise TypeError(f"CollocationPlanner fixes {fixed}: use GRASPPlanner to set them.")
        super().__init__(
            env,
            planning_horizon,
            optim_steps,
            goal_weight=goal_weight,
            stop_gradient=False,
            state_noise_std=0.0,
            sync=None,
            **options,
        )
