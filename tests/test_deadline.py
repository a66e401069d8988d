"""Every planner's ``time_budget``: it stops at the first iteration boundary past it and returns the
best plan found. The clock is scripted (one second per reading), so no verdict depends on the
machine's speed."""

import itertools

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded, Unbounded

from torchrl_grasp import GradientPlanner, GRASPPlanner, TransitionModelEnv
from torchrl_grasp.planners import (
    CollocationPlanner,
    GDSync,
    GoalCEMPlanner,
    GoalICEMPlanner,
    GoalMPPIPlanner,
)
from torchrl_grasp.planners.deadline import Deadline


class PointMass(torch.nn.Module):
    def forward(self, state, action):
        return state + 0.1 * action


def ticking():
    """A clock that reads 0, 1, 2, ... seconds: each check of a deadline costs one second."""
    return itertools.count().__next__


def never_read():
    pytest.fail("a planner without a time_budget read the clock")


ENV = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
TASK = TensorDict(observation=torch.zeros(4, 2), goal=torch.tensor([0.8, -0.4]).expand(4, 2), batch_size=[4])


def test_grasp_stops_at_the_deadline_with_the_plan_of_that_many_iterations():
    # Read at the start (0), around the initial plan's evaluation (1, 2: a reserve of 1 s) and after
    # each iteration (3, 4, 5): 5.5 s end the plan after its third iteration (5 + 1 >= 5.5), whose
    # actions are evaluated without the sync (due at iteration 50).
    settings = dict(optim_steps=300, lr_states=0.01, lr_actions=0.05, num_restarts=2)
    timed = GRASPPlanner(ENV, 20, time_budget=5.5, clock=ticking(), **settings).plan(TASK)
    assert (timed.status, timed.iterations, timed.loss_history.shape[0]) == ("deadline", 3, 3)
    assert timed.model_calls == 20 + 3 + 20  # the initial plan's rollout, three iterations, one rollout
    three = GRASPPlanner(ENV, 20, sync=None, **{**settings, "optim_steps": 3}).plan(TASK)
    assert three.status == "completed"
    torch.testing.assert_close(timed.actions, three.actions, rtol=0, atol=0)
    torch.testing.assert_close(timed.goal_distance, three.goal_distance, rtol=0, atol=0)


def test_a_sync_under_way_stops_at_its_next_step():
    # Reads: start 0, the initial evaluation 1 and 2 (a reserve of 1 s), iteration 1 (3), iteration 2
    # (4): the sync is due; its GD steps read 5, then 6, with the reserve past 6.5: two of its ten
    # rollouts, then the actions' evaluation.
    planner = GRASPPlanner(
        ENV, 20, 300, lr_states=0.01, lr_actions=0.05, sync=GDSync(every=2, steps=10), time_budget=6.5, clock=ticking()
    )
    result = planner.plan(TASK)
    assert (result.status, result.iterations) == ("deadline", 2)
    assert result.model_calls == 20 + 2 + 2 * 20 + 20


@pytest.mark.parametrize("planner_class", [GoalCEMPlanner, GoalMPPIPlanner])
def test_sampling_stops_after_the_iteration_that_passed_the_deadline(planner_class):
    settings = dict(num_candidates=64, top_k=8)
    timed = planner_class(ENV, 10, 30, time_budget=2.5, clock=ticking(), **settings).plan(TASK)
    assert (timed.status, timed.iterations) == ("deadline", 3)
    three = planner_class(ENV, 10, 3, **settings).plan(TASK)  # the same draws, then the mean's evaluation
    torch.testing.assert_close(timed.actions, three.actions, rtol=0, atol=0)


def test_icem_stops_at_the_deadline():
    result = GoalICEMPlanner(ENV, 10, 30, num_candidates=64, top_k=8, time_budget=4.5, clock=ticking()).plan(TASK)
    assert (result.status, result.iterations) == ("deadline", 5)


def test_gd_returns_the_best_rollout_of_the_steps_it_took():
    # Reads after each step's rollout: 1, 2, 3 > 2.5: three rollouts (after 0, 1 and 2 updates), the
    # candidates of a two-step plan and its final evaluation.
    timed = GradientPlanner(ENV, 20, 100, num_restarts=2, time_budget=2.5, clock=ticking()).plan(TASK)
    assert (timed.status, timed.iterations, timed.model_calls) == ("deadline", 3, 3 * 20)
    two = GradientPlanner(ENV, 20, 2, num_restarts=2).plan(TASK)
    torch.testing.assert_close(timed.actions, two.actions, rtol=0, atol=0)


def test_collocation_stops_at_the_deadline():
    # Reads 0, then 1 and 2 around the initial evaluation (reserve 1), then 3, 4, ... per iteration.
    result = CollocationPlanner(ENV, 20, 300, lr_states=0.01, lr_actions=0.05, time_budget=12.5, clock=ticking()).plan(
        TASK
    )
    assert (result.status, result.iterations, result.model_calls) == ("deadline", 10, 20 + 10 + 20)


