"""GRASPPlanner: it reaches goals, and behaves as a TorchRL planner should."""

import copy
import importlib.util
import math
import re
from pathlib import Path

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import GymEnv

from torchrl_grasp import CEMSync, GDSync, GradientPlanner, GRASPPlanner, TransitionModelEnv
from torchrl_grasp.planners import GoalCEMPlanner
from torchrl_grasp.world_models.analytic import SmoothWallDoor, wall_crossing_pairs

ACTIONS = Bounded(-1.0, 1.0, (2,))
NOISE_CONVERGENCE = Path(__file__).resolve().parents[1] / "benchmarks" / "noise_convergence.py"


class PointMass(torch.nn.Module):
    def forward(self, state, action):
        return state + 0.1 * action


def point_mass_env():
    return TransitionModelEnv(PointMass(), Unbounded(2), ACTIONS)


def point_mass_problem(batch):
    gen = torch.Generator().manual_seed(0)
    start = torch.rand(*batch, 2, generator=gen) - 0.5
    goal = start + torch.tensor([0.8, -0.6])
    return TensorDict(observation=start, goal=goal, batch_size=batch)


def quick_planner(env, **kwargs):
    options = dict(
        planning_horizon=15, optim_steps=100, lr_actions=0.05, lr_states=0.01, sync=GDSync(every=25), goal_weight=0.3
    )
    options.update(kwargs)
    return GRASPPlanner(env, **options)


def test_long_horizon_plans_go_around_the_wall():
    env = TransitionModelEnv(SmoothWallDoor(), Unbounded(2), ACTIONS)
    planner = GRASPPlanner(env, planning_horizon=60, lr_actions=0.05, lr_states=0.01, num_restarts=4)
    pairs = wall_crossing_pairs(8)
    result = planner.plan(pairs)

    # The reported distance is that of the model's own rollout of the returned actions.
    final = env.rollout(
        60, _replay(result.actions), tensordict=env.reset(pairs), auto_reset=False
    )["next", "observation"][:, -1]
    torch.testing.assert_close((final - pairs["goal"]).norm(dim=-1), result.goal_distance)
    assert (result.goal_distance < 0.1).sum() >= 6, result.goal_distance
    # The paths cross x = 0 through the door, not through the wall.
    path = result.rollout["observation"]
    crossing = (path[:, :-1, 0] < 0) & (path[:, 1:, 0] >= 0)
    reached = result.goal_distance < 0.1
    heights = path[:, 1:, 1].abs()
    assert crossing[reached].any(dim=-1).all()
    assert (heights[reached][crossing[reached]] < 0.25).all()


def _replay(actions):
    step = {"t": 0}

    def policy(td):
        td.set("action", actions[:, step["t"]])
        step["t"] += 1
        return td

    return policy


class DoubleIntegrator(torch.nn.Module):
    def forward(self, position, velocity, action):
        velocity = 0.8 * velocity + 0.2 * action
        return position + 0.1 * velocity, velocity


def nested_env():
    model = TensorDictModule(
        DoubleIntegrator(),
        in_keys=[("agent", "position"), ("agent", "velocity"), "action"],
        out_keys=[("agent", "position"), ("agent", "velocity")],
    )
    state = Composite(agent=Composite(position=Unbounded(2), velocity=Unbounded(2)))
    return TransitionModelEnv(model, state, ACTIONS)


def test_env_rollout_with_nested_state_keys_reaches_the_goal():
    env = nested_env()
    planner = quick_planner(env, planning_horizon=12)
    assert planner.state_keys == [("agent", "position"), ("agent", "velocity")]
    start = TensorDict(
        agent=TensorDict(position=torch.zeros(2), velocity=torch.zeros(2)),
        goal=TensorDict(agent=TensorDict(position=torch.tensor([0.4, -0.3]))),
    )
    with torch.no_grad():  # as collectors call policies
        trajectory = env.rollout(20, planner, tensordict=env.reset(start), auto_reset=False)
    final = trajectory["next", "agent", "position"][-1]
    assert (final - torch.tensor([0.4, -0.3])).norm() < 0.05


@pytest.mark.parametrize("batch", [(), (3,), (2, 3)])
def test_every_batch_shape(batch):
    planner = quick_planner(point_mass_env(), num_restarts=2)
    td = point_mass_problem(batch)
    result = planner.plan(td)
    assert result.actions.shape == (*batch, 15, 2)
    assert result.virtual_states.batch_size == (*batch, 16)
    assert result.rollout.batch_size == (*batch, 16)
    assert result.goal_distance.shape == batch
    assert result.loss_history.shape == (100, *batch)
    assert (result.goal_distance < 0.05).all()
    torch.testing.assert_close(result.virtual_states["observation"][..., 0, :], td["observation"])
    torch.testing.assert_close(result.virtual_states["observation"][..., -1, :], td["goal"])
    assert planner(td.clone())["action"].shape == (*batch, 2)


