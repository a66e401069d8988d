"""GRASP on TorchRL's own ``DreamerEnv``, built from its ``RSSMPrior`` as TorchRL's Dreamer builds it.

The prior has random weights: the point is that the planner drives TorchRL's Dreamer
imagination model end to end (two state keys ``state`` and ``belief``, a ``GRUCell`` that
accepts only 1-D batches, a ``WorldModelWrapper`` that also writes a reward) and reaches
latent goals that are reachable by construction, nearer than doing nothing does.
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

from torchrl_grasp import GRASPPlanner, PlanResult

STATE_DIM, BELIEF_DIM, ACTION_DIM, HIDDEN_DIM = 8, 32, 2, 32
HORIZON = 10
ATOL = 1e-5


def latent_spec() -> Composite:
    return Composite(state=Unbounded(STATE_DIM), belief=Unbounded(BELIEF_DIM))


def make_prior(seed: int = 0) -> RSSMPrior:
    torch.manual_seed(seed)
    prior = RSSMPrior(
        Bounded(-1.0, 1.0, (ACTION_DIM,)),
        hidden_dim=HIDDEN_DIM,
        rnn_hidden_dim=BELIEF_DIM,
        state_dim=STATE_DIM,
        action_dim=ACTION_DIM,
    )
    return prior.requires_grad_(False)


def make_env(prior: RSSMPrior) -> DreamerEnv:
    """The model-based env of ``torchrl.trainers.helpers.models._dreamer_make_mbenv``, with one change.

    ``RSSMPrior.forward`` returns ``(prior_mean, prior_std, sampled_state, belief)`` and Dreamer
    writes the *sampled* state (``out_keys=["_", "_", "state", "belief"]``), which draws from the
    global RNG at every call. Planning wants a deterministic transition, so here ``state`` is the
    prior *mean*.
    """
    transition_model = TensorDictModule(
        prior, in_keys=["state", "belief", "action"], out_keys=["state", "_", "_", "belief"]
    )
    reward_model = TensorDictModule(
        MLP(in_features=STATE_DIM + BELIEF_DIM, out_features=1, depth=1, num_cells=16),
        in_keys=["state", "belief"],
        out_keys=["reward"],
    )
    env = DreamerEnv(
        world_model=WorldModelWrapper(transition_model, reward_model),
        prior_shape=torch.Size([STATE_DIM]),
        belief_shape=torch.Size([BELIEF_DIM]),
    )
    # "goal" is an observation so that ModelBasedEnvBase._step (which keeps only the spec's
    # keys of the world model's output) carries it from step to step in an MPC rollout.
    env.observation_spec = Composite(state=Unbounded(STATE_DIM), belief=Unbounded(BELIEF_DIM), goal=latent_spec())
    env.state_spec = env.observation_spec.clone()
    env.action_spec = Bounded(-1.0, 1.0, (ACTION_DIM,))
    env.reward_spec = Unbounded((1,))
    return env


@torch.no_grad()
def serial_rollout(prior: RSSMPrior, state, belief, actions):
    """The prior-mean rollout ``[*B, T+1, D]`` of ``actions`` ``[*B, T, A]``, one step at a time.

    The GRUCell takes 1-D batches only, so the batch is flattened here too.
    """
    batch = state.shape[:-1]
    state, belief = state.reshape(-1, STATE_DIM), belief.reshape(-1, BELIEF_DIM)
    actions = actions.reshape(-1, *actions.shape[-2:])
    states, beliefs = [state], [belief]
    for t in range(actions.shape[-2]):
        state, _, _, belief = prior(state, belief, actions[:, t])
        states.append(state)
        beliefs.append(belief)
    states = torch.stack(states, -2).reshape(*batch, -1, STATE_DIM)
    beliefs = torch.stack(beliefs, -2).reshape(*batch, -1, BELIEF_DIM)
    return states, beliefs


def make_problem(prior: RSSMPrior, batch: tuple[int, ...], seed: int):
    """A start latent (the prior rolled a few steps from a random latent) and a goal latent
    ``HORIZON`` steps of random in-bound actions away from it, so the goal is reachable."""
    gen = torch.Generator().manual_seed(seed)

    def actions(steps):
        return torch.rand(*batch, steps, ACTION_DIM, generator=gen) * 2 - 1

    state = torch.randn(*batch, STATE_DIM, generator=gen)
    belief = torch.randn(*batch, BELIEF_DIM, generator=gen).tanh()
    states, beliefs = serial_rollout(prior, state, belief, actions(5))
    start = TensorDict(state=states[..., -1, :], belief=beliefs[..., -1, :], batch_size=batch)
    states, beliefs = serial_rollout(prior, start["state"], start["belief"], actions(HORIZON))
    goal = TensorDict(state=states[..., -1, :], belief=beliefs[..., -1, :], batch_size=batch)
    return start, goal


def distance(prior, start, goal, actions):
    """Distance of the serial rollout's last latent to ``goal``, over the goal's keys ``[*B]``."""
    states, beliefs = serial_rollout(prior, start["state"], start["belief"], actions)
    final = {"state": states[..., -1, :], "belief": beliefs[..., -1, :]}
    return sum((final[key] - goal[key]).square().sum(-1) for key in goal.keys()).sqrt()


def zero_actions(batch):
    return torch.zeros(*batch, HORIZON, ACTION_DIM)


def make_planner(env, **kwargs):
    options = dict(optim_steps=150, num_restarts=2, generator=torch.Generator().manual_seed(0))
    options.update(kwargs)
    return GRASPPlanner(env, planning_horizon=HORIZON, **options)


def check_result(prior, start, goal, result: PlanResult, batch):
    """Shapes, bounds, and that ``result.rollout`` / ``goal_distance`` are the prior's true serial rollout."""
    assert result.actions.shape == (*batch, HORIZON, ACTION_DIM)
    assert result.rollout.batch_size == (*batch, HORIZON + 1)
    assert result.goal_distance.shape == batch
    assert torch.isfinite(result.actions).all()
    assert result.actions.abs().max() <= 1.0
    states, beliefs = serial_rollout(prior, start["state"], start["belief"], result.actions)
    torch.testing.assert_close(result.rollout["state"], states, atol=ATOL, rtol=0)
    torch.testing.assert_close(result.rollout["belief"], beliefs, atol=ATOL, rtol=0)
    torch.testing.assert_close(result.goal_distance, distance(prior, start, goal, result.actions), atol=ATOL, rtol=0)


