"""A penalty the world model writes (an ensemble's disagreement) in every planner's objective.

The world: a point mass whose model knows nothing of a wall across the straight path, but
says where it is unsure (a bump of penalty there). The real world has the wall. Planners that
add the penalty go around it and reach the goal in the real world; without it they plan
straight through and stop at the wall.
"""

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torchrl.data import Bounded, Unbounded

from torchrl_grasp import GradientPlanner, GRASPPlanner, TransitionModelEnv
from torchrl_grasp.objectives import GoalObjective
from torchrl_grasp.planners import GoalCEMPlanner, GoalICEMPlanner, GoalMPPIPlanner

HORIZON, STEP = 24, 0.1
START, GOAL = torch.tensor([-0.5, 0.0]), torch.tensor([0.5, 0.0])
WALL_HALF_WIDTH, WALL_HALF_LENGTH = 0.1, 0.3  # the wall the model does not know: |x| < 0.1, |y| < 0.3


def unsure(state):
    """The model's penalty ``[*B, 1]``: a bump over the wall, centred a little below the path so
    that its gradient says which way is out."""
    offset = state - torch.tensor([0.0, -0.05])
    return torch.exp(-(offset[..., :1] / WALL_HALF_WIDTH).square() - (offset[..., 1:] / WALL_HALF_LENGTH).square())


def unsure_where_the_wall_is(state, action):
    """The model: free motion, and where it is unsure."""
    return state + STEP * action, unsure(state)


def model_env():
    module = TensorDictModule(
        unsure_where_the_wall_is, in_keys=["observation", "action"], out_keys=["observation", "disagreement"]
    )
    return TransitionModelEnv(module, Unbounded(2), Bounded(-1.0, 1.0, (2,)))


def in_the_real_world(actions):
    """Where ``actions`` ``[T, 2]`` end from ``START`` when the wall stops every move into it."""
    position = START.clone()
    for action in actions:
        moved = position + STEP * action.clamp(-1, 1)
        if (moved[0].abs() < WALL_HALF_WIDTH) & (moved[1].abs() < WALL_HALF_LENGTH):
            continue  # blocked
        position = moved
    return position


PLANNERS = {
    "grasp": lambda env, **kw: GRASPPlanner(env, HORIZON, optim_steps=300, num_restarts=4, **kw),
    "gd": lambda env, **kw: GradientPlanner(env, HORIZON, optim_steps=150, lr=0.1, num_restarts=4, **kw),
    "cem": lambda env, **kw: GoalCEMPlanner(env, HORIZON, optim_steps=20, num_candidates=200, top_k=20, **kw),
    "icem": lambda env, **kw: GoalICEMPlanner(env, HORIZON, optim_steps=20, **kw),
    "mppi": lambda env, **kw: GoalMPPIPlanner(env, HORIZON, optim_steps=20, num_candidates=200, top_k=20, **kw),
}


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_every_planner_goes_around_where_the_model_is_unsure(name):
    task = TensorDict(observation=START, goal=GOAL)
    make = PLANNERS[name]
    plain = make(model_env(), generator=torch.Generator().manual_seed(0)).plan(task.clone())
    careful = make(model_env(), generator=torch.Generator().manual_seed(0), penalty_weight=0.1).plan(task.clone())

    # Inside the model both reach the goal; the careful plan says how unsure its path is.
    assert plain.penalty is None and float(plain.goal_distance) < 0.1
    assert float(careful.goal_distance) < 0.1
    torch.testing.assert_close(careful.penalty, unsure(careful.rollout["observation"][:-1]).sum(), rtol=1e-5, atol=1e-6)
    # In the real world only the careful plan gets there: the plain one walks into the wall.
    assert float((in_the_real_world(careful.actions) - GOAL).norm()) < 0.1
    assert float((in_the_real_world(plain.actions) - GOAL).norm()) > 0.3


def test_the_penalty_adds_to_the_score_and_not_to_the_reported_distance():
    goal = TensorDict(observation=torch.tensor([[1.0, 0.0]]), batch_size=[1])
    objective = GoalObjective(goal, ["observation"], penalty_weight=0.5)
    rollout = TensorDict(observation=torch.zeros(1, 3, 2), batch_size=[1, 3])
    penalties, done = torch.tensor([[1.0, 3.0]]), torch.tensor([[True, False]])
    assert float(objective.score(rollout, None, None, penalties)) == pytest.approx(1.0 + 0.5 * 4.0)
    assert float(objective.score(rollout, None, done, penalties)) == pytest.approx(1.0 + 0.5 * 1.0)  # none after done
    total = objective.penalty_total(penalties)
    assert objective.report(objective.score(rollout, None, None, penalties), total)["goal_distance"].item() == (
        pytest.approx(1.0)
    )


def test_a_penalty_weight_without_a_penalty_in_the_model_says_where_to_write_it():
    env = TransitionModelEnv(lambda s, a: s + STEP * a, Unbounded(2), Bounded(-1.0, 1.0, (2,)))
    planner = GradientPlanner(env, 5, optim_steps=2, penalty_weight=1.0)
    with pytest.raises(KeyError, match="penalty_key='disagreement'"):
        planner.plan(TensorDict(observation=START, goal=GOAL))
    with pytest.raises(ValueError, match="penalty_weight must be a non-negative"):
        GradientPlanner(env, 5, optim_steps=2, penalty_weight=-1.0)
