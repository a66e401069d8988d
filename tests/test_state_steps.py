"""GRASP's state step, the colour of its state noise, the optimiser across syncs, and the dynamics gap."""

import pytest
import torch
from tensordict import TensorDict
from torch import nn
from torchrl.data import Bounded, Unbounded

from torchrl_grasp import GDSync, GRASPPlanner, TransitionModelEnv
from torchrl_grasp.planners import AdamStates, GoalCEMPlanner, NewtonStates
from torchrl_grasp.world_models.analytic import SmoothWallDoor, wall_crossing_pairs

HORIZON = 60


class ScaledWallDoor(nn.Module):
    """:class:`SmoothWallDoor` with its states in other units: ``scale`` times larger."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale, self.wall = scale, SmoothWallDoor()

    def forward(self, state, action):
        return self.scale * self.wall(state / self.scale, action)


def wall_env(scale: float = 1.0):
    model = ScaledWallDoor(scale).double()
    return TransitionModelEnv(model, Unbounded(2, dtype=torch.float64), Bounded(-1.0, 1.0, (2,), dtype=torch.float64))


def scaled_pairs(scale: float) -> TensorDict:
    return wall_crossing_pairs(8).apply(lambda x: scale * x.double())


def wall_planner(env, **options):
    settings = dict(lr_actions=0.05, num_restarts=4, state_noise_std=0.0, warm_start=False)
    return GRASPPlanner(env, HORIZON, **{**settings, **options})


@pytest.mark.parametrize("state_step", [NewtonStates(damping=0.5), AdamStates(lr=0.4, unit="step")])
def test_scale_free_state_steps_go_around_the_wall_in_any_units(state_step):
    """Newton steps or Adam in step lengths, noise in step lengths, Adam on the actions and the
    bent restarts are all unchanged by the states' units, but for Adam's eps: in states 100 times
    larger the iterates are the same, to Adam's eps, and the plans go through the door as often."""
    pairs = {scale: scaled_pairs(scale) for scale in (1.0, 100.0)}
    scale_free = dict(state_step=state_step, state_noise_std=0.2, state_noise_unit="step")
    iterates = {
        scale: wall_planner(wall_env(scale), optim_steps=30, sync=None, **scale_free).plan(pairs[scale])
        for scale in pairs
    }
    torch.testing.assert_close(iterates[100.0].actions, iterates[1.0].actions, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(
        iterates[100.0].virtual_states["observation"] / 100, iterates[1.0].virtual_states["observation"],
        rtol=1e-3, atol=1e-5,
    )
    for scale in pairs:
        result = wall_planner(wall_env(scale), **scale_free).plan(pairs[scale])
        assert (result.goal_distance / scale < 0.1).sum() >= 6, (scale, result.goal_distance)


def test_adam_state_steps_depend_on_the_units_and_newton_steps_do_not():
    """Adam moves a state by about its learning rate whatever the units: at lr 0.01, 100 times
    larger states barely leave their initial line through the wall, and fewer plans reach the goal."""
    reached = {}
    for scale in (1.0, 100.0):
        result = wall_planner(wall_env(scale), state_step=AdamStates(lr=0.01)).plan(scaled_pairs(scale))
        reached[scale] = int((result.goal_distance / scale < 0.1).sum())
    assert reached[1.0] >= 6 and reached[100.0] < reached[1.0], reached


def lag_one_correlation(x: torch.Tensor) -> float:
    x = x - x.mean(dim=1, keepdim=True)
    return float((x[:, 1:] * x[:, :-1]).mean() / x.square().mean())


@pytest.mark.parametrize("beta, smooth", [(0.0, False), (2.0, True)])
def test_red_state_noise_is_correlated_along_the_horizon(beta, smooth):
    """Between two iterations at a negligible learning rate the states change by their noise: white
    noise jitters from step to step, red noise moves stretches of the path together."""
    seen = []

    def record(iteration, plan):
        seen.append(plan["virtual_states", "observation"].clone())

    env = wall_env()
    planner = GRASPPlanner(
        env, 64, optim_steps=2, lr_states=1e-9, lr_actions=1e-9, state_noise_std=0.1, state_noise_beta=beta,
        num_restarts=16, sync=None, callback=record,
    )
    planner.plan(scaled_pairs(1.0)[0])
    step = (seen[2] - seen[1]).reshape(-1, 64, 2)[:, :-1]  # without the pinned goal
    assert step.std().item() == pytest.approx(0.1, rel=0.15)  # the same standard deviation either way
    correlation = lag_one_correlation(step)
    assert correlation > 0.8 if smooth else abs(correlation) < 0.1, correlation


@pytest.mark.parametrize("reset", [False, True])
def test_resetting_the_optimiser_at_a_sync_gives_adam_a_fresh_first_step(reset):
    """Adam's first step moves every coordinate by exactly its learning rate (the bias correction);
    after a sync, a fresh Adam does that again, and one that kept its moments does not."""
    seen = {}

    def record(iteration, plan):
        if iteration in (10, 11):
            seen[iteration] = plan["virtual_states", "observation"].clone()

    planner = wall_planner(
        wall_env(), optim_steps=20, lr_states=0.01, num_restarts=1, sync=GDSync(every=10, steps=2),
        reset_optimizer_at_sync=reset, callback=record,
    )
    planner.plan(scaled_pairs(1.0)[:2])
    moved = (seen[11] - seen[10])[..., :-1, :].abs()  # the goal is pinned
    first_step = torch.isclose(moved, torch.full_like(moved, 0.01), rtol=1e-4)
    assert first_step.all() if reset else not first_step.all(), moved


def test_the_dynamics_gap_is_zero_for_sampling_and_shrinks_as_grasp_converges():
    env, pairs = wall_env(), scaled_pairs(1.0)
    cem = GoalCEMPlanner(env, HORIZON, optim_steps=3, num_candidates=50, top_k=5).plan(pairs)
    assert torch.equal(cem.dynamics_gap, torch.zeros(8, HORIZON, dtype=torch.float64))
    early, late = (
        wall_planner(env, optim_steps=steps, state_step=NewtonStates(damping=0.5), sync=None).plan(pairs)
        for steps in (5, 300)
    )
    assert early.dynamics_gap.shape == (8, HORIZON)
    # The initial line runs through the wall; after 300 iterations the states follow the rollout.
    assert early.dynamics_gap.mean() > 1.0 > 0.5 > late.dynamics_gap.median(), (early.dynamics_gap.mean(),
                                                                                 late.dynamics_gap.median())


def test_state_step_arguments_are_checked_and_name_the_fix():
    env = wall_env()
    with pytest.raises(ValueError, match=r"Pass lr_states or state_step, not both.*AdamStates\(lr=0.01\)"):
        GRASPPlanner(env, 10, lr_states=0.01, state_step=NewtonStates())
    with pytest.raises(TypeError, match="state_step must be an AdamStates or a NewtonStates"):
        GRASPPlanner(env, 10, state_step="newton")
    with pytest.raises(ValueError, match=r"damping must be in \(0, 1\]"):
        NewtonStates(damping=0.0)
    with pytest.raises(ValueError, match="unit must be 'state' or 'step', got 'steps'"):
        AdamStates(lr=0.4, unit="steps")
    with pytest.raises(ValueError, match="state_noise_unit must be 'state' or 'step', got 'steps'"):
        GRASPPlanner(env, 10, state_noise_unit="steps")
    with pytest.raises(ValueError, match="state_noise_beta"):
        GRASPPlanner(env, 10, state_noise_beta=-1.0)
    assert GRASPPlanner(env, 10).lr_states == 0.1 and GRASPPlanner(env, 10, lr_states=0.02).lr_states == 0.02
    assert GRASPPlanner(env, 10, state_step=NewtonStates()).lr_states is None


@pytest.mark.parametrize("beta", [None, 2.0])
def test_red_restarts_bend_at_their_own_places_and_keep_start_and_goal(beta):
    """The half sine bends every restart most at mid-horizon; red restarts bend where their noise
    does, each somewhere else, still from the start and to the goal, and the first stays straight."""
    seen = {}
    planner = GRASPPlanner(
        wall_env(), 40, optim_steps=1, num_restarts=16, restart_beta=beta, sync=None,
        callback=lambda iteration, plan: seen.setdefault(iteration, plan["virtual_states", "observation"].clone()),
    )
    pairs = scaled_pairs(1.0)[:1]
    planner.plan(pairs)
    initial = seen[0][0]  # [restarts, T, 2]: s_1 .. s_T
    start, goal = pairs["observation"][0], pairs["goal"][0]
    line = start + torch.arange(1, 41, dtype=torch.float64)[:, None] / 40 * (goal - start)
    deviation = (initial - line).norm(dim=-1)  # [restarts, T]
    assert deviation[0].max() == 0 and deviation[:, -1].max() < 1e-12
    furthest = deviation[1:].argmax(dim=-1)
    if beta is None:
        assert (furthest - 19).abs().max() <= 1  # the arc's middle
    else:
        assert furthest.unique().numel() >= 5, furthest
    assert deviation[1:].mean() > 0.1  # bent by about restart_spread x |g - s_0| (about 1.2 here)