def test_actions_stay_inside_the_spec_bounds():
    env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-0.3, 0.3, (2,)))
    result = quick_planner(env).plan(point_mass_problem((4,)))
    assert result.actions.abs().max() <= 0.3


def test_input_is_not_mutated_beyond_the_action():
    planner = quick_planner(point_mass_env())
    td = point_mass_problem((3,))
    original = td.clone()
    planner.plan(td)
    assert (td == original).all()
    out = planner(td)
    assert (out.exclude("action") == original).all()
    assert set(out.keys()) == set(original.keys()) | {"action"}


def test_deterministic_under_a_generator_and_global_rng_untouched():
    td = point_mass_problem((3,))
    rng_state = torch.get_rng_state()
    noisy = dict(state_noise_std=0.005)  # what the generator draws, explicitly (the default's)
    results = [
        quick_planner(point_mass_env(), generator=torch.Generator().manual_seed(7), sync=sync, **noisy).plan(td)
        for sync in (GDSync(every=25), GDSync(every=25), CEMSync(every=25), CEMSync(every=25))
    ]
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.equal(results[0].actions, results[1].actions)
    assert torch.equal(results[2].actions, results[3].actions)
    other = quick_planner(point_mass_env(), generator=torch.Generator().manual_seed(8), **noisy).plan(td)
    assert not torch.equal(results[0].actions, other.actions)


def test_the_default_noise_speeds_convergence_at_the_default_learning_rates():
    """The method's noise earns its place here (the benchmark's worlds show no gain from it):
    at ``lr_states=0.1`` after 100 iterations it reaches half as many goals again as no noise
    (``benchmarks/noise_convergence.py``'s cells)."""
    spec = importlib.util.spec_from_file_location("noise_convergence", NOISE_CONVERGENCE)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    goals = script.make_goals(96)
    reached = {noise: script.goals_reached(100, noise, goals)[0] for noise in (0.0, 0.005)}
    assert GRASPPlanner(point_mass_env(), 20).state_noise_std == 0.005
    assert reached[0.005] >= reached[0.0] + 12, reached  # measured: 69 against 46 of 96


class LinearModel(torch.nn.Module):
    """A point mass whose action gain is a learnable parameter, to watch the model's gradients."""

    def __init__(self):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(0.1))
        self.state_grad_calls = 0

    def forward(self, state, action):
        if state.requires_grad:
            state.register_hook(self._count)
        return state + self.gain * action

    def _count(self, grad):
        self.state_grad_calls += 1


def test_no_gradient_reaches_the_state_input_in_collocation_steps():
    model = LinearModel()
    env = TransitionModelEnv(model, Unbounded(2), ACTIONS)
    result = quick_planner(env, sync=None).plan(point_mass_problem((2,)))
    assert model.state_grad_calls == 0
    assert result.loss_history[-1].max() < result.loss_history[0].min()
    # The hook does see gradients where they flow: the GD sync differentiates the serial rollout.
    quick_planner(env, sync=GDSync(every=25)).plan(point_mass_problem((2,)))
    assert model.state_grad_calls > 0


def test_under_no_grad_it_plans_and_leaves_no_gradient_on_the_model():
    model = LinearModel()
    env = TransitionModelEnv(model, Unbounded(2), ACTIONS)
    with torch.no_grad():
        result = quick_planner(env).plan(point_mass_problem((3,)))
    assert (result.goal_distance < 0.05).all()
    assert model.gain.grad is None


def initial_plan(planner, td):
    """The plan ``planner`` starts from on ``td``, ``[*B, restarts]``, as a copy's callback sees it
    (the copy's plan does not become ``planner``'s warm start)."""
    seen = {}
    observed = copy.deepcopy(planner)
    observed.callback = lambda iteration, plan: seen.setdefault(iteration, plan.clone())
    observed.plan(td)
    return seen[0]


