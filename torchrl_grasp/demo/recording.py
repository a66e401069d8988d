"""GRASP's virtual states at a few iterations of a plan, for the demo's picture, through the planner's callback."""

from __future__ import annotations

from collections.abc import Iterable

from tensordict import TensorDictBase


def snapshot_iterations(optim_steps: int, count: int = 4) -> list[int]:
    """``count`` iterations spread evenly from ``0`` (the initial plan) to ``optim_steps`` (the end).

    Examples:
        >>> snapshot_iterations(300)
        [0, 100, 200, 300]
        >>> snapshot_iterations(40)
        [0, 13, 27, 40]
        >>> snapshot_iterations(2)
        [0, 1, 2]
    """
    return sorted({round(i * optim_steps / (count - 1)) for i in range(count)})


class IterateRecorder:
    """A planner callback that keeps a copy of the virtual states after each of ``iterations``.

    After a plan, ``iterates`` maps ``k`` to the virtual states after ``k`` iterations (``0``: the
    initial plan), a TensorDict ``[*B, restarts, T]`` (states :math:`s_1 .. s_T`), for every
    ``k`` in ``iterations`` that was reached and for the last iteration run. The restart whose
    plan was returned is :attr:`PlanResult.restart <torchrl_grasp.PlanResult>`.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import GRASPPlanner, TransitionModelEnv
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> recorder = IterateRecorder([0, 15, 30])
        >>> planner = GRASPPlanner(env, 10, optim_steps=30, num_restarts=2, callback=recorder)
        >>> result = planner.plan(TensorDict(observation=torch.zeros(2), goal=torch.tensor([0.5, 0.0])))
        >>> sorted(recorder.iterates), recorder.iterates[15]["observation"].shape  # 2 restarts of 10 states
        ([0, 15, 30], torch.Size([2, 10, 2]))
        >>> recorder.iterates[0]["observation"][0, :2]  # the first restart's initial plan: the line to the goal
        tensor([[0.0500, 0.0000],
                [0.1000, 0.0000]])
    """

    def __init__(self, iterations: Iterable[int]):
        self.record_at = frozenset(iterations)
        self._recorded: dict[int, TensorDictBase] = {}
        self._last: tuple[int, TensorDictBase] | None = None

    def __call__(self, iteration: int, plan: TensorDictBase) -> None:
        if iteration == 0:
            self._recorded = {}
        if iteration in self.record_at:
            self._recorded[iteration] = plan["virtual_states"].clone()
        # The view holds the planner's buffers, which the optimiser updates in place: once the
        # plan has ended they hold the last iterate, so it is kept by reference, not copied.
        self._last = (iteration, plan["virtual_states"])

    @property
    def iterates(self) -> dict[int, TensorDictBase]:
        """Iteration -> the virtual states after it, for the recorded iterations and the last one run."""
        if self._last is None:
            return {}
        last, states = self._last
        return {**self._recorded, last: self._recorded.get(last, states).clone()}
