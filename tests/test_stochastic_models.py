"""Planning on a stochastic world model: TorchRL's ``DreamerEnv`` writing the *sampled* prior state.

TorchRL's Dreamer (``torchrl.trainers.helpers.models._dreamer_make_mbenv``) wires ``RSSMPrior``
with ``out_keys=["_", "_", "state", "belief"]``: the state it writes is
``prior_mean + randn_like(prior_std) * prior_std``, drawn from the global RNG at every call.
The prior here has TorchRL's default sizes (30-D state, 200-D belief) and random weights, with
the action's input weights scaled up so that the state responds to the action as a trained
prior's does (with random weights ten steps of full actions move the mean state by 0.13).

Where a plan ends is judged on the prior's mean rollout (the noise set to zero) and on the
average of 256 sampled rollouts' final states, against zero actions.
"""

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torchrl.data import Bounded, Composite, Unbounded
from torchrl.envs.model_based.dreamer import DreamerEnv
from torchrl.modules import MLP
from torchrl.modules.models.model_based import RSSMPrior
from torchrl.modules.tensordict_module.world_models import WorldModelWrapper

from torchrl_grasp import GradientPlanner, GRASPPlanner

STATE_DIM, BELIEF_DIM, ACTION_DIM, HORIZON = 30, 200, 2, 10
SAMPLED = ["_", "_", "state", "belief"]  # TorchRL's Dreamer: the sampled state
WITH_MEAN = [
    "prior_mean",
    "_",
    "state",
    "belief",
]  # the same, with the mean written where a planner can read it


def make_prior() -> RSSMPrior:
    torch.manual_seed(0)
    prior = RSSMPrior(Bounded(-1.0, 1.0, (ACTION_DIM,)), state_dim=STATE_DIM, action_dim=ACTION_DIM)
    with torch.no_grad():
        prior.action_state_projector[0].weight[:, STATE_DIM:] *= 10.0
    return prior.requires_grad_(False)


PRIOR = make_prior()


def make_env(out_keys) -> DreamerEnv:
    transition = TensorDictModule(PRIOR, in_keys=["state", "belief", "action"], out_keys=out_keys)
    reward = TensorDictModule(
        MLP(in_features=STATE_DIM + BELIEF_DIM, out_features=1, depth=1, num_cells=16),
        in_keys=["state", "belief"],
        out_keys=["reward"],
    )
    env = DreamerEnv(
        world_model=WorldModelWrapper(transition, reward),
        prior_shape=torch.Size([STATE_DIM]),
        belief_shape=torch.Size([BELIEF_DIM]),
    )
    env.observation_spec = Composite(
        state=Unbounded(STATE_DIM), belief=Unbounded(BELIEF_DIM), goal=Composite(state=Unbounded(STATE_DIM))
    )
    env.state_spec = env.observation_spec.clone()
    env.action_spec = Bounded(-1.0, 1.0, (ACTION_DIM,))
    env.reward_spec = Unbounded((1,))
    return env


@torch.no_grad()
def rollout(start, actions, samples: int = 0):
    """The final state ``[D]`` of the prior's mean rollout of ``actions`` ``[T, A]`` from ``start``,
    or (``samples`` > 0) the average final state of that many sampled rollouts."""
    count = max(samples, 1)
    generator = torch.Generator().manual_seed(99)
    state, belief = start["state"].expand(count, -1), start["belief"].expand(count, -1)
    for action in actions:
        mean, std, _, belief = PRIOR(state, belief, action.expand(count, -1))
        state = mean + torch.randn(std.shape, generator=generator) * std if samples else mean
    return state.mean(0)


def make_problem():
    """A start latent (the prior's mean rolled 5 steps from a random latent) and a goal on the state:
    where ten steps of full actions take the mean, so it is reachable."""
    generator = torch.Generator().manual_seed(1)
    state = torch.randn(1, STATE_DIM, generator=generator)
    belief = torch.randn(1, BELIEF_DIM, generator=generator).tanh()
    with torch.no_grad():
        for action in torch.rand(5, 1, ACTION_DIM, generator=generator) * 2 - 1:
            state, _, _, belief = PRIOR(state, belief, action)
    start = TensorDict(state=state[0], belief=belief[0])
    return start, rollout(start, torch.rand(HORIZON, ACTION_DIM, generator=generator).sign())


START, GOAL = make_problem()


def distances(actions):
    """Where ``actions`` end, from the goal: on the mean rollout, and on the average of sampled ones."""
    return (
        float((rollout(START, actions) - GOAL).norm()),
        float((rollout(START, actions, samples=256) - GOAL).norm()),
    )


ZERO = distances(torch.zeros(HORIZON, ACTION_DIM))

PLANNERS = {
    "sampled": lambda: GRASPPlanner(make_env(SAMPLED), HORIZON),
    "sample average": lambda: GRASPPlanner(make_env(SAMPLED), HORIZON, model_samples=8),
    "mean": lambda: GRASPPlanner(make_env(WITH_MEAN), HORIZON, mean_keys={"state": "prior_mean"}),
    "gd, sampled": lambda: GradientPlanner(make_env(SAMPLED), HORIZON, optim_steps=100, lr=0.1),
}


def task():
    return START.clone().set("goal", TensorDict(state=GOAL))


@pytest.mark.parametrize("planner", PLANNERS)
def test_plans_on_the_sampled_dreamer_env_end_at_least_twice_nearer_than_zero_actions(planner):
    mean_rollout, sampled_average = distances(PLANNERS[planner]().plan(task()).actions)
    assert mean_rollout < 0.5 * ZERO[0], (mean_rollout, ZERO)
    assert sampled_average < 0.5 * ZERO[1], (sampled_average, ZERO)


def test_the_same_seed_gives_the_same_plan_and_the_global_rng_is_left_alone():
    planner = PLANNERS["sampled"]()  # (building the env's reward MLP draws from the global RNG)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = planner.plan(task()).actions
    assert torch.equal(torch.get_rng_state(), before)
    planner.reset()
    torch.manual_seed(456)  # another global state: the plan does not depend on it
    torch.testing.assert_close(planner.plan(task()).actions, first, rtol=0, atol=0)
    torch.testing.assert_close(PLANNERS["sampled"]().plan(task()).actions, first, rtol=0, atol=0)


def test_invalid_stochastic_settings_are_refused_naming_the_fix():
    with pytest.raises(ValueError, match="model_samples must be a positive int"):
        GRASPPlanner(make_env(SAMPLED), HORIZON, model_samples=0)
    with pytest.raises(ValueError, match="not state keys"):
        GRASPPlanner(make_env(WITH_MEAN), HORIZON, mean_keys={"prior": "prior_mean"})
    planner = GRASPPlanner(make_env(SAMPLED), HORIZON, optim_steps=2, mean_keys={"state": "prior_mean"})
    with pytest.raises(
        KeyError, match="mean_keys names \\['prior_mean'\\], which the world model does not write"
    ):
        planner.plan(task())