def test_warm_start_shifts_the_previous_plan_by_one_step():
    planner = quick_planner(point_mass_env())
    td = point_mass_problem((3,))
    first = planner.plan(td)
    start = initial_plan(planner, td).squeeze(1)
    actions, virtual = start["actions"], start["virtual_states"]
    torch.testing.assert_close(actions[:, :-1], first.actions[:, 1:])
    torch.testing.assert_close(actions[:, -1], first.actions[:, -1])
    torch.testing.assert_close(virtual["observation"][:, :-1], first.virtual_states["observation"][:, 2:])

    moved_goal = td.clone()
    moved_goal["goal"][0] += 0.5  # a new goal for element 0 only
    actions = initial_plan(planner, moved_goal)["actions"].squeeze(1)
    assert (actions[0] == 0).all() and torch.equal(actions[1:, :-1], first.actions[1:, 1:])

    planner.reset()
    assert (initial_plan(planner, moved_goal)["actions"] == 0).all()
    planner.plan(point_mass_problem((5,)))  # a new batch shape drops the warm start too
    assert (initial_plan(planner, td)["actions"] == 0).all()


def test_schedules_are_called_with_the_iteration():
    seen = []
    planner = quick_planner(point_mass_env(), goal_weight=lambda it: seen.append(it) or 1.0 / (1 + it))
    planner.plan(point_mass_problem((2,)))
    assert seen == list(range(100))


def test_nan_mid_optimisation_returns_the_best_finite_plan_with_a_warning():
    class BreaksLater(PointMass):
        calls = 0

        def forward(self, state, action):
            BreaksLater.calls += 1
            out = super().forward(state, action)
            return out * math.nan if BreaksLater.calls > 200 else out

    env = TransitionModelEnv(BreaksLater(), Unbounded(2), ACTIONS)
    planner = quick_planner(env, optim_steps=200, sync=GDSync(every=20, steps=2))
    with pytest.warns(RuntimeWarning, match="best finite plan"):
        result = planner.plan(point_mass_problem((2,)))
    assert torch.isfinite(result.actions).all() and torch.isfinite(result.goal_distance).all()


def test_zero_action_rate_leaves_the_actions_to_the_syncs():
    sync = CEMSync(every=25, iterations=5, std=0.5, samples=64, top_k=8)
    planner = quick_planner(point_mass_env(), lr_actions=0.0, sync=sync, generator=torch.Generator().manual_seed(0))
    result = planner.plan(point_mass_problem((3,)))
    assert (result.goal_distance < 0.05).all()  # zero actions stay 1.0 from the goal
    with pytest.raises(ValueError, match="nothing would move the actions"):
        quick_planner(point_mass_env(), lr_actions=0.0, sync=None)


