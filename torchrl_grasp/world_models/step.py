"""One time-batched world-model step over flat tensors: the planners' only view of a model."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import NamedTuple

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


def infer_done_keys(module: TensorDictModuleBase) -> list[NestedKey]:
    """The keys where a TensorDict world model writes that the episode ended: those named ``"done"``
    or ``"terminated"`` (at any depth, under ``"next"`` or not).

    Examples:
        >>> from tensordict.nn import TensorDictModule
        >>> model = TensorDictModule(lambda s, a: (s + a, s[..., :1] > 1), in_keys=["s", "action"], out_keys=["s", "done"])
        >>> infer_done_keys(model)
        ['done']
    """
    keys = [unravel_key(key) for key in getattr(module, "out_keys", [])]
    return [key for key in keys if (key[-1] if isinstance(key, tuple) else key) in ("done", "terminated")]


class Prediction(NamedTuple):
    """One batched model call's outcome for ``M`` inputs."""

    #: the next state per state key, ``[M, *F_k]``, in the inputs' dtype.
    states: list[Tensor]
    #: the reward, summed over its features, ``[M]``; ``None`` unless asked for.
    reward: Tensor | None
    #: whether the model says the episode ended on this step, ``[M]``; ``None`` if it writes no done flag.
    done: Tensor | None
    #: the cost the model writes beside the prediction (an ensemble's disagreement), summed over its
    #: features, ``[M]``; ``None`` unless asked for.
    penalty: Tensor | None = None


