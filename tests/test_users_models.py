"""The world models and arguments users bring: action specs of any rank, non-differentiable models,
TorchRL's key conventions, reproducible plans, and invalid settings refused with the fix."""

import math

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torchrl.data import Bounded, Unbounded

from torchrl_grasp import CEMSync, GradientPlanner, GRASPPlanner, TransitionModelEnv, collocation_loss
from torchrl_grasp.planners import GoalCEMPlanner, GoalMPPIPlanner

GOAL = torch.tensor([0.3, 0.2])  # zero actions stay 0.36 from it


def task():
    return TensorDict(observation=torch.zeros(2), goal=GOAL.clone())


# Models whose action is [2, 3] or [1, 6]: they reduce, slice or reshape it to the 2-D state's move.
ACTION_MODELS = {
    "reduce": ((2, 3), lambda s, a: s + 0.05 * a.sum(-1)),  # a zero-stride action gradient
    "slice": ((2, 3), lambda s, a: s + 0.1 * a[..., :, 0]),
    "reshape": ((1, 6), lambda s, a: s + 0.1 * a.flatten(-2)[..., 2:4]),
}
PLANNERS = {
    "grasp": lambda env: GRASPPlanner(env, 8, optim_steps=150, lr_states=0.01, lr_actions=0.05),
    "gd": lambda env: GradientPlanner(env, 8, optim_steps=100),
    "cem": lambda env: GoalCEMPlanner(env, 8, optim_steps=10, num_candidates=100, top_k=10),
}


@pytest.mark.parametrize("planner", PLANNERS)
@pytest.mark.parametrize("model", ACTION_MODELS)
def test_action_specs_of_any_rank_reach_the_goal(model, planner):
    shape, step = ACTION_MODELS[model]
    env = TransitionModelEnv(step, Unbounded(2), Bounded(-1.0, 1.0, shape))
    result = PLANNERS[planner](env).plan(task())
    assert result.actions.shape == (8, *shape) and result.status != "non_finite"
    assert result.goal_distance < 0.05, result.goal_distance  # zero actions: 0.36
    state = torch.zeros(2)
    for action in result.actions:  # the reported distance is the model's, for the actions returned
        state = step(state, action)
    torch.testing.assert_close((state - GOAL).norm(), result.goal_distance)


@pytest.mark.parametrize("planner", PLANNERS)
def test_the_same_calls_after_reset_give_the_same_plans(planner):
    env = TransitionModelEnv(lambda s, a: s + 0.1 * a, Unbounded(2), Bounded(-1.0, 1.0, (2,)))
    make = PLANNERS[planner]
    planner = make(env)
    if isinstance(planner, GradientPlanner):
        planner.num_restarts = 3  # restarts draw from the generator
    first, second = planner.plan(task()).actions, planner.plan(task()).actions
    planner.reset()
    assert torch.equal(planner.plan(task()).actions, first)
    assert torch.equal(planner.plan(task()).actions, second)


class NoGradInside(torch.nn.Module):
    def forward(self, state, action):
        with torch.no_grad():
            return state + 0.1 * action


class Detached(torch.nn.Module):
    def forward(self, state, action):
        return state + 0.1 * action.detach()


@pytest.mark.parametrize("model", [NoGradInside(), Detached()], ids=["no_grad", "detach"])
@pytest.mark.parametrize("planner", ["grasp", "gd"])
def test_a_model_without_an_action_gradient_is_refused_with_the_fix(model, planner):
    env = TransitionModelEnv(model, Unbounded(2), Bounded(-1.0, 1.0, (2,)))
    with pytest.raises(ValueError, match="not differentiable in its action input.*GoalCEMPlanner"):
        PLANNERS[planner](env).plan(task())
    assert (
        GoalCEMPlanner(env, 8, optim_steps=10, num_candidates=100, top_k=10).plan(task()).goal_distance < 0.05
    )


