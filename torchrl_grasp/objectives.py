r"""What a plan is scored by: reaching a goal, or the world model's return.

An objective is the only place that knows it. Every planner asks its objective for

- the model's prediction, with the reward when the objective needs one (:meth:`~GoalObjective.step`,
  :meth:`~GoalObjective.rollout`);
- the differentiable loss of a serial rollout, which shooting and GRASP's syncs minimise
  (:meth:`~GoalObjective.rollout_loss`);
- the score that ranks plans (lower is better) and says when planning may stop
  (:meth:`~GoalObjective.score`, :meth:`~GoalObjective.reached`);
- GRASP's dense collocation loss (:meth:`~GoalObjective.collocation_loss`) and the states it pins
  (:attr:`~GoalObjective.goal_leaves`);
- what the result reports (:meth:`~GoalObjective.report`).

Towards a goal :math:`g` (a TensorDict with some of the state keys), with :math:`s_T` the
rollout's last state:

.. math::

    \text{rollout loss} = \sum_k \operatorname{mean}_d (s_{T,k} - g_k)^2, \qquad
    \text{score} = \Big(\sum_k \sum_d (s_{T,k} - g_k)^2\Big)^{1/2}

By reward :math:`r` (the world model writes it beside the next state), both are minus the
return :math:`\sum_{t=1}^{T} r(s_t)`.

**A penalty along the plan.** With ``penalty_weight`` :math:`\beta > 0` the world model also
writes a cost of each prediction :math:`u_t` (an ensemble's disagreement, where its members
have not seen data; the model env of :func:`~torchrl_grasp.world_models.learned.model_env` writes
it), and :math:`\beta \sum_{t=1}^{T} u_t` is added to every loss and score above and to GRASP's
collocation loss: plans keep to where the model knows the world. The distance and the return
the planners report and stop at stay the unpenalised ones (:meth:`~GoalObjective.unpenalised`).

**Episodes that end.** A world model that writes ``done`` or ``terminated`` ends the episode at
the first step it says so (``done`` ``[N, T]``: step ``t`` leads to :math:`s_{t+1}`): the return
counts the rewards up to that step and none after it (TorchRL's planners mask post-done
rewards the same way, :func:`alive_steps`), and a goal is scored at the state where the
episode ended, which GRASP's collocation loss holds for the remaining steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch
from tensordict import NestedKey, TensorDict, TensorDictBase, unravel_key
from torch import Tensor

from torchrl_grasp.ops import collocation_loss

if TYPE_CHECKING:
    from torchrl_grasp.world_models.step import WorldModelStep


def goal_distance(states: TensorDictBase, goal: TensorDictBase) -> Tensor:
    """Euclidean distance of ``states`` to ``goal`` over the goal's keys, features flattened: ``[*batch]``.

    The one definition of "how far from the goal" in the package: plans are ranked by it,
    ``stop_distance`` compares with it, and :class:`~torchrl_grasp.TransitionModelEnv`'s reward is
    minus it.

    Examples:
        >>> from tensordict import TensorDict
        >>> states = TensorDict(position=torch.tensor([[3.0, 0.0]]), velocity=torch.ones(1, 2), batch_size=[1])
        >>> goal_distance(states, TensorDict(position=torch.tensor([[0.0, 4.0]]), batch_size=[1]))
        tensor([5.])
    """
    squared = [
        (states.get(key) - goal.get(key)).square().flatten(states.batch_dims).sum(-1)
        for key in goal.keys(True, True)
    ]
    return torch.stack(squared).sum(0).sqrt()


def alive_steps(done: Tensor | None) -> Tensor | None:
    """``[N, T]``: true up to and including the first done step of each plan, false after it.

    Examples:
        >>> alive_steps(torch.tensor([[False, True, False, True], [False, False, False, False]]))
        tensor([[ True,  True, False, False],
                [ True,  True,  True,  True]])
    """
    if done is None:
        return None
    count = done.to(torch.int64).cumsum(1)
    return count - done.to(torch.int64) == 0


def ended_states(rollout: TensorDictBase, done: Tensor | None) -> TensorDictBase:
    """The state each plan's episode ended in, ``[N]``, from a rollout ``[N, T+1]``: the state after
    the first done step, or the last one.

    Examples:
        >>> from tensordict import TensorDict
        >>> rollout = TensorDict(x=torch.arange(4.0).expand(2, 4), batch_size=[2, 4])
        >>> ended_states(rollout, torch.tensor([[False, True, False], [False, False, False]]))["x"]
        tensor([2., 3.])
    """
    if done is None:
        return rollout[:, -1]
    ended = alive_steps(done).sum(1)  # the alive steps: the index of the state after the last of them
    rows = torch.arange(rollout.batch_size[0], device=ended.device)
    return rollout.apply(lambda leaf: leaf[rows, ended], batch_size=rollout.batch_size[:1])


def _absorbed(predicted: Sequence[Tensor], virtual: Sequence[Tensor], alive: Tensor):
    """Predictions ``[N, T, D_k]`` held at the episode's last one after it ended, and virtual states
    equal to them there (detached: no dynamics term, no gradient to them)."""
    last = alive.sum(1) - 1
    rows = torch.arange(alive.shape[0], device=alive.device)
    after = ~alive.unsqueeze(-1)
    held_predicted, held_virtual = [], []
    for pred, states in zip(predicted, virtual):
        ended = pred[rows, last].unsqueeze(1)
        held_predicted.append(torch.where(after, ended, pred))
        held_virtual.append(torch.where(after, ended.detach(), states))
    return held_predicted, held_virtual


def _until_done(values: Tensor, done: Tensor | None) -> Tensor:
    """Per-step ``values`` ``[N, T]`` with the steps after the first done one zeroed."""
    alive = alive_steps(done)
    return values if alive is None else values * alive.to(values.dtype)


class PlanRollout(NamedTuple):
    """A serial rollout of ``N`` plans through an objective (:meth:`GoalObjective.rollout`)."""

    #: the states ``s_0 .. s_T`` under the state keys, ``[N, T+1]``.
    states: TensorDictBase
    #: the rewards ``[N, T]``; ``None`` for an objective that needs none.
    rewards: Tensor | None
    #: the done flags ``[N, T]``; ``None`` for a model that writes none.
    done: Tensor | None
    #: the model's penalty ``[N, T]``; ``None`` without a ``penalty_weight``.
    penalties: Tensor | None = None


class _Objective:
    """What both objectives share: the state keys, the model's prediction with what the objective
    needs of it (reward, penalty), and the penalty's cost."""

    uses_reward = False

    def __init__(self, state_keys: Sequence[NestedKey], penalty_weight: float = 0.0):
        self.state_keys = [unravel_key(key) for key in state_keys]
        self.penalty_weight = penalty_weight

    @property
    def uses_penalty(self) -> bool:
        """Whether the objective asks the model for its penalty (``penalty_weight > 0``)."""
        return self.penalty_weight > 0

    @property
    def has_step_cost(self) -> bool:
        """Whether :meth:`step_cost` is more than zero: a reward or a penalty per step."""
        return self.uses_reward or self.uses_penalty

    def step(self, model_step: WorldModelStep, states: Sequence[Tensor], action: Tensor, reseed: bool = True):
        """One batched model call: the :class:`~torchrl_grasp.world_models.step.Prediction` (next
        states ``[M, *F_k]`` per state key; rewards and penalties ``[M]``, or ``None`` for an
        objective that needs none; done flags ``[M]`` or ``None``). ``reseed``: see
        :meth:`~torchrl_grasp.world_models.step.WorldModelStep.predict`."""
        return model_step.predict(
            states, action, with_reward=self.uses_reward, with_penalty=self.uses_penalty, reseed=reseed
        )

    def rollout(self, model_step: WorldModelStep, start: TensorDictBase, actions: Tensor) -> PlanRollout:
        """The serial rollout of ``actions`` ``[N, T, *A]`` from ``start`` ``[N]``: the :class:`PlanRollout`."""
        leaves = [start.get(key) for key in self.state_keys]
        model_rollout = model_step.rollout(
            leaves, actions, with_reward=self.uses_reward, with_penalty=self.uses_penalty
        )
        batch = (*start.batch_size, actions.shape[start.batch_dims] + 1)
        states = TensorDict(
            dict(zip(self.state_keys, model_rollout.states)), batch_size=batch, device=start.device
        )
        return PlanRollout(states, model_rollout.rewards, model_rollout.done, model_rollout.penalties)

    def penalty_total(self, penalties: Tensor | None, done: Tensor | None = None) -> Tensor | None:
        """The penalties ``[N, T]`` summed up to the first done step, ``[N]`` (unweighted); ``None`` for none."""
        return None if penalties is None else _until_done(penalties, done).sum(1)

    def penalty_cost(self, penalties: Tensor | None, done: Tensor | None = None) -> Tensor | float:
        r""":math:`\beta \sum_t u_t` per plan ``[N]`` (up to the first done step), or ``0.0`` without penalties."""
        if penalties is None or not self.uses_penalty:
            return 0.0
        return self.penalty_weight * self.penalty_total(penalties, done)

    def unpenalised(self, score: Tensor, penalty_total: Tensor | None) -> Tensor:
        """A ``score`` less its penalty (``penalty_total`` from :meth:`penalty_total`): the distance
        or minus the return, which the planners report and stop at."""
        if penalty_total is None or not self.uses_penalty:
            return score
        return score - self.penalty_weight * penalty_total

    def step_cost(
        self, rewards: Tensor | None, penalties: Tensor | None, done: Tensor | None = None
    ) -> Tensor | float:
        r"""The part of GRASP's loss that each step's prediction adds, per plan ``[N]``, from
        ``[N, T]`` rewards and penalties: :math:`\beta \sum_t u_t` (and, by reward,
        :math:`-\lambda \sum_t r_t`) up to the first done step; what GRASP also hands to the
        virtual states (see :func:`~torchrl_grasp.planners.grasp.collocation_iteration`)."""
        return self.penalty_cost(penalties, done)


