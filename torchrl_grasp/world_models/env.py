"""A TorchRL model-based env around a transition model: a plain network is one line from a planner."""

from __future__ import annotations

import torch
from tensordict import NestedKey, TensorDict, TensorDictBase, unravel_key
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from torch import nn
from torchrl.data import Composite, TensorSpec, Unbounded
from torchrl.envs.model_based import ModelBasedEnvBase

from torchrl_grasp.objectives import goal_distance


class TransitionModelEnv(ModelBasedEnvBase):
    """A :class:`~torchrl.envs.model_based.ModelBasedEnvBase` around a transition model.

    The env's state is what the model maps to the next state; the goal rides along unchanged
    under ``goal_key`` (same structure as the state, or a subset of it), so planners read it at
    every step of ``env.rollout(n, planner)``. The reward is minus the Euclidean distance of
    the next state to the goal (zero without a goal); the env terminates where the world model
    writes ``done`` or ``terminated`` true, and never otherwise.

    Args:
        world_model (nn.Module or TensorDictModuleBase): either a plain module
            ``f(state, action) -> next_state`` (one state tensor, under ``state_key``), or a
            TensorDict module that reads the state keys and ``action_key`` and writes the
            next state keys (nested keys and several tensors allowed).
        state_spec (TensorSpec or Composite): the state: one spec (stored under
            ``state_key``) or a Composite of several.
        action_spec (TensorSpec): the action; a bounded spec bounds the planners' actions.

    Keyword Args:
        state_key (NestedKey): where a single state lives. Defaults to ``"observation"``.
        action_key (NestedKey): Defaults to ``"action"``.
        goal_key (NestedKey or None): where the goal lives; ``None`` for no goal.
            Defaults to ``"goal"``.
        device (torch.device): Defaults to ``"cpu"``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> start = TensorDict(observation=torch.zeros(2), goal=torch.ones(2))
        >>> full_speed = lambda td: td.set("action", torch.ones(2))
        >>> td = env.rollout(3, full_speed, tensordict=env.reset(start), auto_reset=False)
        >>> td["next", "observation"][-1], td["next", "reward"][-1]
        (tensor([0.3000, 0.3000]), tensor([-0.9899]))
    """

    def __init__(
        self,
        world_model: nn.Module | TensorDictModuleBase,
        state_spec: TensorSpec,
        action_spec: TensorSpec,
        *,
        state_key: NestedKey = "observation",
        action_key: NestedKey = "action",
        goal_key: NestedKey | None = "goal",
        device: torch.device | str = "cpu",
    ):
        if not isinstance(state_spec, Composite):
            state_spec = Composite({state_key: state_spec})
        state_keys = [unravel_key(key) for key in state_spec.keys(True, True)]
        if not isinstance(world_model, TensorDictModuleBase):
            if len(state_keys) != 1:
                raise ValueError(
                    f"A plain nn.Module world model takes one state tensor, but the state spec has "
                    f"{len(state_keys)} keys {state_keys}: wrap it in a TensorDictModule."
                )
            world_model = TensorDictModule(world_model, in_keys=[state_keys[0], action_key], out_keys=[state_keys[0]])
        super().__init__(world_model, device=device)
        self.model_state_keys = state_keys
        self.goal_key = None if goal_key is None else unravel_key(goal_key)
        observation_spec = state_spec.clone()
        if self.goal_key is not None:
            observation_spec[self.goal_key] = state_spec.clone()
            if len(self.model_state_keys) == 1:
                observation_spec[self.goal_key] = state_spec[self.model_state_keys[0]].clone()
        self.observation_spec = observation_spec.to(device)
        self.state_spec = observation_spec.clone().to(device)
        self.action_spec = action_spec.to(device)
        self.reward_spec = Unbounded((1,), device=device)

    def _goal(self, td: TensorDictBase) -> TensorDictBase | None:
        """The goal in ``td`` as a TensorDict of state keys (a tensor goal is the single state's)."""
        goal = td.get(self.goal_key, None) if self.goal_key is not None else None
        if isinstance(goal, torch.Tensor):
            return TensorDict({self.model_state_keys[0]: goal}, batch_size=td.batch_size)
        return goal

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        out = self.world_model(tensordict.clone(recurse=False))
        next_td = out.select(*self.model_state_keys)
        if self.goal_key is not None and self.goal_key in tensordict.keys(True):
            next_td.set(self.goal_key, tensordict.get(self.goal_key))
        goal = self._goal(next_td)
        # The planners' own definition of the distance to the goal (torchrl_grasp.objectives).
        distance = goal_distance(next_td, goal) if goal is not None else torch.zeros(out.batch_size, device=self.device)
        next_td.set("reward", -distance.unsqueeze(-1))
        done = torch.zeros(*out.batch_size, 1, dtype=torch.bool, device=self.device)
        for key in ("done", "terminated"):  # a model whose episodes end says so
            flag = out.get(key, None)
            if flag is not None:
                done = done | flag.reshape(done.shape).bool()
        next_td.set("done", done)
        next_td.set("terminated", done.clone())
        return next_td

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        if tensordict is None or tensordict.is_empty():
            batch_size = () if tensordict is None else tensordict.batch_size
            return self.observation_spec.rand(batch_size)
        missing = [key for key in self.model_state_keys if key not in tensordict.keys(True)]
        if missing:
            raise ValueError(f"reset got a tensordict without the state keys {missing}.")
        keys = self.model_state_keys + ([self.goal_key] if self.goal_key in tensordict.keys(True) else [])
        return tensordict.select(*keys).clone()

    def _set_seed(self, seed: int | None) -> None:
        """Nothing to seed: the transition model is deterministic."""
