"""What a plan call reports (status, iterations, restart), its callback, and the horizon per call."""

import math
import warnings

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded, Unbounded

from torchrl_grasp import GDSync, GradientPlanner, GRASPPlanner, TransitionModelEnv
from torchrl_grasp.planners import GoalCEMPlanner, GoalMPPIPlanner

HORIZON = 10


class PointMass(torch.nn.Module):
    def forward(self, state, action):
        return state + 0.1 * action


def env():
    return TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))


def task(batch=()):
    start = torch.zeros(*batch, 2)
    return TensorDict(observation=start, goal=start + torch.tensor([0.6, -0.3]), batch_size=batch)


def grasp(**kwargs):
    options = dict(optim_steps=60, lr_states=0.01, lr_actions=0.05, sync=GDSync(every=20), warm_start=False)
    return GRASPPlanner(env(), HORIZON, **{**options, **kwargs})


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: grasp(optim_steps=200, **kw),
        lambda **kw: GradientPlanner(env(), HORIZON, optim_steps=200, **kw),
        lambda **kw: GoalCEMPlanner(env(), HORIZON, optim_steps=200, num_candidates=50, top_k=5, **kw),
    ],
    ids=["grasp", "gd", "cem"],
)
def test_status_says_whether_planning_ran_out_or_stopped_at_the_goal(make):
    completed = make().plan(task((2,)))
    assert completed.status == "completed" and completed.iterations == 200
    assert completed.loss_history.shape == (200, 2)
    reached = make(stop_distance=0.05).plan(task((2,)))
    assert reached.status == "reached" and reached.iterations < 200
    assert (reached.goal_distance <= 0.05).all()
    assert reached.loss_history.shape == (reached.iterations, 2)


