"""The baselines: gradient descent through the rollout, plain collocation, the package's CEM and MPPI."""

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torchrl.data import Bounded, Composite, Unbounded
from torchrl.envs.model_based import ModelBasedEnvBase
from torchrl.modules.planners import CEMPlanner, MPPIPlanner

from torchrl_grasp import CollocationPlanner, GradientPlanner, TransitionModelEnv
from torchrl_grasp.planners import GoalCEMPlanner, GoalICEMPlanner, GoalMPPIPlanner

ACTIONS = Bounded(-1.0, 1.0, (2,))


class PointMass(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.state_grad_calls = 0

    def forward(self, state, action):
        if state.requires_grad:
            state.register_hook(self._count)
        return state + 0.1 * action

    def _count(self, grad):
        self.state_grad_calls += 1


def point_mass_env(model=None):
    return TransitionModelEnv(model or PointMass(), Unbounded(2), ACTIONS)


def problem(batch=(3,)):
    start = torch.rand(*batch, 2, generator=torch.Generator().manual_seed(0)) - 0.5
    return TensorDict(observation=start, goal=start + torch.tensor([0.6, -0.4]), batch_size=batch)


BASELINES = {
    "gd": lambda env, **kw: GradientPlanner(env, 12, optim_steps=60, **kw),
    "collocation": lambda env, **kw: CollocationPlanner(
        env, 12, optim_steps=150, lr_states=0.01, lr_actions=0.05, **kw
    ),
    "cem": lambda env, **kw: GoalCEMPlanner(env, 12, optim_steps=8, num_candidates=100, top_k=10, **kw),
    "mppi": lambda env, **kw: GoalMPPIPlanner(env, 12, optim_steps=8, num_candidates=100, top_k=10, **kw),
    "mppi-relative": lambda env, **kw: GoalMPPIPlanner(
        env, 12, optim_steps=8, num_candidates=100, top_k=10, temperature=10.0, relative_temperature=True, **kw
    ),
    "icem": lambda env, **kw: GoalICEMPlanner(env, 12, optim_steps=8, num_candidates=100, top_k=10, **kw),
}


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("batch", [(), (3,), (2, 2)])
def test_each_baseline_reaches_the_goal_with_a_consistent_result(name, batch):
    env = point_mass_env()
    td = problem(batch)
    original = td.clone()
    with torch.no_grad():  # as collectors call policies
        result = BASELINES[name](env).plan(td)
    assert (td == original).all()
    assert result.actions.shape == (*batch, 12, 2)
    assert result.rollout.batch_size == (*batch, 13)
    assert (result.goal_distance < 0.1).all(), result.goal_distance
    # The reported distance is that of the model's rollout of the returned actions.
    replayed = td["observation"] + 0.1 * result.actions.sum(-2)
    torch.testing.assert_close((replayed - td["goal"]).norm(dim=-1), result.goal_distance)


@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_is_deterministic_and_leaves_the_global_rng_alone(name):
    td = problem()
    rng_state = torch.get_rng_state()
    first, second = (
        BASELINES[name](point_mass_env(), generator=torch.Generator().manual_seed(3)).plan(td) for _ in range(2)
    )
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.equal(first.actions, second.actions)


@pytest.mark.parametrize("name", BASELINES)
def test_each_baseline_drives_env_rollout_and_writes_its_first_action(name):
    env = point_mass_env()
    planner, twin = (BASELINES[name](env, generator=torch.Generator().manual_seed(5)) for _ in range(2))
    td = problem(())
    torch.testing.assert_close(planner(td.clone())["action"], twin.plan(td).actions[0])
    trajectory = env.rollout(5, planner, tensordict=env.reset(td), auto_reset=False)
    assert trajectory["next", "reward"][-1] > trajectory["next", "reward"][0]


def test_gradient_planner_restarts_differ_and_the_best_is_returned():
    env = point_mass_env()
    planner = GradientPlanner(env, 12, optim_steps=5, num_restarts=4)
    td = problem(())
    result = planner.plan(td)
    single = GradientPlanner(env, 12, optim_steps=5).plan(td)
    assert result.goal_distance <= single.goal_distance  # restart 0 is the single plan


def test_collocation_differentiates_the_state_input_and_grasp_does_not():
    from torchrl_grasp import GRASPPlanner

    model = PointMass()
    CollocationPlanner(point_mass_env(model), 12, optim_steps=5).plan(problem())
    assert model.state_grad_calls == 5
    model.state_grad_calls = 0
    GRASPPlanner(point_mass_env(model), 12, optim_steps=5, sync=None).plan(problem())
    assert model.state_grad_calls == 0


def test_mppi_weights_stay_finite_where_torchrl_underflows():
    """Returns of about -300 make TorchRL's exp(temperature * return) weights 0/0."""
    env = point_mass_env()
    far = TensorDict(observation=torch.zeros(2), goal=torch.tensor([9.0, 0.0]))
    def total_return(td):
        reward = td["next", "reward"]
        return td.set("advantage", reward.sum(-2, keepdim=True).expand_as(reward))

    raw = MPPIPlanner(env, total_return, 1.0, 40, 3, 50, 5)
    torch.manual_seed(0)
    assert torch.isnan(raw.planning(far)).all()
    result = GoalMPPIPlanner(env, 40, optim_steps=10, num_candidates=100, top_k=10).plan(far)
    assert torch.isfinite(result.actions).all()
    assert result.goal_distance < 9.0 - 1.0  # it heads for the goal


class BatchedPointMassEnv(ModelBasedEnvBase):
    """Three point masses in one env (batch size ``[3]``) whose action is at ``"force"``."""

    def __init__(self):
        model = TensorDictModule(PointMass(), in_keys=["observation", "force"], out_keys=["observation"])
        super().__init__(model, batch_size=torch.Size([3]))
        self.observation_spec = Composite(observation=Unbounded((3, 2)), shape=(3,))
        self.full_action_spec = Composite(force=Bounded(-1.0, 1.0, (3, 2)), shape=(3,))
        self.reward_spec = Unbounded((3, 1))

    def _reset(self, tensordict=None):
        return self.observation_spec.zero()


@pytest.mark.parametrize("planner_class", [GoalCEMPlanner, GoalMPPIPlanner])
def test_the_sampling_planners_plan_where_torchrls_mis_shape_or_ignore(planner_class):
    """TorchRL's CEM and MPPI mis-shape their samples on a batched env and write "action" whatever
    the action key; the package's plan on a batched env with its action at "force"."""
    planner = planner_class(BatchedPointMassEnv(), 5, optim_steps=8, num_candidates=100, top_k=10)
    assert planner.action_key == "force"
    start = torch.zeros(3, 2)
    goal = torch.tensor([[0.3, -0.2], [-0.2, 0.1], [0.0, 0.25]])
    result = planner.plan(TensorDict(observation=start, goal=goal, batch_size=[3]))
    assert result.actions.shape == (3, 5, 2)
    assert (result.goal_distance < 0.05).all(), result.goal_distance
    zero_distance = goal.norm(dim=-1)
    assert (result.goal_distance < 0.2 * zero_distance).all()


TARGET = torch.tensor([0.5, -0.3])


class PointMassWithReward(torch.nn.Module):
    def forward(self, state, action):
        next_state = state + 0.1 * action
        return next_state, -(next_state - TARGET).square().sum(-1, keepdim=True)


class RewardPointMassEnv(ModelBasedEnvBase):
    """A model env whose world model writes the reward (minus the squared distance to ``TARGET``)."""

    def __init__(self):
        model = TensorDictModule(
            PointMassWithReward(), in_keys=["observation", "action"], out_keys=["observation", "reward"]
        )
        super().__init__(model)
        self.observation_spec = Composite(observation=Unbounded(2))
        self.action_spec = ACTIONS
        self.reward_spec = Unbounded(1)

    def _reset(self, tensordict=None):
        return self.observation_spec.zero()


def test_cem_at_torchrls_settings_follows_torchrls_cem_and_earns_at_least_its_return():
    env = RewardPointMassEnv()
    start = TensorDict(observation=torch.tensor([-0.5, 0.4]))
    settings = dict(planning_horizon=12, optim_steps=6, num_candidates=100, top_k=10)
    # One plan from the same noise: TorchRL's final mean is the package's (its first action is all it returns).
    torch.manual_seed(7)
    torchrl_first_action = CEMPlanner(env, **settings).planning(start.clone())
    means = []
    package = GoalCEMPlanner(
        env,
        **settings,
        reward_key="reward",
        warm_start=False,
        generator=torch.Generator().manual_seed(7),
        callback=lambda iteration, plan: means.append(plan["actions"].clone()),
    )
    result = package.plan(start)
    assert len(means) == settings["optim_steps"] + 1
    torch.testing.assert_close(means[-1][0, 0], torchrl_first_action)
    # The plan returned is the best candidate seen, the final mean among them.
    final_mean = means[-1][0]
    state, mean_return = start["observation"], 0.0
    for action in final_mean:
        state, reward = PointMassWithReward()(state, action)
        mean_return += float(reward)
    assert float(result.predicted_return) >= mean_return - 1e-5

    # As MPC policies in the model env for 15 steps: the package's (warm-started) earns at least TorchRL's.
    def mpc_return(policy):
        torch.manual_seed(0)
        rollout = env.rollout(15, policy, tensordict=start.clone(), auto_reset=False)
        return float(rollout["next", "reward"].sum())

    torchrl_return = mpc_return(CEMPlanner(env, **settings))
    package_return = mpc_return(
        GoalCEMPlanner(env, **settings, reward_key="reward", generator=torch.Generator().manual_seed(0))
    )
    zero_return = mpc_return(lambda td: td.set("action", torch.zeros(2)))
    assert package_return >= torchrl_return, (package_return, torchrl_return)
    assert package_return > 0.5 * zero_return, (package_return, zero_return)  # returns are negative


