"""Planning by reward: with ``reward_key`` set and no goal, the planners raise the model's predicted return."""

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torchrl.data import Bounded, Unbounded

from torchrl_grasp import GDSync, GradientPlanner, GRASPPlanner, TransitionModelEnv

TARGET = torch.tensor([0.5, -0.3])
HORIZON = 15


class PointMassWithReward(torch.nn.Module):
    """Moves 0.1 x action; rewards minus the squared distance of the next state to ``TARGET``."""

    def forward(self, state, action):
        next_state = state + 0.1 * action
        return next_state, -(next_state - TARGET).square().sum(-1, keepdim=True)


def reward_env(writes_reward: bool = True) -> TransitionModelEnv:
    module = PointMassWithReward()
    if writes_reward:
        world_model = TensorDictModule(module, in_keys=["observation", "action"], out_keys=["observation", "reward"])
    else:
        world_model = TensorDictModule(lambda s, a: s + 0.1 * a, in_keys=["observation", "action"], out_keys=["observation"])
    return TransitionModelEnv(world_model, Unbounded(2), Bounded(-1.0, 1.0, (2,)))


def serial_return(start: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    model, state, total = PointMassWithReward(), start, torch.zeros(start.shape[:-1])
    for t in range(actions.shape[-2]):
        state, reward = model(state, actions[..., t, :])
        total = total + reward.squeeze(-1)
    return total


PLANNERS = {
    "grasp": lambda env: GRASPPlanner(
        env, HORIZON, optim_steps=150, lr_actions=0.05, lr_states=0.01, sync=GDSync(every=50), reward_key="reward"
    ),
    "gd": lambda env: GradientPlanner(env, HORIZON, optim_steps=100, reward_key="reward"),
}


@pytest.mark.parametrize("name", PLANNERS)
def test_reward_planning_raises_the_predicted_return_against_zero_actions(name):
    start = torch.tensor([[-0.5, 0.4], [0.0, 0.0], [0.6, 0.6]])
    result = PLANNERS[name](reward_env()).plan(TensorDict(observation=start, batch_size=[3]))
    zero = serial_return(start, torch.zeros(3, HORIZON, 2))
    assert result.goal_distance is None
    # The reported return is the model's own serial return of the returned actions.
    torch.testing.assert_close(result.predicted_return, serial_return(start, result.actions))
    assert (result.predicted_return > zero + 0.5 * zero.abs()).all(), (result.predicted_return, zero)
    # The best return parks the point on the target as early as it can.
    final = result.rollout["observation"][:, -1]
    assert ((final - TARGET).norm(dim=-1) < 0.15).all(), final


def test_a_goal_in_the_input_still_plans_to_the_goal():
    goal = torch.tensor([-0.4, 0.2])
    planner = PLANNERS["grasp"](reward_env())
    result = planner.plan(TensorDict(observation=torch.zeros(2), goal=goal))
    assert result.predicted_return is None
    assert result.goal_distance < 0.05


def test_reward_planning_needs_a_model_that_writes_the_reward():
    planner = PLANNERS["grasp"](reward_env(writes_reward=False))
    with pytest.raises(KeyError, match="reward_key"):
        planner.plan(TensorDict(observation=torch.zeros(2)))
    with pytest.raises(KeyError, match="No goal"):
        GRASPPlanner(reward_env(), HORIZON).plan(TensorDict(observation=torch.zeros(2)))


def double_integrator(state, action):
    """``(x, v)``: the action changes the velocity, the velocity the position; reward ``-(x' - 1)^2``.

    The reward of the next state does not depend on this step's action (``x' = x + 0.1 v``): an
    action pays off one step later, through the velocity it sets.
    """
    position, velocity = state[..., :1], state[..., 1:]
    next_state = torch.cat([position + 0.1 * velocity, velocity + 0.1 * action], dim=-1)
    return next_state, -(next_state[..., :1] - 1.0).square()


def test_grasps_collocation_gives_the_reward_to_the_virtual_states():
    """Without a sync, the collocation alone: an action's reward comes one step after it, so the
    reward must reach the virtual states (through the model's state input) for the plan to move."""
    model = TensorDictModule(double_integrator, in_keys=["observation", "action"], out_keys=["observation", "reward"])
    env = TransitionModelEnv(model, Unbounded(2), Bounded(-1.0, 1.0, (1,)))
    planner = GRASPPlanner(env, 20, optim_steps=200, lr_actions=0.05, lr_states=0.02, sync=None, reward_key="reward")
    result = planner.plan(TensorDict(observation=torch.zeros(2)))
    zero_return = -20.0  # the position stays at 0, one from the target, for 20 steps
    assert result.predicted_return > zero_return + 5.0, result.predicted_return
