"""The generic path from a gymnasium goal env to a planner: MuJoCo's PointMaze, an env this package did not build."""

import dataclasses

import numpy as np
import pytest
import torch
from torchrl.envs.utils import check_env_specs

from torchrl_grasp import GRASPPlanner
from torchrl_grasp.benchmark.episodes import Task, run_episode
from torchrl_grasp.benchmark.views import StateView
from torchrl_grasp.envs.goal_env import EnvLayout, make_goal_env
from torchrl_grasp.planners import GoalICEMPlanner
from torchrl_grasp.world_models import goal_env_model, load_or_train
from torchrl_grasp.world_models.data import CollectionConfig
from torchrl_grasp.world_models.mlp import NetworkConfig
from torchrl_grasp.world_models.training import TrainingConfig

gymnasium_robotics = pytest.importorskip("gymnasium_robotics", reason="pip install -e '.[robotics]'")

import gymnasium

gymnasium.register_envs(gymnasium_robotics)
UMAZE = "PointMaze_UMaze-v3"
LAYOUT = EnvLayout(frame_skip=2)


def test_the_env_holds_the_state_the_goal_and_the_env_s_own_success():
    env = make_goal_env(UMAZE, LAYOUT)
    check_env_specs(env)
    verdicts = []
    for seed, goal_cell in enumerate([[1, 1], [1, 2]] * 2):  # in the start's cell (within 0.45), or the next one
        td = env.reset(seed=seed, options={"reset_cell": np.array([1, 1]), "goal_cell": np.array(goal_cell)})
        rollout = env.rollout(3, lambda td: td.set("action", torch.zeros(2)), tensordict=td, auto_reset=False)
        distance = (rollout["next", "achieved_goal"] - rollout["next", "goal", "achieved_goal"]).norm(dim=-1)
        assert torch.equal(rollout["next", "is_success"], distance <= 0.45)  # the env's own test, read as is
        verdicts += rollout["next", "is_success"].tolist()
    assert any(verdicts) and not all(verdicts)
    assert rollout["next", "observation"].dtype == torch.float32
    assert torch.equal(rollout["next", "achieved_goal"], rollout["next", "observation"][..., :2])


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """A small PointMaze model through the generic path (about 10 s)."""
    config = dataclasses.replace(
        goal_env_model(UMAZE, LAYOUT),
        num_envs=8,
        collection=CollectionConfig(num_frames=8_000, frames_per_batch=2_000, max_steps_per_trajectory=100),
        network=NetworkConfig(hidden_size=64, num_layers=2),
        training=TrainingConfig(steps=1_500, batch_size=256, lr=3e-3, input_noise_std=1.0),
    )
    return load_or_train(config, cache_directory=tmp_path_factory.mktemp("cache"), progress=False)


def corridor_task(seed):
    """One cell along the U's top corridor: about 1 apart, out of the 0.45 radius from the start."""
    return Task({"seed": seed, "options": {"reset_cell": np.array([1, 1]), "goal_cell": np.array([1, 2])}}, None, None)


PLANNERS = {
    "grasp": lambda env: GRASPPlanner(env, 20, optim_steps=100, lr_states=0.01, lr_actions=0.05),
    "icem": lambda env: GoalICEMPlanner(env, 20, optim_steps=10, num_candidates=100, top_k=10, init_std=1.0),
}


@pytest.mark.parametrize("name", PLANNERS)
def test_planners_on_the_learned_model_reach_goals_in_the_real_maze(learned, name):
    assert learned.env.model_state_keys == ["achieved_goal", "observation"]
    real_env, view = learned.real_env(), StateView.of(learned)

    def still():
        return GoalICEMPlanner(learned.env, 20, optim_steps=1, num_candidates=2, top_k=2, init_std=1e-6)

    reached = [run_episode(real_env, lambda: PLANNERS[name](learned.env), corridor_task(s), 20, view=view).success for s in range(6)]
    stayed = [run_episode(real_env, still, corridor_task(s), 20, view=view).success for s in range(6)]
    assert sum(reached) >= 5 and sum(stayed) == 0, (reached, stayed)


def test_a_flat_mujoco_arm_reads_as_a_goal_env():
    """ReacherGoal-v0: Reacher-v5's fingertip (read from its flat observation) is the achieved goal."""
    gym_env = gymnasium.make("ReacherGoal-v0")
    observation, _ = gym_env.reset(seed=3)
    reacher = gym_env.unwrapped
    assert np.allclose(observation["achieved_goal"], reacher.get_body_com("fingertip")[:2], atol=1e-6)
    assert np.allclose(observation["desired_goal"], reacher.get_body_com("target")[:2], atol=1e-6)
    env = make_goal_env("ReacherGoal-v0", EnvLayout())
    check_env_specs(env)
    td = env.reset(seed=3)
    assert torch.allclose(td["achieved_goal"], torch.as_tensor(observation["achieved_goal"], dtype=torch.float32))
    rollout = env.rollout(5, auto_reset=False, tensordict=td)
    distance = (rollout["next", "achieved_goal"] - rollout["next", "goal", "achieved_goal"]).norm(dim=-1)
    assert torch.equal(rollout["next", "is_success"], distance <= 0.02)
