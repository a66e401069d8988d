"""iCEM: each of its ingredients does what the paper says, and together they find the wall's door where CEM does not."""

import math

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded, Unbounded

from torchrl_grasp import CEMSync, GRASPPlanner, TransitionModelEnv
from torchrl_grasp.planners import GoalCEMPlanner, GoalICEMPlanner, Population
from torchrl_grasp.world_models.analytic import SmoothWallDoor, wall_crossing_pairs

ACTIONS = Bounded(-1.0, 1.0, (2,))


class RecordingPointMass(torch.nn.Module):
    """``state + 0.1 * action``, keeping every batch of actions it was called with."""

    def __init__(self):
        super().__init__()
        self.actions = []

    def forward(self, state, action):
        self.actions.append(action.detach().clone())
        return state + 0.1 * action


def task(goal=(0.6, -0.4)):
    return TensorDict(observation=torch.zeros(2), goal=torch.tensor(goal))


def first_rollout_actions(model, calls_before, horizon):
    """The first plan rollout's actions after ``calls_before`` calls: ``[candidates, T, 2]``."""
    return torch.stack(model.actions[calls_before : calls_before + horizon], dim=1)


def test_the_population_shrinks_as_scheduled_and_the_kept_elites_join_it():
    model = RecordingPointMass()
    env = TransitionModelEnv(model, Unbounded(2), ACTIONS)
    planner = GoalICEMPlanner(env, 5, optim_steps=6, num_candidates=100, top_k=10, warm_start=False)
    result = planner.plan(task())
    sizes = [planner.population.size(i, samples=100, top_k=10) for i in range(6)]
    assert sizes == [100, 80, 64, 51, 40, 32]
    kept = math.ceil(0.3 * 10)
    # one rollout per iteration (its new candidates and, after the first, the 3 kept elites) and the final mean's
    expected = [size + (kept if i else 0) for i, size in enumerate(sizes)] + [1]
    assert [calls.shape[0] for calls in model.actions[::5]] == expected
    assert result.model_transitions == 5 * sum(expected)


def test_kept_elites_make_the_best_score_never_worsen_and_cem_s_can():
    env = TransitionModelEnv(SmoothWallDoor(), Unbounded(2), ACTIONS)
    pairs = wall_crossing_pairs(4, seed=3)
    kept = GoalCEMPlanner(env, 40, optim_steps=12, num_candidates=64, top_k=8, population=Population(keep_elites=0.5))
    history = kept.plan(pairs).loss_history
    assert (history[1:] <= history[:-1] + 1e-6).all()
    plain = GoalCEMPlanner(env, 40, optim_steps=12, num_candidates=64, top_k=8).plan(pairs).loss_history
    assert (plain[1:] > plain[:-1] + 1e-6).any()  # without them an iteration can lose its best candidate


@pytest.mark.parametrize("beta, correlated", [(0.0, False), (2.0, True)])
def test_the_candidates_noise_is_coloured_in_time(beta, correlated):
    model = RecordingPointMass()
    env = TransitionModelEnv(model, Unbounded(2), Bounded(-100.0, 100.0, (2,)))  # no clipping
    GoalICEMPlanner(env, 30, optim_steps=1, num_candidates=400, top_k=10, noise_beta=beta, init_std=1.0).plan(task())
    noise = first_rollout_actions(model, 0, 30)  # around a zero mean with unit spread
    lag_one = (noise[:, 1:] * noise[:, :-1]).mean() / noise.square().mean()
    assert noise.std().item() == pytest.approx(1.0, abs=0.05)
    assert (lag_one > 0.8) if correlated else (abs(lag_one) < 0.05)


def test_the_warm_start_carries_the_kept_elites_shifted_into_the_next_plan():
    model = RecordingPointMass()
    env = TransitionModelEnv(model, Unbounded(2), ACTIONS)
    planner = GoalICEMPlanner(env, 6, optim_steps=3, num_candidates=40, top_k=10)
    planner.plan(task())
    last_round = first_rollout_actions(model, len(model.actions) - 2 * 6, 6)  # the third round's candidates
    calls = len(model.actions)
    planner.plan(task())  # the same goal: warm-started, one step executed
    carried = first_rollout_actions(model, calls, 6)[-3:]  # 40 new candidates, then the 3 carried elites
    for elite in carried:  # each is one of the last round's candidates without its first step, padded with its last
        shifted = torch.cat([last_round[:, 1:], last_round[:, -1:]], dim=1)
        assert (shifted - elite).abs().flatten(1).amax(1).min() < 1e-6
    planner.reset()
    calls = len(model.actions)
    planner.plan(task())  # reset: nothing carried
    assert first_rollout_actions(model, calls, 6).shape[0] == 40


def test_icem_finds_the_door_that_cem_misses_at_equal_model_evaluations():
    """The paper's claim on the wall world: coloured noise and memory at a fifth of CEM's samples."""
    env = TransitionModelEnv(SmoothWallDoor(), Unbounded(2), ACTIONS)
    pairs = wall_crossing_pairs(8, seed=1)
    icem = GoalICEMPlanner(env, 60, optim_steps=10, num_candidates=100, top_k=10).plan(pairs)
    budget = icem.model_transitions
    cem = GoalCEMPlanner(env, 60, optim_steps=10, num_candidates=int(budget / 60 / 10), top_k=10).plan(pairs)
    assert cem.model_transitions <= budget * 1.05
    radius = 0.1
    icem_reached, cem_reached = (icem.goal_distance < radius).sum(), (cem.goal_distance < radius).sum()
    assert icem_reached >= cem_reached + 3, (icem.goal_distance, cem.goal_distance)


def test_grasp_s_cem_sync_runs_the_same_icem_search():
    model = RecordingPointMass()
    env = TransitionModelEnv(model, Unbounded(2), ACTIONS)
    sync = CEMSync(every=50, iterations=3, samples=32, top_k=8, population=Population.icem())
    result = GRASPPlanner(env, 8, optim_steps=200, lr_states=0.01, lr_actions=0.05, sync=sync).plan(task())
    assert result.goal_distance < 0.05
    sampled = [calls.shape[0] for calls in model.actions if calls.shape[0] not in (8, 1)]  # not collocation, not a check
    sizes = [Population.icem().size(i, samples=32, top_k=8) for i in range(3)]
    assert sampled[::8][:3] == [sizes[0], sizes[1] + 3, sizes[2] + 3]