def test_state_keys_inferred_from_world_model_wrapper():
    env = make_env(make_prior())
    assert make_planner(env).state_keys == ["state", "belief"]


def test_plans_to_reachable_latent_goal():
    prior = make_prior()
    env = make_env(prior)
    start, goal = make_problem(prior, (), seed=1)
    baseline = distance(prior, start, goal, zero_actions(()))
    planner = make_planner(env)
    result = planner.plan(start.set("goal", goal))
    check_result(prior, start, goal, result, torch.Size([]))
    # Nearer than doing nothing, by a wide margin (the goal is reachable by construction).
    assert result.goal_distance < 0.25 * baseline, (result.goal_distance, baseline)


def test_plans_batch_of_starts_to_partial_goal():
    """Batch ``[3]`` of starts (flattened with the time steps into the GRUCell's 1-D batch),
    goal on ``state`` only: the belief is free, only the state enters the goal term."""
    prior = make_prior()
    env = make_env(prior)
    batch = torch.Size([3])
    start, full_goal = make_problem(prior, tuple(batch), seed=2)
    goal = full_goal.select("state")
    baseline = distance(prior, start, goal, zero_actions(batch))
    planner = make_planner(env)
    result = planner.plan(start.clone().set("goal", goal))
    check_result(prior, start, goal, result, batch)
    assert (result.goal_distance < 0.5 * baseline).all(), (result.goal_distance, baseline)


