"""What every planner shares: the TensorDict <-> tensor boundary, action bounds, best-plan tracking."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tensordict import NestedKey, TensorDict, TensorDictBase, unravel_key
from torch import Tensor
from torchrl.data import TensorSpec
from torchrl.envs import EnvBase


@dataclass
class PlanResult:
    """What :meth:`plan` returns for a batch of start states ``[*B]``.

    Attributes:
        actions (Tensor): the best plan, ``[*B, T, *action_shape]``.
        virtual_states (TensorDictBase): the optimised states ``s_0 .. s_T`` of that plan,
            ``[*B, T+1]`` (``s_0`` is the start; goal keys end at the goal).
        rollout (TensorDictBase): the world model's serial rollout of ``actions``, ``[*B, T+1]``.
        goal_distance (Tensor or None): Euclidean distance of the rollout's last state to the
            goal over the goal's keys, ``[*B]``; ``None`` when planning by reward.
        loss_history (Tensor): the collocation loss per iteration, mean over restarts,
            ``[optim_steps, *B]``.
        model_calls (int): batched world-model calls made (collocation iterations count one,
            a serial rollout counts ``T``).
        predicted_return (Tensor or None): when planning by reward, the sum of the world
            model's rewards along the rollout, ``[*B]``; else ``None``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import GRASPPlanner, TransitionModelEnv
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> batch = TensorDict(observation=torch.zeros(3, 2), goal=torch.ones(3, 2) * 0.4, batch_size=[3])
        >>> result = GRASPPlanner(env, 8, optim_steps=50).plan(batch)
        >>> result.actions.shape, result.virtual_states["observation"].shape, result.rollout.batch_size
        (torch.Size([3, 8, 2]), torch.Size([3, 9, 2]), torch.Size([3, 9]))
        >>> result.goal_distance.shape, result.predicted_return  # planned to a goal, not by reward
        (torch.Size([3]), None)
    """

    actions: Tensor
    virtual_states: TensorDictBase
    rollout: TensorDictBase
    goal_distance: Tensor | None
    loss_history: Tensor
    model_calls: int
    predicted_return: Tensor | None = None


@dataclass
class PlanningProblem:
    """A batch of plans as flat tensors: ``N = prod(B) * restarts`` plans, one tensor per state key.

    ``start[k]`` is ``[N, D_k]`` (features flattened), ``goal`` maps a state-key index to its
    goal ``[N, D_k]`` (keys the goal lacks are absent; empty when planning by reward),
    ``feature_shapes[k]`` is ``F_k``.
    """

    batch_shape: torch.Size
    restarts: int
    state_keys: list[NestedKey]
    feature_shapes: list[torch.Size]
    start: list[Tensor]
    goal: dict[int, Tensor]

    @property
    def num_plans(self) -> int:
        return math.prod(self.batch_shape) * self.restarts

    @property
    def by_reward(self) -> bool:
        """Whether the plans maximise the model's reward (no goal was given)."""
        return not self.goal

    def unflatten(self, flat: Sequence[Tensor], steps: int) -> list[Tensor]:
        """``[N, steps, D_k]`` tensors to ``[N * steps, *F_k]``, for a world-model call."""
        return [x.reshape(-1, *shape) for x, shape in zip(flat, self.feature_shapes)]

    def to_tensordict(self, flat: Sequence[Tensor], index: Tensor) -> TensorDictBase:
        """Per-key ``[N, T+1, D_k]`` tensors, restart ``index`` ``[*B]`` picked, as a TensorDict ``[*B, T+1]``."""
        td = TensorDict(batch_size=(*self.batch_shape, flat[0].shape[1]), device=flat[0].device)
        for key, shape, x in zip(self.state_keys, self.feature_shapes, flat):
            td.set(key, pick_restart(x, index, self.batch_shape, self.restarts).reshape(*td.batch_size, *shape))
        return td


