"""GRASP with a memory: the virtual states at a few iterations of its last plan, for the demo's picture."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor

from torchrl_grasp.planners import GRASPPlanner


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


class IterateRecordingGRASP(GRASPPlanner):
    """A :class:`~torchrl_grasp.GRASPPlanner` that keeps detached copies of its virtual states.

    After :meth:`plan`, ``iterates`` maps ``k`` to the virtual states after ``k`` iterations
    (``0``: the initial plan), one ``[N, T, D_k]`` tensor per state key (``N`` = batch x
    restarts, states :math:`s_1 .. s_T`), for every ``k`` in ``record_at`` that was reached and
    for the last iteration run; ``restart_distances`` ``[N]`` holds each restart's best goal
    distance, so ``restart_distances.argmin()`` names the restart whose plan was returned (for
    one start state). Build it with :func:`record_iterates` from a planner made elsewhere.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import TransitionModelEnv
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> planner = record_iterates(GRASPPlanner(env, 10, optim_steps=30, num_restarts=3), [0, 30])
        >>> isinstance(planner, IterateRecordingGRASP), isinstance(planner, GRASPPlanner)
        (True, True)
        >>> result = planner.plan(TensorDict(observation=torch.zeros(2), goal=torch.tensor([0.5, 0.0])))
        >>> planner.iterates[30][0].shape, planner.restart_distances.shape  # 3 restarts of 10 states
        (torch.Size([3, 10, 2]), torch.Size([3]))
        >>> bool(planner.restart_distances.min() == result.goal_distance)  # it returned the best restart's
        True
    """

    record_at: frozenset[int] = frozenset()

    def _iteration(self, problem, actions, virtual, optimizer, iteration: int) -> Tensor:
        if iteration == 0:
            self.iterates = {}
            if 0 in self.record_at:
                self.iterates[0] = _copy(virtual)
        loss = super()._iteration(problem, actions, virtual, optimizer, iteration)
        # The optimiser updates ``virtual`` in place: keep the tensors and copy the last iterate
        # once, in ``_result``, instead of copying every iteration.
        self._virtual, self._done = virtual, iteration + 1
        if iteration + 1 in self.record_at:
            self.iterates[iteration + 1] = _copy(virtual)
        return loss

    def _result(self, problem, best, history):
        if self._done not in self.iterates:
            self.iterates[self._done] = _copy(self._virtual)
        self.restart_distances = best.score.detach().clone()
        return super()._result(problem, best, history)


def record_iterates(planner: GRASPPlanner, iterations: Iterable[int]) -> IterateRecordingGRASP:
    """Makes ``planner`` (built elsewhere, e.g. by the benchmark's ``make_planner``) record its virtual
    states after each of ``iterations``; returns it, now an :class:`IterateRecordingGRASP`.

    Its settings, generator and state stay as they were: only the class changes, to a subclass
    that adds the recording around :class:`~torchrl_grasp.GRASPPlanner`'s own iteration.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import GRASPPlanner, TransitionModelEnv
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> planner = record_iterates(GRASPPlanner(env, 10, optim_steps=30, num_restarts=2), [0, 15, 30])
        >>> result = planner.plan(TensorDict(observation=torch.zeros(2), goal=torch.tensor([0.5, 0.0])))
        >>> sorted(planner.iterates), planner.iterates[15][0].shape  # one tensor per state key
        ([0, 15, 30], torch.Size([2, 10, 2]))
        >>> planner.iterates[0][0][0, :2]  # the first restart's initial plan: the line to the goal
        tensor([[0.0500, 0.0000],
                [0.1000, 0.0000]])
    """
    if type(planner) is not GRASPPlanner:
        raise TypeError(f"record_iterates takes a GRASPPlanner, got {type(planner).__name__}.")
    planner.__class__ = IterateRecordingGRASP
    planner.record_at = frozenset(iterations)
    planner.iterates = {}
    return planner


def _copy(virtual: list[Tensor]) -> list[Tensor]:
    return [v.detach().clone() for v in virtual]
