"""A batch of planning problems: where the plans start and what scores them, read from the input TensorDict."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tensordict import NestedKey, TensorDict, TensorDictBase, unravel_key
from torch import Tensor
from torchrl.data import TensorSpec
from torchrl.envs import EnvBase

from torchrl_grasp.objectives import GoalObjective, RewardObjective


@dataclass
class PlanningProblem:
    """``N = prod(B) * restarts`` plans: each batch element's problem repeated once per restart.

    Attributes:
        batch_shape (torch.Size): the input's batch shape ``B``.
        restarts (int): plans per batch element.
        start (TensorDictBase): the start states ``[N]``, under the user's state keys, with their
            own feature shapes.
        objective (GoalObjective or RewardObjective): what the plans are scored by.

    Examples:
        >>> from tensordict import TensorDict
        >>> td = TensorDict(observation=torch.zeros(3, 2), goal=torch.ones(3, 2), batch_size=[3])
        >>> problem = read_problem(td, ["observation"], "goal", restarts=2)
        >>> problem.num_plans, problem.start.batch_size, type(problem.objective).__name__
        (6, torch.Size([6]), 'GoalObjective')
        >>> scores = torch.tensor([5.0, 1.0, 2.0, 3.0, 0.0, 4.0])
        >>> problem.pick(scores, problem.best_restart(scores))  # per batch element, its best restart
        tensor([1., 2., 0.])
    """

    batch_shape: torch.Size
    restarts: int
    start: TensorDictBase
    objective: GoalObjective | RewardObjective

    @property
    def num_plans(self) -> int:
        return math.prod(self.batch_shape) * self.restarts

    @property
    def device(self) -> torch.device:
        """Where the (first) state lives: the plans' tensors are made there."""
        return self.start_leaves[0].device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the (first) state."""
        return self.start_leaves[0].dtype

    @property
    def state_keys(self) -> list[NestedKey]:
        return self.objective.state_keys

    @functools.cached_property
    def start_leaves(self) -> list[Tensor]:
        """The start states ``[N, *F_k]``, one per state key, in the objective's order (read once:
        the optimisation loop uses them every iteration)."""
        return [self.start.get(key) for key in self.state_keys]

    def first_restarts(self) -> Tensor:
        """``[N]``: which plans are their batch element's first restart."""
        return torch.arange(self.num_plans, device=self.start.device) % self.restarts == 0

    def best_restart(self, score: Tensor) -> Tensor:
        """Per batch element, the index of its restart with the lowest ``score`` ``[N]``: ``[*B]``."""
        return score.reshape(math.prod(self.batch_shape), self.restarts).argmin(-1).reshape(self.batch_shape)

    def pick(self, plans: Tensor | TensorDictBase, index: Tensor) -> Tensor | TensorDictBase:
        """From ``[N, ...]``, the rows of restart ``index`` ``[*B]``: ``[*B, ...]``."""
        grouped = plans.reshape(math.prod(self.batch_shape), self.restarts, *plans.shape[1:])
        rows = torch.arange(grouped.shape[0], device=index.device)
        return grouped[rows, index.reshape(-1)].reshape(torch.Size((*self.batch_shape, *plans.shape[1:])))

    def repeat(self, times: int) -> PlanningProblem:
        """Each plan's problem ``times`` times in a row (``[N * times]``), for sampling around plans."""
        return PlanningProblem(
            self.batch_shape,
            self.restarts * times,
            self.start.repeat_interleave(times, dim=0),
            self.objective.repeat(times),
        )


def read_problem(
    tensordict: TensorDictBase,
    state_keys: Sequence[NestedKey],
    goal_key: NestedKey,
    restarts: int,
    reward_weight: float | None = None,
    expected_shapes: Sequence[torch.Size | None] | None = None,
    penalty_weight: float = 0.0,
) -> PlanningProblem:
    """Reads the start state and the goal from ``tensordict`` ``[*B]`` and validates them.

    With ``reward_weight`` set (planning by reward allowed), a missing goal gives a
    :class:`~torchrl_grasp.objectives.RewardObjective`; a goal gives a
    :class:`~torchrl_grasp.objectives.GoalObjective`. ``expected_shapes`` (see
    :func:`spec_feature_shapes`) are the state's shapes after the batch dims, per state key
    (``None`` where unknown); a state of another shape is refused. Nothing of ``tensordict`` is
    shared with the problem, so a model that edits its input cannot change the caller's.
    ``penalty_weight`` goes to the objective (see :mod:`torchrl_grasp.objectives`).
    """
    state_keys = [unravel_key(key) for key in state_keys]
    batch = tensordict.batch_size
    present = set(map(unravel_key, tensordict.keys(True, True)))
    missing = [key for key in state_keys if key not in present]
    if missing:
        raise KeyError(
            f"The input tensordict lacks the state keys {missing} (it holds {sorted(map(str, present))})."
        )
    start = {key: tensordict.get(key) for key in state_keys}
    for key, value in start.items():
        if not value.is_floating_point():
            raise ValueError(
                f"The state {key!r} has dtype {value.dtype}; the planners move states continuously and need "
                f"floating ones: cast it (td[{key!r}] = td[{key!r}].float()) and give the env a float state spec."
            )
    for key, expected in zip(state_keys, expected_shapes or [None] * len(state_keys)):
        shape = start[key].shape[len(batch) :]
        if expected is not None and shape != expected:
            raise ValueError(
                f"The state {key!r} has shape {tuple(shape)} after the tensordict's batch dims "
                f"{tuple(batch)}, but the env's spec says {tuple(expected)}. For a batch of states, give the "
                f"tensordict that batch size (TensorDict(..., batch_size=[{start[key].shape[0]}]))."
            )
    goal = _read_goal(tensordict, state_keys, goal_key, start, reward_weight is not None)
    for name, tensors in (("start state", start), ("goal", goal or {})):
        for key, value in tensors.items():
            if not torch.isfinite(value).all():
                raise ValueError(f"The {name} for {key!r} holds NaN or infinite values.")

    def per_plan(x: Tensor) -> Tensor:
        features = x.shape[len(batch) :]
        x = x.reshape(*batch, 1, *features).expand(*batch, restarts, *features)
        return x.reshape(math.prod(batch) * restarts, *features).clone()

    num_plans = math.prod(batch) * restarts
    device = tensordict.device
    start_td = TensorDict(
        {key: per_plan(x) for key, x in start.items()}, batch_size=[num_plans], device=device
    )
    if goal is None:
        objective = RewardObjective(state_keys, reward_weight, penalty_weight)
    else:
        goal_td = TensorDict(
            {key: per_plan(x).to(start[key].dtype) for key, x in goal.items()},
            batch_size=[num_plans],
            device=device,
        )
        objective = GoalObjective(goal_td, state_keys, penalty_weight)
    return PlanningProblem(batch_shape=batch, restarts=restarts, start=start_td, objective=objective)