def serial_rollout(model_step, problem: PlanningProblem, actions: Tensor, with_reward: bool = False):
    """The world model's serial rollout of flat ``actions`` ``[N, T, *A]`` from the problem's start:
    one ``[N, T+1, D_k]`` tensor per state key (and, ``with_reward``, the rewards ``[N, T]``)."""
    start = [x.reshape(-1, *shape) for x, shape in zip(problem.start, problem.feature_shapes)]
    out = model_step.rollout(start, actions, with_reward=with_reward)
    trajectory, rewards = out if with_reward else (out, None)
    trajectory = [x.reshape(x.shape[0], x.shape[1], -1) for x in trajectory]
    return (trajectory, rewards) if with_reward else trajectory


def pick_restart(flat: Tensor, index: Tensor, batch_shape: torch.Size, restarts: int) -> Tensor:
    """From ``[N, ...]`` with ``N = prod(B) * restarts``, the rows of restart ``index`` ``[*B]``: ``[*B, ...]``."""
    grouped = flat.reshape(math.prod(batch_shape), restarts, *flat.shape[1:])
    rows = torch.arange(grouped.shape[0], device=flat.device)
    return grouped[rows, index.reshape(-1)].reshape((*batch_shape, *flat.shape[1:]))


def read_problem(
    tensordict: TensorDictBase,
    state_keys: Sequence[NestedKey],
    goal_key: NestedKey,
    restarts: int,
    goal_optional: bool = False,
    expected_shapes: Sequence[torch.Size | None] | None = None,
) -> PlanningProblem:
    """Reads the start state and the goal from ``tensordict`` and validates them.

    With ``goal_optional`` (planning by reward), a missing goal gives a problem without one.
    ``expected_shapes`` (see :func:`spec_feature_shapes`) are the state's shapes after the batch
    dims, per state key (``None`` where unknown); a state of another shape is refused.
    """
    batch = tensordict.batch_size
    present = set(map(unravel_key, tensordict.keys(True, True)))
    missing = [key for key in state_keys if key not in present]
    if missing:
        raise KeyError(f"The input tensordict lacks the state keys {missing} (it holds {sorted(map(str, present))}).")
    start = [tensordict.get(key) for key in state_keys]
    feature_shapes = [x.shape[len(batch) :] for x in start]
    for key, shape, expected in zip(state_keys, feature_shapes, expected_shapes or [None] * len(state_keys)):
        if expected is not None and shape != expected:
            raise ValueError(
                f"The state {key!r} has shape {tuple(shape)} after the tensordict's batch dims "
                f"{tuple(batch)}, but the env's spec says {tuple(expected)}. For a batch of states, give the "
                f"tensordict that batch size (TensorDict(..., batch_size=[{tensordict.get(key).shape[0]}]))."
            )
    goal_value = tensordict.get(goal_key, None)
    if goal_value is None and goal_optional:
        goal_parts = {}
    elif goal_value is None:
        raise KeyError(
            f"No goal at goal_key={goal_key!r} in the input tensordict: put the goal state there "
            "(a TensorDict with the state keys, or a subset of them, or a tensor when there is one state key)."
        )
    elif isinstance(goal_value, Tensor):
        if len(state_keys) != 1:
            raise ValueError(
                f"The goal at {goal_key!r} is a tensor, but there are {len(state_keys)} state keys "
                f"{list(state_keys)}: give a TensorDict with (some of) those keys."
            )
        goal_parts = {0: goal_value}
    else:
        goal_keys = [unravel_key(key) for key in goal_value.keys(True, True)]
        unknown = [key for key in goal_keys if key not in state_keys]
        if unknown or not goal_keys:
            raise ValueError(
                f"The goal at {goal_key!r} holds keys {goal_keys}; it must hold some of the state keys "
                f"{list(state_keys)} and nothing else."
            )
        goal_parts = {state_keys.index(key): goal_value.get(key) for key in goal_keys}
    goal = {}
    for index, value in goal_parts.items():
        wanted = (*batch, *feature_shapes[index])
        try:
            value = value.expand(wanted)
        except RuntimeError:
            raise ValueError(
                f"The goal for {state_keys[index]!r} has shape {tuple(value.shape)}, which does not "
                f"broadcast to the state's shape {wanted}."
            ) from None
        goal[index] = value
    for name, tensors in (("start state", dict(enumerate(start))), ("goal", goal)):
        for index, value in tensors.items():
            if not torch.isfinite(value).all():
                raise ValueError(f"The {name} for {state_keys[index]!r} holds NaN or infinite values.")

    def flat(x: Tensor) -> Tensor:
        x = x.reshape(*batch, 1, -1).expand(*batch, restarts, -1)
        return x.reshape(math.prod(batch) * restarts, -1)

    return PlanningProblem(
        batch_shape=batch,
        restarts=restarts,
        state_keys=list(state_keys),
        feature_shapes=feature_shapes,
        start=[flat(x) for x in start],
        goal={index: flat(value).to(start[index].dtype) for index, value in goal.items()},
    )


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
    return [spec[key].shape[len(env.batch_size) :] if unravel_key(key) in present else None for key in state_keys]


