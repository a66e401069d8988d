"""How well a transition model predicts real trajectories: one-step and k-step open-loop errors."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from tensordict import NestedKey, TensorDictBase
from torch import Tensor

from torchrl_grasp.world_models.data import TransitionData

Model = Callable[[Tensor, Tensor], Tensor]
HORIZONS = (1, 10, 50)


@torch.no_grad()
def open_loop_errors(
    model: Model,
    data: TransitionData,
    horizons: Sequence[int] = HORIZONS,
    *,
    dims: Sequence[int] | None = None,
) -> dict[int, float]:
    r"""The mean Euclidean error of the model's open-loop prediction ``k`` steps ahead, ``k`` in ``horizons``.

    From every state :math:`s_i` of every trajectory, the model replays the real actions
    :math:`\hat s_{j+1} = F(\hat s_j, a_{i+j})` and is compared with the real state
    :math:`s_{i+k}` wherever the trajectory is at least ``k`` steps longer; one batched model
    call per step serves every start and horizon. ``dims`` restricts the error to some state
    dimensions (positions, say); all by default. A horizon longer than every trajectory gets
    ``nan``.

    Examples:
        >>> import torch
        >>> states = torch.arange(6.0)[:, None]  # s_{t+1} = s_t + a_t with a = 1
        >>> data = TransitionData(states[:5], torch.ones(5, 1), states[1:], torch.zeros(5, dtype=torch.long))
        >>> open_loop_errors(lambda s, a: s + 0.5 * a, data, horizons=(1, 4, 9))
        {1: 0.5, 4: 2.0, 9: nan}
    """
    n = len(data)
    rows = torch.arange(n)
    predicted = data.states
    errors = {}
    for step in range(1, max(horizons) + 1):
        current = (rows + step - 1).clamp(max=n - 1)
        predicted = model(predicted, data.actions[current])
        if step in horizons:
            valid = (rows + step - 1 < n) & (data.trajectory_ids[current] == data.trajectory_ids)
            gap = predicted[valid] - data.next_states[current[valid]]
            gap = gap if dims is None else gap[:, list(dims)]
            errors[step] = gap.norm(dim=-1).mean().item() if valid.any() else float("nan")
    return errors


def trajectory_open_loop_errors(
    model: Model,
    trajectory: TensorDictBase,
    horizons: Sequence[int] = HORIZONS,
    *,
    state_key: NestedKey = "observation",
    action_key: NestedKey = "action",
    dims: Sequence[int] | None = None,
) -> dict[int, float]:
    """:func:`open_loop_errors` along real trajectories, such as the output of ``env.rollout``, ``[*B, T]``.

    Each batch element is one trajectory of ``T`` steps, read at ``state_key``, ``action_key``
    and ``("next", state_key)``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> states = torch.arange(4.0).expand(3, 4)[..., None]  # 3 trajectories, a = 1
        >>> trajectory = TensorDict(
        ...     observation=states[:, :3], action=torch.ones(3, 3, 1),
        ...     next=TensorDict(observation=states[:, 1:], batch_size=[3, 3]), batch_size=[3, 3])
        >>> trajectory_open_loop_errors(lambda s, a: s + a, trajectory, horizons=(1, 3))
        {1: 0.0, 3: 0.0}
    """
    steps = trajectory.batch_size[-1]
    count = trajectory.batch_size[:-1].numel()
    flat = trajectory.reshape(-1)
    data = TransitionData(
        states=flat.get(state_key),
        actions=flat.get(action_key),
        next_states=flat.get(("next", state_key)),
        trajectory_ids=torch.arange(count).repeat_interleave(steps),
    )
    return open_loop_errors(model, data, horizons, dims=dims)


@dataclass(frozen=True)
class ValidationReport:
    """A model's errors on held-out trajectories, in state units.

    Attributes:
        one_step_mse (float): the mean over transitions and state dimensions of the squared error.
        open_loop_error (dict[int, float]): horizon ``k`` -> mean Euclidean error ``k`` steps ahead
            (see :func:`open_loop_errors`).
        disagreement (float): the mean one-step ensemble disagreement (zero for one network).
        num_transitions (int): held-out transitions.
        num_trajectories (int): held-out trajectories.
        no_change_error (dict[int, float]): horizon ``k`` -> the error of predicting that the
            state does not change: the bar a model must clear (``{}`` in reports cached before it).

    Examples:
        >>> report = ValidationReport(1e-4, open_loop_error={1: 0.01, 10: 0.08}, num_trajectories=3,
        ...                           no_change_error={1: 0.05, 10: 0.5})
        >>> report.open_loop_error[10], report.worse_than_no_change()
        (0.08, [])
        >>> print(report)  # how load_or_train's callers print it
        metric                 value
        ---------------------  ---------
        one-step MSE           1.000e-04
        open-loop error @ 1    1.000e-02
        open-loop error @ 10   8.000e-02
        ensemble disagreement  0.000e+00
        no-change error @ 1    5.000e-02
        no-change error @ 10   5.000e-01
        (0 transitions in 3 held-out trajectories)
    """

    one_step_mse: float
    open_loop_error: dict[int, float] = field(default_factory=dict)
    disagreement: float = 0.0
    num_transitions: int = 0
    num_trajectories: int = 0
    no_change_error: dict[int, float] = field(default_factory=dict)

    def worse_than_no_change(self) -> list[int]:
        """The horizons at which the model's error exceeds predicting no change (or is not finite);
        horizons longer than every held-out trajectory (``nan`` for both) are not judged."""
        bar = {k: error for k, error in self.no_change_error.items() if math.isfinite(error)}
        return [k for k, error in sorted(self.open_loop_error.items()) if k in bar and not error <= bar[k]]

    def __str__(self) -> str:
        rows = [("one-step MSE", self.one_step_mse)]
        rows += [(f"open-loop error @ {k}", error) for k, error in sorted(self.open_loop_error.items())]
        rows += [("ensemble disagreement", self.disagreement)]
        rows += [(f"no-change error @ {k}", error) for k, error in sorted(self.no_change_error.items())]
        width = max(len(name) for name, _ in rows)
        lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ---------"]
        lines += [f"{name:<{width}}  {value:.3e}" for name, value in rows]
        lines.append(f"({self.num_transitions} transitions in {self.num_trajectories} held-out trajectories)")
        return "\n".join(lines)


@torch.no_grad()
def validate(model: Model, data: TransitionData, horizons: Sequence[int] = HORIZONS) -> ValidationReport:
    """The :class:`ValidationReport` of ``model`` on held-out ``data``.

    ``disagreement`` is read from ``model.disagreement(state, action)`` where the model has one.
    A model whose open-loop error exceeds predicting no change, at any horizon, gets a
    ``RuntimeWarning`` (:func:`warn_if_worse_than_no_change`).

    Examples:
        >>> import torch
        >>> states = torch.arange(6.0)[:, None]
        >>> data = TransitionData(states[:5], torch.ones(5, 1), states[1:], torch.zeros(5, dtype=torch.long))
        >>> print(validate(lambda s, a: s + 0.5 * a, data, horizons=(1, 3)))
        metric                 value
        ---------------------  ---------
        one-step MSE           2.500e-01
        open-loop error @ 1    5.000e-01
        open-loop error @ 3    1.500e+00
        ensemble disagreement  0.000e+00
        no-change error @ 1    1.000e+00
        no-change error @ 3    3.000e+00
        (5 transitions in 1 held-out trajectories)
    """
    one_step = (model(data.states, data.actions) - data.next_states).square().mean().item()
    disagreement = getattr(model, "disagreement", None)
    report = ValidationReport(
        one_step_mse=one_step,
        open_loop_error=open_loop_errors(model, data, horizons),
        disagreement=disagreement(data.states, data.actions).mean().item()
        if disagreement is not None
        else 0.0,
        num_transitions=len(data),
        num_trajectories=data.num_trajectories,
        no_change_error=open_loop_errors(_no_change, data, horizons),
    )
    warn_if_worse_than_no_change(report)
    return report


def warn_if_worse_than_no_change(report: ValidationReport, stacklevel: int = 3) -> None:
    """Warns when ``report``'s model predicts worse than no change at some horizon: it has not
    learned the dynamics, and planning on it plans on noise.

    Examples:
        >>> import warnings
        >>> bad = ValidationReport(1.0, open_loop_error={1: 3.0, 50: 1e5}, no_change_error={1: 0.1, 50: 2.0})
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_if_worse_than_no_change(bad)
        >>> print(caught[0].message)  # doctest: +NORMALIZE_WHITESPACE
        The world model predicts worse than no change at 1, 50 step(s) (open-loop error 3 vs 0.1, 1e+05 vs 2 for
        a model that predicts no change): planning on it there plans on noise. Check the data and train longer,
        with a lower lr or less input noise; a multi-step fit that diverged is worse at every horizon.
    """
    worse = report.worse_than_no_change()
    if not worse:
        return
    pairs = ", ".join(f"{report.open_loop_error[k]:.3g} vs {report.no_change_error[k]:.3g}" for k in worse)
    warnings.warn(
        f"The world model predicts worse than no change at {', '.join(map(str, worse))} step(s) (open-loop error "
        f"{pairs} for a model that predicts no change): planning on it there plans on noise. Check the data "
        "and train longer, with a lower lr or less input noise; a multi-step fit that diverged is worse at "
        "every horizon.",
        RuntimeWarning,
        stacklevel=stacklevel,
    )


def _no_change(state: Tensor, action: Tensor) -> Tensor:
    return state
