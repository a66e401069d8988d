"""One time-batched world-model step over flat tensors: the planners' only view of a model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tensordict import NestedKey, TensorDict, unravel_key
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from torch import Tensor


def infer_state_keys(module: TensorDictModuleBase, action_key: NestedKey) -> list[NestedKey]:
    """The keys a TensorDict world model both reads and writes (its state), ``action_key`` aside.

    Examples:
        >>> import torch
        >>> from tensordict.nn import TensorDictModule
        >>> model = TensorDictModule(
        ...     lambda s, a: (s + a, s.sum(-1, keepdim=True)),
        ...     in_keys=[("agent", "position"), "action"],
        ...     out_keys=[("agent", "position"), "reward"],
        ... )
        >>> infer_state_keys(model, "action")
        [('agent', 'position')]
    """
    action_key = unravel_key(action_key)
    written = {unravel_key(key) for key in module.out_keys}
    keys = [unravel_key(key) for key in module.in_keys]
    state_keys = [key for key in keys if key in written and key != action_key]
    if not state_keys:
        raise ValueError(
            f"Could not infer state keys: the world model reads {module.in_keys} and writes "
            f"{module.out_keys}, and no key other than {action_key!r} is both read and written. "
            "Pass state_keys explicitly."
        )
    return state_keys


class WorldModelStep:
    """Calls a TensorDict world model on flat batches of tensors: ``F(states, action) -> next states``.

    The planners keep their variables as plain tensors and evaluate every time step of
    every plan in ONE call of this object on a flat batch ``[N]`` (``N = plans x steps``):
    TensorDicts are built only here, at the model boundary. A flat 1-D batch also suits
    modules that accept only 1-D batches, such as the ``GRUCell`` in TorchRL's ``RSSMPrior``.

    A plain :class:`~tensordict.nn.TensorDictModule` that reads exactly ``state_keys`` and
    ``action_key`` (in that order) and writes exactly ``state_keys`` is called directly on the
    tensors it wraps, without building a TensorDict: the same function, minus ~0.2 ms of
    TensorDict bookkeeping per call, which is most of a small model's planning step.

    Args:
        module (TensorDictModuleBase): reads ``state_keys`` and ``action_key``, writes
            the next ``state_keys``.
        state_keys (sequence of NestedKey): the state, in a fixed order.
        action_key (NestedKey): where the action goes.
        reward_key (NestedKey, optional): where the model writes its reward, for
            :meth:`with_reward`.
        reward_transform (callable, optional): applied to each predicted reward (an env's
            ``RewardScaling``, see :func:`~torchrl_grasp.world_models.transformed.model_based_env`).

    Examples:
        >>> import torch
        >>> from tensordict.nn import TensorDictModule
        >>> model = TensorDictModule(lambda s, a: s + a, in_keys=["s", "action"], out_keys=["s"])
        >>> step = WorldModelStep(model, ["s"], "action")
        >>> step([torch.zeros(3, 2)], torch.ones(3, 2))[0]
        tensor([[1., 1.],
                [1., 1.],
                [1., 1.]])
    """

    def __init__(
        self,
        module: TensorDictModuleBase,
        state_keys: Sequence[NestedKey],
        action_key: NestedKey,
        reward_key: NestedKey | None = None,
        reward_transform: Callable[[Tensor], Tensor] | None = None,
    ):
        self.module = module
        self.reward_transform = reward_transform
        self.state_keys = [unravel_key(key) for key in state_keys]
        self.action_key = unravel_key(action_key)
        self.reward_key = None if reward_key is None else unravel_key(reward_key)
        self.direct, self.direct_writes_reward = _direct_callable(
            module, self.state_keys, self.action_key, self.reward_key
        )

    def __call__(self, states: Sequence[Tensor], action: Tensor) -> list[Tensor]:
        """Next states, one tensor per state key, for ``states`` ``[N, *F_k]`` and ``action`` ``[N, *A]``."""
        return self._predict(states, action, with_reward=False)[0]

    def with_reward(self, states: Sequence[Tensor], action: Tensor) -> tuple[list[Tensor], Tensor]:
        """Next states and the reward the model writes at ``reward_key``, summed to ``[N]``.

        Examples:
            >>> import torch
            >>> from tensordict.nn import TensorDictModule
            >>> model = TensorDictModule(
            ...     lambda s, a: (s + a, (s + a).sum(-1, keepdim=True)), in_keys=["s", "action"], out_keys=["s", "r"]
            ... )
            >>> WorldModelStep(model, ["s"], "action", reward_key="r").with_reward([torch.zeros(2, 3)], torch.ones(2, 3))[1]
            tensor([3., 3.])
        """
        return self._predict(states, action, with_reward=True)

    def _predict(self, states: Sequence[Tensor], action: Tensor, with_reward: bool):
        reward = None
        if self.direct is not None and (self.direct_writes_reward or not with_reward):
            out = self.direct(*states, action)
            predictions = [out] if isinstance(out, Tensor) else list(out)
            expected = len(self.state_keys) + self.direct_writes_reward
            if len(predictions) != expected:
                raise ValueError(
                    f"The world model returned {len(predictions)} tensors for {expected} outputs "
                    f"{[*self.state_keys, *([self.reward_key] if self.direct_writes_reward else [])]}: it must "
                    "return one next state per state key. Name its other outputs: wrap it in a "
                    "TensorDictModule whose out_keys list them."
                )
            if self.direct_writes_reward:
                *predictions, reward = predictions
        else:
            td = TensorDict(batch_size=action.shape[:1], device=action.device)
            for key, value in zip(self.state_keys, states):
                td.set(key, value)
            td.set(self.action_key, action)
            out = self.module(td)
            predictions = [out.get(key) for key in self.state_keys]
            if with_reward:
                reward = out.get(self.reward_key, None) if self.reward_key is not None else None
                if reward is None:
                    raise KeyError(
                        f"Planning by reward needs the world model to write the reward at reward_key="
                        f"{self.reward_key!r}; it wrote {sorted(map(str, out.keys(True, True)))}."
                    )
        if with_reward and self.reward_transform is not None:
            reward = self.reward_transform(reward)
        reward = reward.reshape(action.shape[0], -1).sum(-1) if with_reward else None
        next_states = []
        for key, value, predicted in zip(self.state_keys, states, predictions):
            if predicted.shape != value.shape:
                raise ValueError(
                    f"The world model maps state {key!r} of shape {tuple(value.shape)} to shape "
                    f"{tuple(predicted.shape)}; it must return the next state in the same shape."
                )
            if predicted.dtype != value.dtype and predicted.is_floating_point():
                # A model that computes in another precision (an fp64 action spec promotes cat([s, a])):
                # the plan stays in its states' dtype.
                predicted = predicted.to(value.dtype)
            next_states.append(predicted)
        return next_states, reward

    def rollout(self, start: Sequence[Tensor], actions: Tensor, with_reward: bool = False):
        """The serial rollout ``s_{t+1} = F(s_t, a_t)``: states ``[N, T+1, *F_k]`` from ``start`` ``[N, *F_k]``.

        With ``with_reward``, also the rewards ``[N, T]`` (see :meth:`with_reward`). This is the
        one place that steps the model through time in a loop; it is what syncs and plan
        evaluation need, not the collocation iterations.
        """
        states = list(start)
        trajectory = [[value] for value in states]
        rewards = []
        for t in range(actions.shape[1]):
            states, reward = self._predict(states, actions[:, t], with_reward)
            rewards.append(reward)
            for key_trajectory, value in zip(trajectory, states):
                key_trajectory.append(value)
        trajectory = [torch.stack(key_trajectory, dim=1) for key_trajectory in trajectory]
        return (trajectory, torch.stack(rewards, dim=1)) if with_reward else trajectory


def _direct_callable(
    module: TensorDictModuleBase, state_keys: list[NestedKey], action_key: NestedKey, reward_key: NestedKey | None
):
    """``(function, writes_reward)``: the function a plain ``TensorDictModule`` wraps, if it maps
    ``(*state_keys, action_key)`` to ``state_keys`` (or to ``[*state_keys, reward_key]``); else ``(None, False)``.
    """
    if type(module) is not TensorDictModule:  # subclasses (probabilistic, safe...) do more than call
        return None, False
    reads = [unravel_key(key) for key in module.in_keys]
    writes = [unravel_key(key) for key in module.out_keys]
    if reads != [*state_keys, action_key] or module._forward_hooks or module._forward_pre_hooks:
        return None, False
    if writes == state_keys:
        return module.module, False
    if reward_key is not None and writes == [*state_keys, reward_key]:
        return module.module, True
    return None, False