def test_status_is_non_finite_when_the_loss_blew_up_after_a_finite_plan():
    class BreaksLate(PointMass):
        calls = 0

        def forward(self, state, action):
            self.calls += 1
            out = super().forward(state, action)
            return out * math.nan if self.calls > 40 else out

    planner = GRASPPlanner(
        TransitionModelEnv(BreaksLate(), Unbounded(2), Bounded(-1.0, 1.0, (2,))),
        HORIZON,
        optim_steps=60,
        sync=GDSync(every=10, steps=1),
        lr_actions=0.05,
        lr_states=0.01,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = planner.plan(task())
    assert result.status == "non_finite" and result.iterations < 60
    assert torch.isfinite(result.actions).all() and torch.isfinite(result.goal_distance)
    assert any("best finite plan" in str(w.message) for w in caught)


def test_the_callback_sees_every_iterate_from_the_initial_plan_to_the_last():
    seen, locked = [], []

    def callback(iteration, plan):
        seen.append((iteration, plan.clone()))
        locked.append(plan.is_locked)
        if iteration == 1:
            with pytest.raises(RuntimeError):
                plan.set("actions", torch.zeros_like(plan["actions"]))

    result = grasp(num_restarts=3, callback=callback).plan(task((2,)))
    assert all(locked)
    assert [i for i, _ in seen] == list(range(result.iterations + 1))
    first, last = seen[0][1], seen[-1][1]
    assert first.batch_size == (2, 3)
    assert first["actions"].shape == (2, 3, HORIZON, 2)
    assert first["virtual_states", "observation"].shape == (2, 3, HORIZON, 2)
    assert (first["actions"] == 0).all() and torch.isnan(first["loss"]).all()
    torch.testing.assert_close(
        first["virtual_states", "observation"][:, 0, -1], task((2,))["goal"]
    )  # the line's end
    # The loss that each update descended is the loss history, restart by restart.
    for i, plan in seen[1:]:
        torch.testing.assert_close(plan["loss"].mean(-1), result.loss_history[i - 1])
    # The returned plan's virtual states are the returned restart's iterate at the sync whose
    # rollout was best (syncs move actions only), not necessarily the last.
    synced = [plan for i, plan in seen if i % 20 == 0 and i > 0 or i == result.iterations]
    for row, restart in enumerate(result.restart.tolist()):
        returned = result.virtual_states["observation"][row, 1:]
        iterates = [plan["virtual_states", "observation"][row, restart] for plan in synced]
        assert any(torch.allclose(iterate, returned) for iterate in iterates), f"row {row}"
    assert not torch.allclose(last["virtual_states", "observation"], first["virtual_states", "observation"])


def test_gradient_planner_calls_back_after_every_step():
    seen = []
    result = GradientPlanner(
        env(), HORIZON, optim_steps=30, callback=lambda i, plan: seen.append((i, plan.clone()))
    ).plan(task())
    assert [i for i, _ in seen] == list(range(result.iterations + 1))
    torch.testing.assert_close(seen[-1][1]["loss"].squeeze(-1), result.loss_history[-1])


@pytest.mark.parametrize("planner_class", [GoalCEMPlanner, GoalMPPIPlanner])
def test_the_sampling_planners_call_back_with_their_mean_after_every_refit(planner_class):
    seen = []
    planner = planner_class(
        env(), HORIZON, optim_steps=6, num_candidates=40, top_k=4, num_restarts=2,
        callback=lambda i, plan: seen.append((i, plan.clone())),
    )
    result = planner.plan(task((3,)))
    assert [i for i, _ in seen] == list(range(7))
    first = seen[0][1]
    assert first.batch_size == (3, 2) and first["actions"].shape == (3, 2, HORIZON, 2)
    assert (first["actions"] == 0).all() and torch.isnan(first["loss"]).all()
    # "loss" is each iteration's best candidate's score, which the history holds (restarts averaged).
    for i, plan in seen[1:]:
        torch.testing.assert_close(plan["loss"].mean(-1), result.loss_history[i - 1])
    # The best candidates get nearer the goal than zero actions (distance 0.67) as the means move.
    assert (result.loss_history[-1] < 0.2).all() and (result.goal_distance <= result.loss_history.amin(0)).all()
    assert not torch.equal(seen[1][1]["actions"], seen[-1][1]["actions"])


def test_a_call_can_plan_over_another_horizon_and_the_warm_start_follows_it():
    planner = grasp(warm_start=True, optim_steps=100, sync=GDSync(every=25))
    assert planner.plan(task(), horizon=7).actions.shape == (7, 2)
    short = planner.plan(task(), horizon=7)
    assert short.goal_distance < 0.05  # 0.67 away, 0.1 a step at full speed
    seen = {}
    planner.callback = lambda i, plan: seen.setdefault(i, plan.clone())
    longer = planner.plan(task(), horizon=12)  # warm start: shifted by one, padded with its last step
    start = seen[0]["actions"][0]
    torch.testing.assert_close(start[:6], short.actions[1:])
    torch.testing.assert_close(start[6:], short.actions[-1:].expand(6, 2))
    assert longer.actions.shape == (12, 2) and longer.goal_distance < 0.05
    planner.callback, seen = lambda i, plan: seen.setdefault(i, plan.clone()), {}
    planner.plan(task(), horizon=4)  # cut
    torch.testing.assert_close(seen[0]["actions"][0], longer.actions[1:5])
    planner.callback = None
    previous = planner.plan(task(), horizon=8)
    planner.callback, seen = lambda i, plan: seen.setdefault(i, plan.clone()), {}
    planner.plan(task(), horizon=8, steps_taken=3)  # three of its actions were executed since
    torch.testing.assert_close(seen[0]["actions"][0][:5], previous.actions[3:])
    torch.testing.assert_close(seen[0]["actions"][0][5:], previous.actions[-1:].expand(3, 2))
    with pytest.raises(ValueError, match="horizon must be a positive int"):
        planner.plan(task(), horizon=0)


def test_a_model_that_edits_its_input_in_place_leaves_the_callers_tensordict_alone():
    class EditsInput(torch.nn.Module):
        def forward(self, state, action):
            state.mul_(0.0) if not state.requires_grad else None
            return state + 0.1 * action

    td = task()
    before = td.clone()
    GRASPPlanner(
        TransitionModelEnv(EditsInput(), Unbounded(2), Bounded(-1.0, 1.0, (2,))), HORIZON, optim_steps=5
    ).plan(td)
    assert (td == before).all()