BAD_INPUTS = {
    "no goal": (lambda td: td.exclude("goal"), KeyError, "goal_key='goal'"),
    "missing state": (lambda td: td.exclude("observation"), KeyError, "state keys"),
    "goal shape": (lambda td: td.set("goal", torch.zeros(3, 5)), ValueError, "does not broadcast"),
    "nan start": (lambda td: td.set("observation", td["observation"] * math.nan), ValueError, "NaN"),
    "goal with unknown key": (
        lambda td: td.set("goal", TensorDict(velocity=torch.zeros(3, 2), batch_size=[3])),
        ValueError,
        "state keys",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_raises_a_clear_error(case):
    mutate, error, message = BAD_INPUTS[case]
    with pytest.raises(error, match=message):
        quick_planner(point_mass_env()).plan(mutate(point_mass_problem((3,))))


def test_tensor_goal_needs_a_single_state_key():
    td = TensorDict(
        agent=TensorDict(position=torch.zeros(2), velocity=torch.zeros(2)), goal=torch.ones(2)
    )
    with pytest.raises(ValueError, match="is a tensor"):
        quick_planner(nested_env()).plan(td)


def test_non_finite_world_model_output_raises():
    class Broken(PointMass):
        def forward(self, state, action):
            return super().forward(state, action) / 0.0 * 0.0

    env = TransitionModelEnv(Broken(), Unbounded(2), ACTIONS)
    with pytest.raises(ValueError, match="NaN or infinite"):
        quick_planner(env).plan(point_mass_problem((2,)))


def test_bad_construction_raises():
    with pytest.raises(ValueError, match="ModelBasedEnvBase with a world_model, got GymEnv"):
        GRASPPlanner(GymEnv("Pendulum-v1"), 10)  # a real env, checked before TorchRL's batch_locked error
    with pytest.raises(ValueError, match="sync_mode"):
        GRASPPlanner(point_mass_env(), 10, sync_mode="adam")
    with pytest.raises(ValueError, match="sync must be a GDSync, a CEMSync or None"):
        GRASPPlanner(point_mass_env(), 10, sync="gd")
    with pytest.raises(ValueError, match="planning_horizon"):
        GRASPPlanner(point_mass_env(), 0)
    with pytest.raises(ValueError, match="continuous actions"):
        GRASPPlanner(TransitionModelEnv(PointMass(), Unbounded(2), Categorical(4)), 10)


@pytest.mark.parametrize("planner", ["grasp", "gd"])
def test_stop_distance_ends_planning_once_every_goal_is_reached(planner):
    env = point_mass_env()
    td = point_mass_problem((3,))

    def build(**kwargs):
        if planner == "grasp":
            return quick_planner(env, optim_steps=400, **kwargs)
        return GradientPlanner(env, 15, optim_steps=400, **kwargs)

    full = build().plan(td)
    early = build(stop_distance=0.05).plan(td)
    assert (early.goal_distance <= 0.05).all(), early.goal_distance
    assert early.model_calls < full.model_calls / 2, (early.model_calls, full.model_calls)
    assert early.loss_history.shape[0] < full.loss_history.shape[0] == 400
    assert torch.isfinite(early.loss_history).all()


def test_restarts_after_the_first_start_from_bent_lines():
    env = point_mass_env()
    td = point_mass_problem(())
    planner = GRASPPlanner(env, planning_horizon=15, optim_steps=1, num_restarts=3, restart_spread=0.5)
    start, goal = td["observation"], td["goal"]
    line = start + torch.arange(1, 16)[:, None] / 15 * (goal - start)
    first, *others = initial_plan(planner, td)["virtual_states", "observation"]
    torch.testing.assert_close(first, line)
    for other in others:
        assert (other - line).norm(dim=-1).max() > 0.05
        torch.testing.assert_close(other[-1], goal)  # still pinned at the goal
    flat = GRASPPlanner(env, planning_horizon=15, optim_steps=1, num_restarts=3, restart_spread=0.0)
    for initial in initial_plan(flat, td)["virtual_states", "observation"]:
        torch.testing.assert_close(initial, line)
    with pytest.raises(ValueError, match="restart_spread"):
        GRASPPlanner(env, 15, restart_spread=-1.0)


def test_a_warm_started_replan_is_never_worse_than_the_shifted_previous_plan():
    """The shifted previous plan is evaluated before the first sync, so a replan that the
    optimisation makes worse still returns a plan at least as good as the shifted one."""
    env = point_mass_env()
    td = point_mass_problem(())
    planner = quick_planner(env, optim_steps=100)
    first = planner.plan(td)
    assert first.goal_distance < 0.05
    # One step later on the plan, replanning with a learning rate that wrecks the actions.
    moved = td.clone().set("observation", first.rollout["observation"][1])
    planner.lr_actions = 5.0
    planner.optim_steps, planner.sync = 10, GDSync(every=10, steps=1)
    replan = planner.plan(moved)
    shifted = torch.cat([first.actions[1:], first.actions[-1:]])
    state = moved["observation"]
    for action in shifted:
        state = PointMass()(state, action)
    assert replan.goal_distance <= (state - td["goal"]).norm() + 1e-6, (replan.goal_distance, state)


@pytest.mark.parametrize("planner_class", [GRASPPlanner, GradientPlanner, GoalCEMPlanner])
def test_a_batch_of_states_without_a_batch_size_is_refused_with_the_fix(planner_class):
    env = TransitionModelEnv(SmoothWallDoor(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
    planner = planner_class(env, 5, optim_steps=2)
    unbatched = TensorDict(observation=torch.zeros(3, 2), goal=torch.ones(3, 2))
    with pytest.raises(ValueError, match=r"'observation' has shape \(3, 2\).*batch_size=\[3\]"):
        planner.plan(unbatched)
    assert planner.plan(TensorDict(observation=torch.zeros(3, 2), goal=torch.ones(3, 2), batch_size=[3])).actions.shape == (3, 5, 2)


@pytest.mark.parametrize(
    "legacy, sync",
    [
        (dict(sync_every=25, sync_steps=3, sync_lr=0.1), GDSync(every=25, steps=3, lr=0.1)),
        (dict(sync_mode="cem", sync_cem_samples=16, sync_cem_top_k=4), CEMSync(samples=16, top_k=4)),
        (dict(sync_mode=None), None),
    ],
)
def test_the_old_sync_arguments_still_work_with_a_warning_that_names_the_replacement(legacy, sync):
    with pytest.warns(DeprecationWarning, match=re.escape(f"pass sync={sync!r}")):
        old = quick_planner(point_mass_env(), sync=GDSync(), **legacy)
    assert old.sync == sync
    new = quick_planner(point_mass_env(), sync=sync)
    td = point_mass_problem((2,))
    torch.testing.assert_close(old.plan(td).actions, new.plan(td).actions, rtol=0, atol=0)
