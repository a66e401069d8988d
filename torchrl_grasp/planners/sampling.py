"""TorchRL's own CEM and MPPI planners, in this package's goal convention and result type.

TorchRL's :class:`~torchrl.modules.planners.CEMPlanner` and
:class:`~torchrl.modules.planners.MPPIPlanner` run unchanged here: they roll candidate action
sequences out through the model env and rank them by the env's reward, which for
:class:`~torchrl_grasp.TransitionModelEnv` is minus the distance of each next state to the goal,
summed over the horizon. The wrappers add only what the benchmark needs and say why:

- **the whole plan.** TorchRL's ``planning`` returns the first action only; open-loop execution
  needs all ``T``. It returns a view into its final action means ``[*B, 1, T, *A]``, and the
  wrappers read the plan from that view's base (checked, with a clear error if TorchRL changes).
- **an unbatched model env.** Both planners derive their time and candidate dimensions from
  ``action_spec.shape``, which is wrong when the env has a batch size; batch the input
  TensorDict instead (``[*B]``), which they handle. A batched env is refused with that advice.
- **``"action"``.** Their rollout policy writes ``"action"`` whatever ``action_key`` says, so
  another ``action_key`` is refused rather than silently ignored.
- **seeding.** They draw from the global RNG; the wrappers fork it and seed it from
  ``generator``, so planning is deterministic and the caller's global RNG is left untouched.
- **MPPI's weights.** TorchRL weights candidates by ``exp(temperature * advantage)`` without
  subtracting the maximum, which underflows to 0/0 for returns of a few hundred; the advantage
  module here is the return-to-go minus the best candidate's return, which leaves the weights
  unchanged and finite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from tensordict import NestedKey, TensorDictBase, unravel_key
from tensordict.nn import TensorDictModuleBase
from torch import Tensor
from torchrl.envs.model_based import ModelBasedEnvBase
from torchrl.modules.planners import CEMPlanner, MPPIPlanner

from torchrl_grasp.planners.problem import read_problem, spec_feature_shapes
from torchrl_grasp.planners.result import PlanResult
from torchrl_grasp.world_models.step import WorldModelStep, infer_state_keys


class _GoalSampling:
    """The shared part of the two wrappers: checks, seeding, and the full plan as a PlanResult."""

    _torchrl_planner: type  # the TorchRL planner wrapped

    def _set_up(self, goal_key, state_keys, generator) -> None:
        env = self.env
        if not isinstance(env, ModelBasedEnvBase):
            raise ValueError(f"env must be a ModelBasedEnvBase with a world_model, got {type(env).__name__}.")
        if env.batch_size:
            raise ValueError(
                f"TorchRL's {self._torchrl_planner.__name__} mis-shapes its samples when the env has a batch "
                f"size (here {tuple(env.batch_size)}): use an env with an empty batch size and batch the input "
                "tensordict instead."
            )
        self.action_key = unravel_key(self.out_keys[0])  # MPCPlannerBase keeps it only as its out_key
        if self.action_key != "action":
            raise ValueError(
                f"TorchRL's {self._torchrl_planner.__name__} writes its samples to 'action' whatever "
                f"action_key says; got action_key={self.action_key!r}."
            )
        env_goal_key = getattr(env, "goal_key", goal_key)
        if env_goal_key is None or unravel_key(env_goal_key) != unravel_key(goal_key):
            raise ValueError(
                f"The env's reward reads the goal at {env_goal_key!r}, the planner at {goal_key!r}: they must agree."
            )
        self.goal_key = unravel_key(goal_key)
        self.state_keys = (
            [unravel_key(key) for key in state_keys]
            if state_keys is not None
            else infer_state_keys(env.world_model, self.action_key)
        )
        self.generator = generator if generator is not None else torch.Generator(env.device).manual_seed(0)
        self.model_step = WorldModelStep(env.world_model, self.state_keys, self.action_key)
        self.state_shapes = spec_feature_shapes(env, self.state_keys)
        self.action_shape = self.action_spec.shape

    def plan(self, tensordict: TensorDictBase) -> PlanResult:
        """TorchRL's planning, returning the whole plan ``[*B, T, *A]`` and its rollout through the model."""
        problem = read_problem(tensordict, self.state_keys, self.goal_key, 1, expected_shapes=self.state_shapes)
        batch, horizon = tensordict.batch_size, self.planning_horizon
        seed = int(torch.randint(2**62, (), generator=self.generator, device=self.generator.device))
        devices = [self.env.device] if self.env.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            first_action = self._torchrl_planner.planning(self, tensordict)
        means = first_action._base
        if means is None or means.shape != (*batch, 1, horizon, *self.action_shape):
            raise RuntimeError(
                f"Could not read the whole plan from TorchRL's {self._torchrl_planner.__name__}: its planning "
                "no longer returns a view of its action means [*B, 1, T, *A]."
            )
        actions = self.action_spec.project(means.squeeze(len(batch)))
        flat_actions = actions.reshape(problem.num_plans, horizon, *self.action_shape)
        with torch.no_grad():
            rollout, rewards = problem.objective.rollout(self.model_step, problem.start, flat_actions)
            score = problem.objective.score(rollout, rewards)
        return PlanResult(
            actions=actions,
            virtual_states=rollout.reshape(*batch, horizon + 1),
            rollout=rollout.reshape(*batch, horizon + 1),
            loss_history=torch.empty(0, *batch, device=actions.device),
            model_calls=(self.optim_steps + 1) * horizon,
            iterations=self.optim_steps,
            status="completed",
            restart=torch.zeros(batch, dtype=torch.long, device=actions.device),
            **problem.objective.report(score.reshape(batch)),
        )

    def planning(self, tensordict: TensorDictBase) -> Tensor:
        """The first action of :meth:`plan`'s plan, ``[*B, *action_shape]``."""
        return self.plan(tensordict).actions.select(tensordict.batch_dims, 0)

    def reset(self, tensordict: TensorDictBase | None = None) -> None:
        """Nothing to forget: TorchRL's samplers keep no plan between calls."""


