"""Receding-horizon control: any planner of the package as a TorchRL policy, its plan carried in the TensorDict."""

from __future__ import annotations

from collections.abc import Callable

import torch
from tensordict import NestedKey, TensorDictBase, unravel_key
from tensordict.nn import TensorDictModuleBase
from torch import Tensor
from torchrl.data import Composite, Unbounded
from torchrl.envs import TensorDictPrimer

from torchrl_grasp.planners.base import GoalPlanner, check_positive_ints
from torchrl_grasp.planners.result import PlanResult


class RecedingHorizonPolicy(TensorDictModuleBase):
    """Plans with ``planner``, replays the plan's next action, and replans every ``replan_every`` steps.

    The plan travels in the TensorDict, not on the module, so one policy serves a batch of envs
    (each element replans on its own schedule) and any number of episodes. Under
    ``state_key`` (default ``"planning"``) it reads and writes, per batch element:

    - ``"actions"`` ``[L, *A]``: the current plan, padded with its last action to ``L`` steps;
    - ``"index"``: the next action of it to take;
    - ``"left"``: actions left to replay before the next replan (``0``: plan now);
    - ``"step"``: steps since the episode began.

    It writes the next values under ``("next", state_key, ...)``, as TorchRL's recurrent modules
    write their hidden state: append :meth:`make_tensordict_primer` to the env so that the env's
    specs carry them from step to step (``env.rollout``, collectors) and its resets zero them. An
    episode starts afresh (a new plan, ``step`` 0) where ``"is_init"`` is true (TorchRL's
    ``InitTracker``) or where a reset zeroed the state. ``(state_key, "replanned")`` says, per
    step, whether a new plan was made.

    Args:
        planner (GoalPlanner): plans with ``planner.plan(td, horizon=...)`` from the state and goal
            in the input.
        replan_every (int): actions taken from each plan before the next. Defaults to ``1``.
        horizon (int, optional): the steps each plan covers (a receding horizon). Defaults to the
            planner's ``planning_horizon``.

    Keyword Args:
        ends_at (int, optional): plan to a fixed deadline instead: at step ``t`` of an episode the
            plan covers ``ends_at - t`` steps (at least one). Excludes ``horizon``.
        state_key (NestedKey): where the plan lives in the TensorDict. Defaults to ``"planning"``.
        on_plan (callable, optional): ``on_plan(tensordict, result)`` after every plan, with the
            rows that planned (flattened, ``[n]``) and their :class:`~torchrl_grasp.PlanResult`
            (``[n, ...]``): to log model calls, the predicted distance, the status. Defaults to ``None``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import GRASPPlanner, RecedingHorizonPolicy, TransitionModelEnv
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> planner = GRASPPlanner(env, 10, optim_steps=50, lr_actions=0.05, lr_states=0.01)
        >>> policy = RecedingHorizonPolicy(planner, replan_every=4, ends_at=8)
        >>> env = env.append_transform(policy.make_tensordict_primer())
        >>> start = TensorDict(observation=torch.zeros(2), goal=torch.tensor([0.5, -0.2]))
        >>> rollout = env.rollout(8, policy, tensordict=env.reset(start), auto_reset=False)
        >>> rollout["planning", "replanned"].nonzero().squeeze(-1).tolist()  # a plan every 4 steps
        [0, 4]
        >>> bool((rollout["next", "observation"][-1] - start["goal"]).norm() < 0.05)
        True
    """

    def __init__(
        self,
        planner: GoalPlanner,
        replan_every: int = 1,
        horizon: int | None = None,
        *,
        ends_at: int | None = None,
        state_key: NestedKey = "planning",
        on_plan: Callable[[TensorDictBase, PlanResult], None] | None = None,
    ):
        super().__init__()
        if not isinstance(planner, GoalPlanner):
            raise TypeError(
                f"RecedingHorizonPolicy takes a planner of this package (a GoalPlanner), got {type(planner).__name__}."
            )
        if horizon is not None and ends_at is not None:
            raise ValueError("Give horizon (a receding horizon) or ends_at (a fixed deadline), not both.")
        check_positive_ints(replan_every=replan_every, **({} if horizon is None else dict(horizon=horizon)))
        if ends_at is not None:
            check_positive_ints(ends_at=ends_at)
        self.planner, self.replan_every, self.ends_at, self.on_plan = planner, replan_every, ends_at, on_plan
        self.horizon = planner.planning_horizon if horizon is None and ends_at is None else horizon
        self.length = ends_at if ends_at is not None else self.horizon
        self.state_key = state_key = unravel_key(state_key)
        prefix = state_key if isinstance(state_key, tuple) else (state_key,)
        self.state = {name: (*prefix, name) for name in ("actions", "index", "left", "step")}
        self.replanned_key = (*prefix, "replanned")
        goal = [] if planner.goal_key is None else [planner.goal_key]
        self.in_keys = [*planner.state_keys, *goal, *self.state.values()]
        self.out_keys = [
            planner.action_key,
            self.replanned_key,
            *(("next", *key) for key in self.state.values()),
        ]

    def make_tensordict_primer(self) -> TensorDictPrimer:
        """The env transform that declares (and on reset zeroes) the plan the policy carries."""
        action_shape = self.planner.action_shape
        spec = Composite(
            {
                self.state["actions"]: Unbounded(
                    (self.length, *action_shape), dtype=self.planner.action_spec.dtype
                ),
                self.state["index"]: Unbounded((), dtype=torch.long),
                self.state["left"]: Unbounded((), dtype=torch.long),
                self.state["step"]: Unbounded((), dtype=torch.long),
            }
        )
        return TensorDictPrimer(spec, default_value=0, expand_specs=True)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        batch = tensordict.batch_size
        flat = tensordict.reshape(-1)
        count = flat.batch_size[0]
        plan, index, left, step = self._read_state(flat)
        fresh = self._episode_began(flat)
        step = torch.where(fresh, 0, step)
        replan = fresh | (left <= 0)
        horizons = (
            (self.ends_at - step).clamp_min(1)
            if self.ends_at is not None
            else torch.full_like(step, self.horizon)
        )
        for horizon in horizons[replan].unique().tolist():
            rows = replan & (horizons == horizon)
            # A plan replaced on schedule had ``index`` of its actions executed: its warm start drops them.
            taken = int(index[rows].max().clamp_min(1))
            result = self.planner.plan(flat[rows], horizon=horizon, steps_taken=taken)
            if self.on_plan is not None:
                self.on_plan(flat[rows], result)
            actions = result.actions.detach()
            plan[rows] = _padded(actions, self.length)
            index[rows] = 0
            left[rows] = min(self.replan_every, horizon)
        action = plan[torch.arange(count, device=plan.device), index.clamp_max(self.length - 1)]
        tensordict.set(self.planner.action_key, _unflat(action, batch))
        tensordict.set(self.replanned_key, _unflat(replan, batch))
        for name, value in (("actions", plan), ("index", index + 1), ("left", left - 1), ("step", step + 1)):
            tensordict.set(("next", *self.state[name]), _unflat(value, batch))
        return tensordict

    def _read_state(self, flat: TensorDictBase) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The carried plan, index, actions left and step, ``[n, ...]``, copied (zeros where absent)."""
        count, keys = flat.batch_size[0], set(flat.keys(True, True))
        device = flat.device or self.planner.env.device

        def read(name, shape, dtype):
            key = self.state[name]
            if key in keys:
                return flat.get(key).clone()
            return torch.zeros(count, *shape, dtype=dtype, device=device)

        plan = read("actions", (self.length, *self.planner.action_shape), self.planner.action_spec.dtype)
        return plan, read("index", (), torch.long), read("left", (), torch.long), read("step", (), torch.long)

    @staticmethod
    def _episode_began(flat: TensorDictBase) -> Tensor:
        count = flat.batch_size[0]
        is_init = flat.get("is_init", None)
        if is_init is None:
            return torch.zeros(count, dtype=torch.bool, device=flat.device)
        return is_init.reshape(count, -1).any(-1)


def _padded(actions: Tensor, length: int) -> Tensor:
    """``actions`` ``[k, h, *A]`` padded with their last step to ``[k, length, *A]``."""
    steps = actions.shape[1]
    if steps >= length:
        return actions[:, :length]
    return torch.cat([actions, actions[:, -1:].expand(-1, length - steps, *actions.shape[2:])], dim=1)


def _unflat(value: Tensor, batch: torch.Size) -> Tensor:
    """``value`` ``[n, ...]`` back to the input's batch shape ``[*B, ...]``."""
    return value.reshape(torch.Size((*batch, *value.shape[1:])))