class ModelRollout(NamedTuple):
    """A serial rollout of ``N`` plans over ``T`` steps (:meth:`WorldModelStep.rollout`)."""

    #: the states ``s_0 .. s_T`` per state key, ``[N, T+1, *F_k]``.
    states: list[Tensor]
    #: the rewards ``[N, T]``; ``None`` unless asked for.
    rewards: Tensor | None
    #: the done flags ``[N, T]``; ``None`` if the model writes none.
    done: Tensor | None
    #: the penalties ``[N, T]``; ``None`` unless asked for.
    penalties: Tensor | None = None


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
            :meth:`predict` with ``with_reward``.
        reward_transform (callable, optional): applied to each predicted reward (an env's
            ``RewardScaling``, see :func:`~torchrl_grasp.world_models.transformed.model_based_env`).
        penalty_key (NestedKey, optional): where the model writes a cost of its prediction, such
            as an ensemble's disagreement (:func:`~torchrl_grasp.world_models.learned.model_env`
            writes it at ``"disagreement"``), for :meth:`predict` with ``with_penalty``.

    Keyword Args:
        samples (int): a stochastic model is called this many times per input (in the same
            batched call) and its predictions, rewards and done flags averaged (done: any sample).
            Defaults to ``1``.
        mean_keys (mapping, optional): state key -> the key where the model writes the value to plan
            on instead, such as the mean of a sampled state (``{"state": "prior_mean"}`` for a
            Dreamer prior that writes its mean there). Defaults to ``None``: the state keys.

    **Stochastic models.** Inside :meth:`fixed_noise` every call draws the model's randomness
    (``torch.randn_like`` and the like, from the global RNG) from a seed fixed for the block and
    the call's time step: the same inputs give the same outputs, so a plan is optimised against
    one draw of the model's noise (common random numbers), and the caller's RNG state is
    restored on exit.

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
        penalty_key: NestedKey | None = None,
        *,
        samples: int = 1,
        mean_keys: Mapping[NestedKey, NestedKey] | None = None,
    ):
        self.module = module
        self.reward_transform = reward_transform
        self.state_keys = [unravel_key(key) for key in state_keys]
        self.action_key = unravel_key(action_key)
        self.reward_key = None if reward_key is None else unravel_key(reward_key)
        self.penalty_key = None if penalty_key is None else unravel_key(penalty_key)
        if not isinstance(samples, int) or samples < 1:
            raise ValueError(f"model_samples must be a positive int, got {samples!r}.")
        self.samples = samples
        self.mean_keys = {unravel_key(key): unravel_key(value) for key, value in (mean_keys or {}).items()}
        unknown = [key for key in self.mean_keys if key not in self.state_keys]
        if unknown:
            raise ValueError(f"mean_keys names {unknown}, which are not state keys {self.state_keys}.")
        self.done_keys = infer_done_keys(module)
        self.direct, self.direct_extras = None, []
        if not self.mean_keys:
            self.direct, self.direct_extras = _direct_callable(
                module, self.state_keys, self.action_key, [self.reward_key, self.penalty_key]
            )
        self._noise_seed: int | None = None
        self._noise_device: torch.device | None = None

    @contextlib.contextmanager
    def fixed_noise(self, seed: int, device: torch.device) -> Iterator[None]:
        """Within the block, the model's randomness is a function of ``seed`` and the call's step
        (see the class's docstring); the global RNG state of the CPU and of ``device`` is restored after.

        Examples:
            >>> from tensordict.nn import TensorDictModule
            >>> noisy = TensorDictModule(lambda s, a: s + a + torch.randn_like(s), in_keys=["s", "action"], out_keys=["s"])
            >>> step, x = WorldModelStep(noisy, ["s"], "action"), [torch.zeros(2, 3)]
            >>> before = torch.get_rng_state()
            >>> with step.fixed_noise(seed=7, device=torch.device("cpu")):
            ...     same = torch.equal(step(x, torch.ones(2, 3))[0], step(x, torch.ones(2, 3))[0])
            >>> same, torch.equal(torch.get_rng_state(), before)
            (True, True)
        """
        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            self._noise_seed, self._noise_device = seed, device
            try:
                yield
            finally:
                self._noise_seed, self._noise_device = None, None

    @torch.no_grad()
    def draws_noise(self, states: Sequence[Tensor], action: Tensor) -> bool:
        """Whether the model's prediction on ``states`` and ``action`` depends on its noise: two calls
        on the same inputs under two noise seeds differ (or, outside :meth:`fixed_noise`, two calls
        in a row). A deterministic model never does.

        Examples:
            >>> from tensordict.nn import TensorDictModule
            >>> noisy = TensorDictModule(lambda s, a: s + a + torch.randn_like(s), in_keys=["s", "action"], out_keys=["s"])
            >>> plain = TensorDictModule(lambda s, a: s + a, in_keys=["s", "action"], out_keys=["s"])
            >>> x, a = [torch.zeros(2, 3)], torch.ones(2, 3)
            >>> WorldModelStep(noisy, ["s"], "action").draws_noise(x, a), WorldModelStep(plain, ["s"], "action").draws_noise(x, a)
            (True, False)
        """
        first, second = (self.predict(states, action, step=step).states for step in (0, 1))
        return any(not torch.equal(a, b) for a, b in zip(first, second))

    def reseed(self, step: int | None = None) -> None:
        """Inside :meth:`fixed_noise`, seeds the global RNG for one call: the block's seed, offset by
        the time step (``None``: a time-batched call); outside it, nothing. :meth:`predict` calls it
        unless told not to (a compiled caller seeds before the compiled region)."""
        if self._noise_seed is None:
            return
        seed = (self._noise_seed + (0 if step is None else step + 1)) % 2**63
        torch.default_generator.manual_seed(seed)
        if self._noise_device.type == "cuda":
            torch.cuda.default_generators[self._noise_device.index or 0].manual_seed(seed)

    def __call__(self, states: Sequence[Tensor], action: Tensor) -> list[Tensor]:
        """Next states, one tensor per state key, for ``states`` ``[N, *F_k]`` and ``action`` ``[N, *A]``."""
        return self.predict(states, action).states

    def predict(
        self,
        states: Sequence[Tensor],
        action: Tensor,
        *,
        with_reward: bool = False,
        with_penalty: bool = False,
        step: int | None = None,
        reseed: bool = True,
    ) -> Prediction:
        """One batched call on ``states`` ``[M, *F_k]`` and ``action`` ``[M, *A]``: the :class:`Prediction`.

        ``step`` is the time step of a serial rollout's call (``None`` for a call over many time
        steps); inside :meth:`fixed_noise` it picks the call's noise (``reseed=False``: the caller
        has called :meth:`reseed` itself).

        Examples:
            >>> from tensordict.nn import TensorDictModule
            >>> model = TensorDictModule(lambda s, a: (s + a, s + a > 1), in_keys=["s", "action"], out_keys=["s", "done"])
            >>> WorldModelStep(model, ["s"], "action").predict([torch.tensor([[0.0], [0.5]])], torch.full((2, 1), 0.6)).done
            tensor([False,  True])
            >>> rewarding = TensorDictModule(
            ...     lambda s, a: (s + a, (s + a).sum(-1, keepdim=True)), in_keys=["s", "action"], out_keys=["s", "r"]
            ... )
            >>> WorldModelStep(rewarding, ["s"], "action", reward_key="r").predict(
            ...     [torch.zeros(2, 3)], torch.ones(2, 3), with_reward=True
            ... ).reward
            tensor([3., 3.])
            >>> unsure = TensorDictModule(
            ...     lambda s, a: (s + a, s.abs()), in_keys=["s", "action"], out_keys=["s", "disagreement"]
            ... )
            >>> WorldModelStep(unsure, ["s"], "action", penalty_key="disagreement").predict(
            ...     [torch.tensor([[1.0, -2.0]])], torch.zeros(1, 2), with_penalty=True
            ... ).penalty
            tensor([3.])
        """
        if reseed:
            self.reseed(step)
        batch, samples = action.shape[0], self.samples
        if samples > 1:  # every input `samples` times in one call, then the average
            states = [value.repeat(samples, *[1] * (value.ndim - 1)) for value in states]
            action = action.repeat(samples, *[1] * (action.ndim - 1))
        predictions, reward, done, penalty = self._call(states, action, with_reward, with_penalty)
        if with_reward and self.reward_transform is not None:
            reward = self.reward_transform(reward)
        if reward is not None:
            reward = reward.reshape(samples, batch, -1).sum(-1).mean(0)
        if penalty is not None:
            penalty = penalty.reshape(samples, batch, -1).sum(-1).mean(0)
        if done is not None:
            done = done.reshape(samples, batch, -1).any(-1).any(0)
        next_states = []
        for key, value, predicted in zip(self.state_keys, states, predictions):
            if predicted.shape != value.shape:
                raise ValueError(
                    f"The world model maps state {key!r} of shape {tuple(value.shape[1:])} to shape "
                    f"{tuple(predicted.shape[1:])}; it must return the next state in the same shape."
                )
            if predicted.dtype != value.dtype and predicted.is_floating_point():
                # A model that computes in another precision (an fp64 action spec promotes cat([s, a])):
                # the plan stays in its states' dtype.
                predicted = predicted.to(value.dtype)
            if samples > 1:
                predicted = predicted.reshape(samples, batch, *predicted.shape[1:]).mean(0)
            next_states.append(predicted)
        return Prediction(next_states, reward, done, penalty)

    def _call(self, states: Sequence[Tensor], action: Tensor, with_reward: bool, with_penalty: bool):
        """The model on one batch: its predictions per state key, its reward, done flags and penalty
        (each ``None`` where not asked for or not written)."""
        reward = None
        wanted = [key for key, asked in ((self.reward_key, with_reward), (self.penalty_key, with_penalty)) if asked]
        if self.direct is not None and all(key in self.direct_extras for key in wanted):
            out = self.direct(*states, action)
            predictions = [out] if isinstance(out, Tensor) else list(out)
            names = [*self.state_keys, *self.direct_extras]
            if len(predictions) != len(names):
                raise ValueError(
                    f"The world model returned {len(predictions)} tensors for {len(names)} outputs "
                    f"{names}: it must return one next state per state key. Name its other outputs: "
                    "wrap it in a TensorDictModule whose out_keys list them."
                )
            extras = dict(zip(self.direct_extras, predictions[len(self.state_keys) :]))
            reward = extras.get(self.reward_key) if with_reward else None
            penalty = extras.get(self.penalty_key) if with_penalty else None
            return predictions[: len(self.state_keys)], reward, None, penalty
        td = TensorDict(batch_size=action.shape[:1], device=action.device)
        for key, value in zip(self.state_keys, states):
            td.set(key, value)
        td.set(self.action_key, action)
        out = self.module(td)
        predictions = [out.get(self.mean_keys.get(key, key), None) for key in self.state_keys]
        absent = [self.mean_keys[key] for key, value in zip(self.state_keys, predictions) if value is None]
        if absent:
            raise KeyError(
                f"mean_keys names {absent}, which the world model does not write; it wrote "
                f"{sorted(map(str, out.keys(True, True)))}."
            )
        if with_reward:
            reward = _written(out, self.reward_key, "the reward", "reward_key", purpose="Planning by reward")
        penalty = _written(out, self.penalty_key, "a penalty", "penalty_key") if with_penalty else None
        done = None
        for key in self.done_keys:
            flag = out.get(key).reshape(action.shape[0], -1).bool()
            done = flag if done is None else done | flag
        return predictions, reward, done, penalty

    def rollout(
        self, start: Sequence[Tensor], actions: Tensor, with_reward: bool = False, with_penalty: bool = False
    ) -> ModelRollout:
        """The serial rollout ``s_{t+1} = F(s_t, a_t)`` of ``actions`` ``[N, T, *A]`` from ``start`` ``[N, *F_k]``.

        Returns the :class:`ModelRollout`. This is the one place that steps the model through
        time in a loop; it is what syncs and plan evaluation need, not the collocation iterations.
        """
        states = list(start)
        trajectory = [[value] for value in states]
        predictions = []
        for t in range(actions.shape[1]):
            prediction = self.predict(
                states, actions[:, t], with_reward=with_reward, with_penalty=with_penalty, step=t
            )
            states = prediction.states
            predictions.append(prediction)
            for key_trajectory, value in zip(trajectory, states):
                key_trajectory.append(value)

        def over_time(name: str) -> Tensor | None:
            values = [getattr(prediction, name) for prediction in predictions]
            return None if values[0] is None else torch.stack(values, dim=1)

        return ModelRollout(
            [torch.stack(key_trajectory, dim=1) for key_trajectory in trajectory],
            over_time("reward"),
            over_time("done"),
            over_time("penalty"),
        )