@pytest.mark.parametrize(
    "planner",
    [
        GRASPPlanner(ENV, 20, 100, lr_states=0.01, lr_actions=0.05, clock=never_read),
        GradientPlanner(ENV, 20, 20, clock=never_read),
        GoalCEMPlanner(ENV, 10, 5, num_candidates=64, top_k=8, clock=never_read),
    ],
    ids=["grasp", "gd", "cem"],
)
def test_without_a_budget_every_iteration_runs_and_the_clock_is_never_read(planner):
    result = planner.plan(TASK)
    assert result.status in ("completed", "reached")
    assert result.iterations == planner.optim_steps


def test_a_plan_within_budget_completes_and_reaches_the_goal():
    # A budget far beyond the plan's 100 clock readings: every iteration runs, and the plan is the
    # unbudgeted one, which ends near the goal (zero actions stay 0.89 from it).
    settings = dict(lr_states=0.01, lr_actions=0.05)
    result = GRASPPlanner(ENV, 20, 100, time_budget=1e6, clock=ticking(), **settings).plan(TASK)
    assert (result.status, result.iterations) == ("completed", 100)
    torch.testing.assert_close(result.actions, GRASPPlanner(ENV, 20, 100, **settings).plan(TASK).actions, rtol=0, atol=0)
    assert bool((result.goal_distance < 0.1).all())


def test_the_deadline_holds_in_a_torchrl_policy_call():
    def planner():
        return GRASPPlanner(ENV, 20, 300, lr_states=0.01, lr_actions=0.05, time_budget=5.5, clock=ticking())

    action = planner()(TASK.clone())["action"]  # as TorchRL calls a policy
    torch.testing.assert_close(action, planner().plan(TASK).actions[:, 0], rtol=0, atol=0)  # the 3-iteration plan's


@pytest.mark.parametrize("budget", [0, -1.0, float("inf"), float("nan"), "1"])
def test_a_bad_time_budget_is_refused_and_named(budget):
    with pytest.raises(ValueError, match="time_budget must be None or a positive, finite number of seconds"):
        GRASPPlanner(ENV, 20, time_budget=budget)


def test_deadline_reads_the_clock_until_it_passes():
    readings = iter([5.0, 5.5, 7.0]).__next__
    deadline = Deadline(1.0, clock=readings)
    assert [deadline.passed(), deadline.passed(), deadline.passed()] == [False, True, True]


def test_grasp_keeps_time_for_its_last_evaluation():
    # Reads: start 0; the initial evaluation 1 to 2 (a reserve of 1 s); iterations 3 and 4 (a sync is
    # due: one GD step, then the evaluation, 5 to 6); iteration 3 reads 7 (+1 < 8.5), iteration 4
    # reads 8 (+1 >= 8.5): it stops there, where without the reserve it would sync once more.
    sync = GDSync(every=2, steps=1)
    planner = GRASPPlanner(ENV, 20, 300, lr_states=0.01, lr_actions=0.05, sync=sync, time_budget=8.5, clock=ticking())
    result = planner.plan(TASK)
    assert (result.status, result.iterations) == ("deadline", 4)
    assert result.model_calls == 20 + 4 + 20 + 20 + 20  # four iterations, one sync step, three evaluations


class ChargedPointMass(PointMass):
    """A point mass whose every batched call costs one second of its own clock (``seconds``): a
    rollout of T steps costs T seconds, a collocation iteration (one call over all steps) one."""

    def __init__(self):
        super().__init__()
        self.seconds = 0.0

    def forward(self, state, action):
        self.seconds += 1.0
        return super().forward(state, action)


@pytest.mark.parametrize("planner_class", [GRASPPlanner, CollocationPlanner])
def test_a_plan_without_syncs_ends_within_its_budget_plus_one_iteration(planner_class):
    # The only rollout of a plan without syncs is its last: the initial plan's evaluation (0 to 20 s)
    # is what tells the checks to stop 20 s early. Without it this plan ran to 100 s, then evaluated
    # to 120 s.
    model = ChargedPointMass()
    env = TransitionModelEnv(model, Unbounded(2), Bounded(-1.0, 1.0, (2,)))
    options = dict(sync=None) if planner_class is GRASPPlanner else {}
    planner = planner_class(
        env, 20, 1000, lr_states=0.01, lr_actions=0.05, time_budget=100.0, clock=lambda: model.seconds, **options
    )
    result = planner.plan(TASK)
    assert result.status == "deadline"
    assert 100.0 - 1.0 <= model.seconds <= 100.0 + 1.0
    assert result.iterations == 100 - 20 - 20  # what the two rollouts leave of the budget