class GoalCEMPlanner(_GoalSampling, CEMPlanner):
    """TorchRL's :class:`~torchrl.modules.planners.CEMPlanner`, planning to the goal at ``goal_key``.

    Defaults are DINO-WM's CEM on Push-T: 300 samples, the top 30, 30 iterations. The score of
    a sample is the env's reward summed over the horizon (for
    :class:`~torchrl_grasp.TransitionModelEnv`, minus the distance to the goal at every step).
    See the module docstring for what the wrapper changes and why.

    Args:
        env (ModelBasedEnvBase): a model env with an empty batch size whose reward scores
            reaching the goal, e.g. :class:`~torchrl_grasp.TransitionModelEnv`.
        planning_horizon (int): :math:`T`.
        optim_steps (int, optional): CEM iterations. Defaults to ``30``.
        num_candidates (int, optional): samples per iteration. Defaults to ``300``.
        top_k (int, optional): elites. Defaults to ``30``.

    Keyword Args:
        goal_key (NestedKey): where the goal is; must be where the env's reward reads it.
            Defaults to ``"goal"``.
        state_keys (list of NestedKey, optional): as for :class:`~torchrl_grasp.GRASPPlanner`.
        action_key (NestedKey): must be ``"action"``. Defaults to ``"action"``.
        generator (torch.Generator, optional): seeds each plan; defaults to one seeded with 0.

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
        >>> result.actions.shape, bool(result.goal_distance < 0.1)
        (torch.Size([10, 2]), True)
    """

    _torchrl_planner = CEMPlanner

    def __init__(
        self,
        env: ModelBasedEnvBase,
        planning_horizon: int,
        optim_steps: int = 30,
        num_candidates: int = 300,
        top_k: int = 30,
        *,
        goal_key: NestedKey = "goal",
        state_keys: Sequence[NestedKey] | None = None,
        action_key: NestedKey = "action",
        generator: torch.Generator | None = None,
    ):
        super().__init__(env, planning_horizon, optim_steps, num_candidates, top_k, action_key=action_key)
        self._set_up(goal_key, state_keys, generator)


class ReturnToGoAdvantage(TensorDictModuleBase):
    """MPPI's advantage: the undiscounted return-to-go of each candidate, minus the best candidate's return.

    Reads ``("next", "reward")`` ``[*B, K, T, 1]`` (``K`` candidates) and writes ``"advantage"``
    of the same shape. Subtracting the best return at ``t = 0`` shifts every candidate's weight
    ``exp(temperature * advantage)`` by the same factor, which MPPI normalises away, and keeps
    the largest weight at 1 instead of letting all of them underflow.

    Examples:
        >>> from tensordict import TensorDict
        >>> reward = torch.tensor([[1.0, 1.0], [0.0, 3.0]])[..., None]  # K = 2 candidates, T = 2 steps
        >>> td = ReturnToGoAdvantage()(TensorDict({("next", "reward"): reward}, batch_size=[2, 2]))
        >>> td["advantage"].squeeze(-1)  # returns-to-go [2, 1] and [3, 3], minus the best return, 3
        tensor([[-1., -2.],
                [ 0.,  0.]])
    """

    in_keys = [("next", "reward")]
    out_keys = ["advantage"]

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        reward = tensordict.get(("next", "reward"))
        to_go = reward.flip(-2).cumsum(-2).flip(-2)
        best = to_go[..., :1, :].amax(-3, keepdim=True)
        return tensordict.set("advantage", to_go - best)


class GoalMPPIPlanner(_GoalSampling, MPPIPlanner):
    """TorchRL's :class:`~torchrl.modules.planners.MPPIPlanner`, planning to the goal at ``goal_key``.

    Candidates are weighted by ``exp(temperature * R)``, ``R`` the env's reward summed over the
    horizon, through :class:`ReturnToGoAdvantage`. Same sample budget as
    :class:`GoalCEMPlanner` by default. See the module docstring for what the wrapper changes
    and why.

    Args:
        env (ModelBasedEnvBase): as for :class:`GoalCEMPlanner`.
        planning_horizon (int): :math:`T`.
        optim_steps (int, optional): MPPI iterations. Defaults to ``30``.
        num_candidates (int, optional): samples per iteration. Defaults to ``300``.
        top_k (int, optional): samples that enter the weighted mean. Defaults to ``30``.

    Keyword Args:
        temperature (float): inverse temperature of the weights, per unit of return.
            Defaults to ``1.0``.
        goal_key, state_keys, action_key, generator: as for :class:`GoalCEMPlanner`.

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
        >>> bool(result.goal_distance < 0.1)
        True
    """

    _torchrl_planner = MPPIPlanner

    def __init__(
        self,
        env: ModelBasedEnvBase,
        planning_horizon: int,
        optim_steps: int = 30,
        num_candidates: int = 300,
        top_k: int = 30,
        *,
        temperature: float = 1.0,
        goal_key: NestedKey = "goal",
        state_keys: Sequence[NestedKey] | None = None,
        action_key: NestedKey = "action",
        generator: torch.Generator | None = None,
    ):
        if not math.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"temperature must be a positive number, got {temperature!r}.")
        super().__init__(
            env,
            ReturnToGoAdvantage(),
            temperature,
            planning_horizon,
            optim_steps,
            num_candidates,
            top_k,
            action_key=action_key,
        )
        self._set_up(goal_key, state_keys, generator)