def test_a_plain_model_returning_more_tensors_than_state_keys_is_refused():
    env = TransitionModelEnv(lambda s, a: (s + 0.1 * a, s.sum(-1)), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
    with pytest.raises(ValueError, match="returned 2 tensors for 1 outputs.*out_keys"):
        GRASPPlanner(env, 5, optim_steps=5).plan(task())


def test_torchrls_reward_key_convention_means_the_models_reward():
    target = torch.tensor([0.5, -0.3])  # where reward_model_env rewards being
    env = reward_model_env()
    start = TensorDict(observation=torch.zeros(2))
    plans = [
        GradientPlanner(env, 10, optim_steps=50, reward_key=key).plan(start)
        for key in ("reward", ("next", "reward"))
    ]
    assert torch.equal(plans[0].actions, plans[1].actions)
    zero_return = sum(-(target.square().sum()) for _ in range(10))
    assert plans[1].predicted_return > 0.5 * zero_return  # returns are negative: most of the deficit made up


POINT_MASS = TransitionModelEnv(lambda s, a: s + 0.1 * a, Unbounded(2), Bounded(-1.0, 1.0, (2,)))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: GRASPPlanner(POINT_MASS, 5, lr_actions=-0.1), "lr_actions must be a non-negative.*ascend"),
        (lambda: GRASPPlanner(POINT_MASS, 5, lr_states=-0.1), "lr_states must be a positive"),
        (
            lambda: GRASPPlanner(POINT_MASS, 5, state_noise_std=math.nan),
            "state_noise_std must be a non-negative",
        ),
        (lambda: GRASPPlanner(POINT_MASS, 5, state_noise_std=-0.1), "state_noise_std must be a non-negative"),
        (lambda: GradientPlanner(POINT_MASS, 5, lr=-0.05), "lr must be a positive"),
        (
            lambda: GRASPPlanner(
                TransitionModelEnv(lambda s, a: s + a, Unbounded(2), Bounded(1.0, -1.0, (2,))), 5
            ),
            "low exceeds its high",
        ),
        (lambda: GRASPPlanner(POINT_MASS, 5, sync_steps=-1), "steps must be a positive int"),
        (lambda: GRASPPlanner(POINT_MASS, 5, sync=CEMSync(top_k=1)), "top_k must be at least 2"),
        (lambda: GoalCEMPlanner(POINT_MASS, 5, top_k=1), "top_k must be at least 2"),
        (lambda: GoalMPPIPlanner(POINT_MASS, 5, optim_steps=0), "optim_steps must be a positive int"),
        (lambda: GRASPPlanner(torch.nn.Linear(2, 2), 5), "ModelBasedEnvBase with a world_model, got Linear"),
    ],
)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # sync_steps is version 0.1's keyword
def test_invalid_settings_are_refused_at_construction_naming_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_collocation_loss_refuses_negative_key_weights():
    states = TensorDict(a=torch.randn(2, 3, 4), b=torch.randn(2, 3, 4), batch_size=[2, 3])
    with pytest.raises(ValueError, match="key_weights must be non-negative"):
        collocation_loss(states, states.clone(), None, 0.0, key_weights={"a": -1.0})


def reward_model_env():
    target = torch.tensor([0.5, -0.3])

    def step(state, action):
        next_state = state + 0.1 * action
        return next_state, -(next_state - target).square().sum(-1, keepdim=True)

    model = TensorDictModule(step, in_keys=["observation", "action"], out_keys=["observation", "reward"])
    return TransitionModelEnv(model, Unbounded(2), Bounded(-1.0, 1.0, (2,)))