def action_bounds(spec: TensorSpec, action_shape: torch.Size) -> tuple[Tensor, Tensor] | None:
    """``(low, high)`` of a bounded continuous action spec, shaped ``action_shape``; ``None`` if unbounded."""
    if not spec.dtype.is_floating_point:
        raise ValueError(f"Gradient-based planning needs continuous actions; the action spec has dtype {spec.dtype}.")
    space = getattr(spec, "space", None)
    low, high = getattr(space, "low", None), getattr(space, "high", None)
    if low is None or high is None:
        return None
    take = (0,) * (low.ndim - len(action_shape))  # drop the env's batch dims
    return low[take].expand(action_shape), high[take].expand(action_shape)


def goal_distance(final_states: Sequence[Tensor], goal: dict[int, Tensor]) -> Tensor:
    """Euclidean distance ``[N]`` of flat final states to the goal, over the goal's keys."""
    squared = [(final_states[index] - value).square().sum(-1) for index, value in goal.items()]
    return torch.stack(squared).sum(0).sqrt()


def goal_mse(final_states: Sequence[Tensor], goal: dict[int, Tensor]) -> Tensor:
    """``sum_k mean_d (s_T - g)^2`` per plan ``[N]``: the serial (shooting) objective, scaled like the collocation loss."""
    return torch.stack([(final_states[index] - value).square().mean(-1) for index, value in goal.items()]).sum(0)


class BestPlan:
    """Keeps, per plan, the actions (and states) whose true rollout scored lowest.

    The score is the rollout's final distance to the goal, or minus its return when planning
    by reward.
    """

    def __init__(self):
        self.score = None

    def offer(
        self, score: Tensor, actions: Tensor, rollout: Sequence[Tensor], virtual: Sequence[Tensor] | None
    ) -> None:
        """Takes the candidates that beat the best so far (non-finite distances never do).

        ``virtual`` are the plan's states ``[N, T, D_k]``; ``None`` takes the rollout's.
        """
        if virtual is None:
            virtual = [x[:, 1:] for x in rollout]
        score = torch.where(torch.isfinite(score), score, torch.full_like(score, math.inf))
        if self.score is None:
            self.score, self.actions = score.clone(), actions.detach().clone()
            self.rollout = [x.detach().clone() for x in rollout]
            self.virtual = [x.detach().clone() for x in virtual]
            return
        better = score < self.score

        def keep(new: Tensor, old: Tensor) -> Tensor:
            return torch.where(better.reshape(-1, *[1] * (new.ndim - 1)), new.detach(), old)

        self.score = torch.where(better, score, self.score)
        self.actions = keep(actions, self.actions)
        self.rollout = [keep(new, old) for new, old in zip(rollout, self.rollout)]
        self.virtual = [keep(new, old) for new, old in zip(virtual, self.virtual)]

    def reached(self, restarts: int, stop_distance: float | None) -> bool:
        """Whether every batch element has a plan (on any restart) scoring ``stop_distance`` or less."""
        if stop_distance is None or self.score is None:
            return False
        return bool((self.score.reshape(-1, restarts).amin(-1) <= stop_distance).all())