class GoalObjective(_Objective):
    r"""Reach ``goal``: a TensorDict ``[N]`` holding some of the state keys.

    Examples:
        >>> from tensordict import TensorDict
        >>> goal = TensorDict(position=torch.tensor([[1.0, 0.0]]), batch_size=[1])
        >>> objective = GoalObjective(goal, ["position", "velocity"])
        >>> rollout = TensorDict(position=torch.zeros(1, 3, 2), velocity=torch.zeros(1, 3, 2), batch_size=[1, 3])
        >>> objective.rollout_loss(rollout, None), objective.score(rollout, None)  # mean_d, and the distance
        (tensor([0.5000]), tensor([1.]))
        >>> rollout["position"][:, 1] = torch.tensor([[1.0, 0.5]])  # an episode that ends at its first step there
        >>> objective.score(rollout, None, done=torch.tensor([[True, False]]))
        tensor([0.5000])
        >>> bool(objective.reached(torch.tensor([0.01]), 1, stop_distance=0.02))
        True
        >>> [leaf is None for leaf in objective.goal_leaves]  # the goal pins position only
        [False, True]
    """

    def __init__(self, goal: TensorDictBase, state_keys: Sequence[NestedKey], penalty_weight: float = 0.0):
        super().__init__(state_keys, penalty_weight)
        self.goal = goal
        present = {unravel_key(key) for key in goal.keys(True, True)}
        self.goal_leaves: list[Tensor | None] = [
            goal.get(key) if key in present else None for key in self.state_keys
        ]
        self._flat_goals = [None if leaf is None else leaf.flatten(1) for leaf in self.goal_leaves]

    def rollout_loss(
        self,
        rollout: TensorDictBase,
        rewards: Tensor | None,
        done: Tensor | None = None,
        penalties: Tensor | None = None,
    ) -> Tensor:
        """``sum_k mean_d (s_T - g)^2`` per plan ``[N]``, at the state where the episode ended
        (plus the penalty's cost); differentiable: what shooting minimises."""
        final = ended_states(rollout, done)
        squared = torch.stack(
            [(final.get(key).flatten(1) - goal).square().mean(-1) for key, goal in self._goal_items()]
        ).sum(0)
        return squared + self.penalty_cost(penalties, done)

    def score(
        self,
        rollout: TensorDictBase,
        rewards: Tensor | None,
        done: Tensor | None = None,
        penalties: Tensor | None = None,
    ) -> Tensor:
        """The distance to the goal ``[N]`` of the state where the episode ended (the last one if
        it did not end; lower is better), plus the penalty's cost, detached."""
        distance = goal_distance(ended_states(rollout, done), self.goal)
        return (distance + self.penalty_cost(penalties, done)).detach()

    def reached(self, score: Tensor, restarts: int, stop_distance: float | None) -> bool:
        """Whether every batch element has a plan (on any of its ``restarts``) scoring ``stop_distance`` or less."""
        if stop_distance is None:
            return False
        return bool((score.reshape(-1, restarts).amin(-1) <= stop_distance).all())

    def collocation_loss(
        self,
        predicted: Sequence[Tensor],
        virtual: Sequence[Tensor],
        rewards: Tensor | None,
        goal_weight: float,
        done: Tensor | None = None,
        penalties: Tensor | None = None,
    ) -> Tensor:
        r"""GRASP's loss per plan ``[N]`` from per-key ``[N, T, D_k]`` predictions and virtual states:
        :math:`\sum_k \sum_t \operatorname{mean}_d (\hat s_{t+1} - s_{t+1})^2 + \gamma \operatorname{mean}_d (\hat s_{t+1} - g)^2`,
        the goal term on the goal's keys only (the fused op, :func:`torchrl_grasp.ops.collocation_loss`),
        plus the :meth:`step_cost` of ``penalties`` ``[N, T]``.

        With ``done`` ``[N, T]`` the episode's last state is absorbing: after the first done step
        the dynamics terms drop and the goal terms see the state the episode ended in, so ending
        early far from the goal costs every remaining step (a loss of fewer terms would reward it)."""
        loss = self.step_cost(rewards, penalties, done)
        if done is not None:
            predicted, virtual = _absorbed(predicted, virtual, alive_steps(done))
        for pred, states, goal in zip(predicted, virtual, self._flat_goals):
            loss = loss + collocation_loss(pred, states, goal, goal_weight if goal is not None else 0.0)
        return loss

    def report(self, score: Tensor, penalty_total: Tensor | None = None) -> dict:
        """The result's fields for the best plans' ``score`` and ``penalty_total`` ``[*B]``."""
        return dict(
            goal_distance=self.unpenalised(score, penalty_total), predicted_return=None, penalty=penalty_total
        )

    def repeat(self, times: int) -> GoalObjective:
        """The objective of each plan repeated ``times`` times in a row (``[N * times]``), for sampling around plans."""
        return GoalObjective(self.goal.repeat_interleave(times, dim=0), self.state_keys, self.penalty_weight)

    def _goal_items(self):
        return [(key, goal) for key, goal in zip(self.state_keys, self._flat_goals) if goal is not None]