def test_a_transformed_model_env_plans_on_its_base_model_with_the_reward_transformed():
    from torchrl.envs import Compose, RewardScaling, StepCounter, TransformedEnv

    base = reward_model_env()
    transformed = TransformedEnv(base, Compose(RewardScaling(loc=-5.0, scale=3.0), StepCounter()))
    start = TensorDict(observation=torch.zeros(2))
    plain = GradientPlanner(base, 10, optim_steps=50, reward_key="reward").plan(start)
    scaled = GradientPlanner(transformed, 10, optim_steps=50, reward_key="reward").plan(start)
    # Adam does not see a positive scale of the loss, so the plans agree; the return is the env's, transformed.
    torch.testing.assert_close(scaled.actions, plain.actions)
    torch.testing.assert_close(scaled.predicted_return, 3.0 * plain.predicted_return - 5.0 * 10)
    zero_return = 10 * -(torch.tensor([0.5, -0.3]).square().sum())
    assert plain.predicted_return > 0.5 * zero_return  # the plan earns most of what zero actions lose
    # As a policy in the transformed env's own rollout.
    rollout = transformed.rollout(
        3,
        GradientPlanner(transformed, 10, optim_steps=20),
        tensordict=transformed.reset(TensorDict(observation=torch.zeros(2), goal=torch.tensor([0.3, 0.0]))),
        auto_reset=False,
    )
    assert rollout["next", "step_count"][-1] == 3
    x = rollout["next", "observation"][:, 0]
    assert (x.diff() > 0).all() and x[
        -1
    ] > 0.05  # heading for the goal at 0.3 (over 10 steps): zero actions stay at 0


def test_a_transform_the_planners_cannot_follow_is_refused_by_name():
    from torchrl.envs import ObservationNorm, TransformedEnv

    env = TransformedEnv(reward_model_env(), ObservationNorm(loc=0.0, scale=2.0, in_keys=["observation"]))
    with pytest.raises(ValueError, match="ObservationNorm changes what that model sees.*env.base_env"):
        GRASPPlanner(env, 5)


@pytest.mark.parametrize(
    "state_dtype, action_dtype, model_dtype",
    [
        (torch.float32, torch.float64, None),  # an fp64 action spec promotes cat([s, a]) to fp64
        (torch.float32, torch.float32, torch.float64),  # a model that computes in fp64
        (torch.float16, torch.float32, None),  # a half-precision state
    ],
    ids=["fp64-actions", "fp64-model", "fp16-state"],
)
def test_mixed_precision_plans_in_the_states_dtype(state_dtype, action_dtype, model_dtype):
    weight = torch.cat([torch.zeros(2, 2), torch.eye(2)], 1)  # picks the action out of cat([s, a])

    def step(state, action):
        joint = torch.cat([state, action], -1)  # torch promotes to the wider dtype
        out = state + 0.1 * joint @ weight.T.to(joint.dtype)
        return out if model_dtype is None else out.to(model_dtype)

    env = TransitionModelEnv(
        step, Unbounded(2, dtype=state_dtype), Bounded(-1.0, 1.0, (2,), dtype=action_dtype)
    )
    td = TensorDict(observation=torch.zeros(2, dtype=state_dtype), goal=GOAL.to(state_dtype))
    result = GRASPPlanner(env, 8, optim_steps=150, lr_states=0.01, lr_actions=0.05).plan(td)
    assert result.actions.dtype == action_dtype and result.rollout["observation"].dtype == state_dtype
    assert result.goal_distance < 0.05  # zero actions: 0.36


def test_an_integer_state_is_refused_naming_the_key_and_the_cast():
    env = TransitionModelEnv(lambda s, a: s + a, Unbounded(2, dtype=torch.int64), Bounded(-1.0, 1.0, (2,)))
    td = TensorDict(observation=torch.zeros(2, dtype=torch.long), goal=GOAL)
    with pytest.raises(ValueError, match=r"'observation' has dtype torch.int64.*\.float\(\)"):
        GRASPPlanner(env, 5).plan(td)


def test_a_float64_call_after_a_float32_call_warm_starts():
    planner = GRASPPlanner(POINT_MASS, 8, optim_steps=100, lr_states=0.01, lr_actions=0.05)
    planner.plan(task())
    result = planner.plan(task().apply(lambda x: x.double()))
    assert result.goal_distance < 0.05


@pytest.mark.parametrize("planner", PLANNERS)
def test_plans_made_under_inference_mode_or_from_inference_tensors_reach_the_goal(planner):
    with torch.inference_mode():
        td = task()  # inference tensors, as an env stepped under inference mode returns them
        result = PLANNERS[planner](POINT_MASS).plan(td)
    assert result.goal_distance < 0.05