def test_plan_is_deterministic_despite_global_rng():
    """The transition writes the prior mean, and the planner draws only from its generator."""
    prior = make_prior()
    env = make_env(prior)
    start, goal = make_problem(prior, (), seed=1)
    torch.manual_seed(123)
    first = make_planner(env, optim_steps=50).plan(start.set("goal", goal))
    torch.manual_seed(456)
    second = make_planner(env, optim_steps=50).plan(start.set("goal", goal))
    torch.testing.assert_close(first.actions, second.actions, atol=0, rtol=0)


def test_mpc_rollout_in_dreamer_env():
    """``env.rollout`` with GRASP as the policy: DreamerEnv carries the goal (an observation)
    from step to step, and the MPC loop's trajectory is the prior's serial rollout of its actions."""
    prior = make_prior()
    env = make_env(prior)
    start, goal = make_problem(prior, (), seed=1)
    planner = make_planner(env, optim_steps=60, num_restarts=1)
    steps = 4
    tensordict = env.reset(start.clone().set("goal", goal))
    with torch.no_grad():  # as a collector would call it
        trajectory = env.rollout(steps, planner, tensordict=tensordict, auto_reset=False)
    assert trajectory.batch_size == (steps,)
    torch.testing.assert_close(trajectory["next", "goal"], goal.expand(steps), atol=0, rtol=0)
    actions = trajectory["action"]
    assert actions.abs().max() <= 1.0
    states, beliefs = serial_rollout(prior, start["state"], start["belief"], actions)
    torch.testing.assert_close(trajectory["next", "state"], states[1:], atol=ATOL, rtol=0)
    torch.testing.assert_close(trajectory["next", "belief"], beliefs[1:], atol=ATOL, rtol=0)
    assert trajectory["next", "reward"].shape == (steps, 1)
    # Mid-way through the MPC loop, the remaining steps still plan nearer than doing nothing.
    current = TensorDict(state=states[-1], belief=beliefs[-1])
    result = planner.plan(current.clone().set("goal", goal))
    assert result.goal_distance < distance(prior, current, goal, zero_actions(())), result.goal_distance


if __name__ == "__main__":
    pytest.main([__file__, "-q"])


@torch.no_grad()
def predicted_return(env: DreamerEnv, start, actions):
    """Sum of the reward head over the prior-mean rollout of ``actions``, ``[*B]``."""
    prior = env.world_model[0].module
    states, beliefs = serial_rollout(prior, start["state"], start["belief"], actions)
    reward_head = env.world_model[1].module
    return reward_head(torch.cat([states[..., 1:, :], beliefs[..., 1:, :]], -1)).squeeze(-1).sum(-1)


def test_plans_by_reward_without_a_goal():
    """With ``reward_key="reward"`` and no goal, GRASP raises the reward head's return over the
    prior's rollout, against zero actions and against the best of 64 random action sequences."""
    prior = make_prior()
    env = make_env(prior)
    start, _ = make_problem(prior, (2,), seed=3)
    planner = make_planner(env, reward_key="reward")  # the method's learning rates suit unit-scale latents
    result = planner.plan(start.clone())
    assert result.goal_distance is None
    torch.testing.assert_close(result.predicted_return, predicted_return(env, start, result.actions), atol=1e-4, rtol=0)
    zero = predicted_return(env, start, zero_actions((2,)))
    generator = torch.Generator().manual_seed(0)
    random_actions = torch.rand(64, 2, HORIZON, ACTION_DIM, generator=generator) * 2 - 1
    random_best = torch.stack([predicted_return(env, start, a) for a in random_actions]).amax(0)
    assert (result.predicted_return > zero).all(), (result.predicted_return, zero)
    assert (result.predicted_return >= random_best).all(), (result.predicted_return, random_best)