def _read_goal(tensordict, state_keys, goal_key, start, goal_optional) -> dict[NestedKey, Tensor] | None:
    """The goal per state key it constrains, broadcast to the state's shape; ``None`` when it is
    absent and optional."""
    goal_value = tensordict.get(goal_key, None)
    if goal_value is None and goal_optional:
        return None
    if goal_value is None:
        raise KeyError(
            f"No goal at goal_key={goal_key!r} in the input tensordict: put the goal state there "
            "(a TensorDict with the state keys, or a subset of them, or a tensor when there is one state key)."
        )
    if isinstance(goal_value, Tensor):
        if len(state_keys) != 1:
            raise ValueError(
                f"The goal at {goal_key!r} is a tensor, but there are {len(state_keys)} state keys "
                f"{list(state_keys)}: give a TensorDict with (some of) those keys."
            )
        parts = {state_keys[0]: goal_value}
    else:
        goal_keys = [unravel_key(key) for key in goal_value.keys(True, True)]
        unknown = [key for key in goal_keys if key not in state_keys]
        if unknown or not goal_keys:
            raise ValueError(
                f"The goal at {goal_key!r} holds keys {goal_keys}; it must hold some of the state keys "
                f"{list(state_keys)} and nothing else."
            )
        parts = {key: goal_value.get(key) for key in goal_keys}
    goal = {}
    for key, value in parts.items():
        wanted = start[key].shape
        try:
            goal[key] = value.expand(wanted)
        except RuntimeError:
            raise ValueError(
                f"The goal for {key!r} has shape {tuple(value.shape)}, which does not "
                f"broadcast to the state's shape {tuple(wanted)}."
            ) from None
    return goal


def spec_feature_shapes(env: EnvBase, state_keys: Sequence[NestedKey]) -> list[torch.Size | None]:
    """The shape of each state key in ``env``'s observation spec after the env's batch dims; ``None``
    for a key the spec does not hold. What :func:`read_problem` checks the input against.

    Examples:
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import TransitionModelEnv
        >>> env = TransitionModelEnv(torch.nn.Identity(), Unbounded(3), Bounded(-1.0, 1.0, (2,)))
        >>> spec_feature_shapes(env, ["observation", "elsewhere"])
        [torch.Size([3]), None]
    """
    spec = env.full_observation_spec
    present = set(map(unravel_key, spec.keys(True, True)))
    return [
        spec[key].shape[len(env.batch_size) :] if unravel_key(key) in present else None for key in state_keys
    ]


def action_bounds(spec: TensorSpec, action_shape: torch.Size) -> tuple[Tensor, Tensor] | None:
    """``(low, high)`` of a bounded continuous action spec, shaped ``action_shape``; ``None`` if unbounded.

    Examples:
        >>> from torchrl.data import Bounded
        >>> action_bounds(Bounded(-1.0, 2.0, (2,)), torch.Size([2]))
        (tensor([-1., -1.]), tensor([2., 2.]))
        >>> action_bounds(Bounded(torch.ones(2), -torch.ones(2), (2,)), torch.Size([2]))
        Traceback (most recent call last):
        ValueError: The action spec's low exceeds its high at 2 of 2 entries: every action there would be pinned to high. Give Bounded(low, high) with low <= high.
    """
    if not spec.dtype.is_floating_point:
        raise ValueError(
            f"Gradient-based planning needs continuous actions; the action spec has dtype {spec.dtype}."
        )
    space = getattr(spec, "space", None)
    low, high = getattr(space, "low", None), getattr(space, "high", None)
    if low is None or high is None:
        return None
    take = (0,) * (low.ndim - len(action_shape))  # drop the env's batch dims
    low, high = low[take].expand(action_shape), high[take].expand(action_shape)
    inverted = int((low > high).sum())
    if inverted:
        raise ValueError(
            f"The action spec's low exceeds its high at {inverted} of {low.numel()} entries: every action "
            "there would be pinned to high. Give Bounded(low, high) with low <= high."
        )
    return low, high