class RewardObjective(_Objective):
    r"""Maximise the world model's return, the sum of the rewards it writes beside each predicted state.

    In GRASP's collocation loss the goal term becomes :math:`-\lambda \sum_t r(\hat s_{t+1})`,
    :math:`\lambda` = ``reward_weight``; no state is pinned.

    Examples:
        >>> objective = RewardObjective(["observation"], reward_weight=1.0)
        >>> rewards = torch.tensor([[1.0, 2.0], [0.0, 0.5]])
        >>> objective.score(None, rewards), objective.report(-torch.tensor(3.0))["predicted_return"]
        (tensor([-3.0000, -0.5000]), tensor(3.))
        >>> objective.reached(torch.tensor([-100.0]), 1, stop_distance=0.1)  # no distance to stop at
        False
        >>> objective.score(None, rewards, done=torch.tensor([[True, False], [False, False]]))  # nothing after a done
        tensor([-1.0000, -0.5000])
    """

    uses_reward = True

    def __init__(self, state_keys: Sequence[NestedKey], reward_weight: float = 1.0, penalty_weight: float = 0.0):
        super().__init__(state_keys, penalty_weight)
        self.reward_weight = reward_weight
        self.goal_leaves: list[Tensor | None] = [None] * len(self.state_keys)

    def rollout_loss(
        self, rollout: TensorDictBase, rewards: Tensor, done: Tensor | None = None, penalties: Tensor | None = None
    ) -> Tensor:
        """Minus the return ``[N]`` (the rewards up to the first done step), plus the penalty's cost; differentiable."""
        return -_until_done(rewards, done).sum(-1) + self.penalty_cost(penalties, done)

    def score(
        self, rollout: TensorDictBase, rewards: Tensor, done: Tensor | None = None, penalties: Tensor | None = None
    ) -> Tensor:
        """Minus the return ``[N]`` plus the penalty's cost (lower is better), detached."""
        return self.rollout_loss(rollout, rewards, done, penalties).detach()

    def step_cost(
        self, rewards: Tensor, penalties: Tensor | None, done: Tensor | None = None
    ) -> Tensor:
        r""":math:`-\lambda \sum_t r_t + \beta \sum_t u_t` per plan ``[N]`` over the rewards and penalties
        ``[N, T]`` up to the first done step: the reward part of GRASP's loss, which GRASP also hands
        to the virtual states (see :func:`~torchrl_grasp.planners.grasp.collocation_iteration`)."""
        return -self.reward_weight * _until_done(rewards, done).sum(1) + self.penalty_cost(penalties, done)

    def reached(self, score: Tensor, restarts: int, stop_distance: float | None) -> bool:
        """Never: a return has no distance to stop at."""
        return False

    def collocation_loss(
        self,
        predicted: Sequence[Tensor],
        virtual: Sequence[Tensor],
        rewards: Tensor,
        goal_weight: float,
        done: Tensor | None = None,
        penalties: Tensor | None = None,
    ) -> Tensor:
        r""":math:`\sum_k \sum_t \operatorname{mean}_d (\hat s_{t+1} - s_{t+1})^2 - \lambda \sum_t r(\hat s_{t+1})`
        (plus the penalty's cost) per plan ``[N]``; with ``done`` ``[N, T]``, over the steps up to the first done one."""
        loss = self.step_cost(rewards.reshape(predicted[0].shape[0], -1), penalties, done)
        weights = None if done is None else alive_steps(done).to(predicted[0].dtype)
        for pred, states in zip(predicted, virtual):
            loss = loss + collocation_loss(pred, states, None, 0.0, weights)
        return loss

    def report(self, score: Tensor, penalty_total: Tensor | None = None) -> dict:
        """The result's fields for the best plans' ``score`` and ``penalty_total`` ``[*B]``."""
        return dict(goal_distance=None, predicted_return=-self.unpenalised(score, penalty_total), penalty=penalty_total)

    def repeat(self, times: int) -> RewardObjective:
        """The same objective: it holds nothing per plan."""
        return self