def _written(out, key: NestedKey | None, what: str, argument: str, purpose: str | None = None) -> Tensor:
    """``out[key]``, or a KeyError that says where the model must write ``what``."""
    value = out.get(key, None) if key is not None else None
    if value is None:
        purpose = purpose or f"Planning with {argument.removesuffix('_key')}_weight"
        raise KeyError(
            f"{purpose} needs the world model to write {what} at {argument}={key!r}; it wrote "
            f"{sorted(map(str, out.keys(True, True)))}."
        )
    return value


def _direct_callable(
    module: TensorDictModuleBase,
    state_keys: list[NestedKey],
    action_key: NestedKey,
    extra_keys: Sequence[NestedKey | None],
):
    """``(function, extras)``: the function a plain ``TensorDictModule`` wraps, if it maps
    ``(*state_keys, action_key)`` to ``state_keys`` followed by some of ``extra_keys`` (the reward,
    the penalty), and the extras it writes, in order; else ``(None, [])``.
    """
    if type(module) is not TensorDictModule:  # subclasses (probabilistic, safe...) do more than call
        return None, []
    reads = [unravel_key(key) for key in module.in_keys]
    writes = [unravel_key(key) for key in module.out_keys]
    if reads != [*state_keys, action_key] or module._forward_hooks or module._forward_pre_hooks:
        return None, []
    extras = writes[len(state_keys) :]
    known = [key for key in extra_keys if key is not None]
    if writes[: len(state_keys)] != state_keys or any(key not in known for key in extras):
        return None, []
    return module.module, extras
