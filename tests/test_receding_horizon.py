"""RecedingHorizonPolicy: one receding-horizon loop, its plan in the TensorDict, on batched envs and collectors."""

import numpy as np
import pytest
import torch
from torchrl.data import Bounded, Unbounded
from torchrl.envs import InitTracker, StepCounter, TransformedEnv

from torchrl_grasp import GDSync, GradientPlanner, GRASPPlanner, RecedingHorizonPolicy, TransitionModelEnv
from torchrl_grasp.envs import make_env

MAX_STEP = 0.05  # WallDoor's default move per step at full action


class Free(torch.nn.Module):
    """WallDoor's motion without the wall: what the planners see."""

    def forward(self, state, action):
        return (state + MAX_STEP * action).clamp(-1, 1)


def model_env():
    return TransitionModelEnv(Free(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))


def planner(horizon=8):
    return GradientPlanner(model_env(), horizon, optim_steps=40, lr=0.1)


# Two tasks on the left of the wall, 0.3 and 0.25 away: 6 and 5 steps at full speed.
STARTS = np.array([[-0.6, -0.5], [-0.5, 0.5]], dtype=np.float32)
GOALS = np.array([[-0.6, -0.2], [-0.3, 0.35]], dtype=np.float32)


def real_env(policy, *transforms):
    env = TransformedEnv(make_env("WallDoor-v0", num_envs=2), InitTracker())
    for transform in transforms:
        env.append_transform(transform)
    return env.append_transform(policy.make_tensordict_primer())


def test_a_batch_of_two_envs_reaches_its_goals_replanning_every_few_steps():
    # To a deadline: a receding horizon of fixed length leaves slack (the plan spreads the motion
    # over all its steps, so the goal keeps receding).
    policy = RecedingHorizonPolicy(planner(), replan_every=3, ends_at=8)
    env = real_env(policy)
    start = env.reset(options={"start": STARTS, "goal": GOALS})
    rollout = env.rollout(8, policy, tensordict=start, auto_reset=False, break_when_any_done=False)
    assert rollout.batch_size == (2, 8)
    # A new plan at steps 0, 3 and 6 of each episode; an env that reached its goal was reset by
    # the rollout and starts a new episode (and a new plan) on its next step.
    step, replanned = rollout["planning", "step"], rollout["planning", "replanned"]
    assert torch.equal(replanned, step % 3 == 0), (replanned, step)
    assert torch.equal(step[:, 0], torch.zeros(2, dtype=torch.long)) and replanned[:, 3].all()
    success = rollout["next", "is_success"].squeeze(-1)
    assert success.any(-1).all()  # zero actions stay 0.22-0.27 away
    first = success.long().argmax(-1)
    reached = rollout["next", "observation"][torch.arange(2), first]
    assert ((reached - torch.as_tensor(GOALS)).norm(dim=-1) < 0.05).all()


def test_a_new_episode_replans_from_scratch_in_a_collector():
    from torchrl.collectors import Collector

    policy = RecedingHorizonPolicy(planner(), replan_every=4)
    env = real_env(policy, StepCounter(max_steps=6))  # episodes of 6 steps, then TorchRL resets
    collector = Collector(
        env, policy, frames_per_batch=24, total_frames=24, auto_register_policy_transforms=False
    )
    try:
        batch = next(iter(collector))
    finally:
        collector.shutdown()
    assert batch.batch_size == (2, 12)
    pattern = [True, False, False, False, True, False] * 2  # replans at steps 0 and 4 of each episode
    assert batch["planning", "replanned"].tolist() == [pattern, pattern]
    assert batch["planning", "step"].tolist() == [list(range(6)) * 2] * 2
    assert batch["is_init"][:, [0, 6]].all()


def test_a_fixed_deadline_shrinks_the_horizon():
    seen = []

    class Recording(GradientPlanner):
        def plan(self, tensordict, horizon=None, **kwargs):
            seen.append((horizon, kwargs.get("steps_taken")))
            return super().plan(tensordict, horizon, **kwargs)

    policy = RecedingHorizonPolicy(
        Recording(model_env(), 8, optim_steps=20, lr=0.1), replan_every=2, ends_at=7
    )
    env = real_env(policy)
    far = np.array([[-0.6, 0.5], [-0.5, -0.5]], dtype=np.float32)  # 1 away: not reached in 7 steps
    env.rollout(7, policy, tensordict=env.reset(options={"start": STARTS, "goal": far}), auto_reset=False)
    assert seen == [(7, 1), (5, 2), (3, 2), (1, 2)]  # the warm start drops the 2 actions taken


def test_the_unbatched_policy_plans_with_grasp_and_refuses_what_it_cannot_do():
    grasp = GRASPPlanner(
        model_env(), 8, optim_steps=100, lr_actions=0.05, lr_states=0.01, sync=GDSync(every=25)
    )
    policy = RecedingHorizonPolicy(grasp, replan_every=8)
    env = TransformedEnv(make_env("WallDoor-v0"), InitTracker()).append_transform(
        policy.make_tensordict_primer()
    )
    rollout = env.rollout(
        8, policy, tensordict=env.reset(options={"start": STARTS[0], "goal": GOALS[0]}), auto_reset=False
    )
    # The rollout stops at the goal, 0.3 away at 0.05 a step: 5 steps at full speed end on the
    # 0.05 radius (inside it by float32 rounding), 6 inside it.
    steps = rollout.batch_size[0]
    assert 5 <= steps <= 8 and bool(rollout["next", "is_success"][-1])
    assert rollout["planning", "replanned"].tolist() == [True] + [False] * (steps - 1)
    with pytest.raises(ValueError, match="not both"):
        RecedingHorizonPolicy(grasp, horizon=5, ends_at=10)
    with pytest.raises(ValueError, match="replan_every"):
        RecedingHorizonPolicy(grasp, replan_every=0)
    with pytest.raises(TypeError, match="GoalPlanner"):
        RecedingHorizonPolicy(lambda td: td)
