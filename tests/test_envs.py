"""Tests of torchrl_grasp.envs: WallDoor, ObstacleNav, their vector forms, Push-T and the TorchRL side."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from torchrl.envs.utils import check_env_specs

from torchrl_grasp import envs
from torchrl_grasp.envs import ObstacleNavEnv, ObstacleNavVectorEnv, WallDoorEnv, WallDoorVectorEnv, make_env
from torchrl_grasp.envs.point_mass import AGENT_COLOR, GOAL_COLOR, OBSTACLE_COLOR, world_to_pixel

POINT_MASS_IDS = ["WallDoor-v0", "ObstacleNav-v0"]
POINT_MASS = [(WallDoorEnv, WallDoorVectorEnv), (ObstacleNavEnv, ObstacleNavVectorEnv)]
RIGHT = np.array([1.0, 0.0], np.float32)


def push(env, action, steps):
    """Step ``env`` with one action ``steps`` times; the last observation's state."""
    for _ in range(steps):
        obs, *_ = env.step(np.asarray(action, np.float32))
    return obs["observation"]


# ---------------------------------------------------------------- WallDoor dynamics
def test_wall_stops_a_push_outside_the_door_at_its_face():
    env = WallDoorEnv()
    env.reset(options={"start": [-0.5, -0.5], "goal": [0.5, -0.5]})
    assert push(env, RIGHT, 30).tolist() == np.float32([-0.025, -0.5]).tolist()


def test_door_lets_a_straight_push_through():
    env = WallDoorEnv()
    env.reset(options={"start": [-0.5, 0.5], "goal": [0.9, 0.5]})
    assert push(env, RIGHT, 20)[0] == pytest.approx(0.5)


def test_wall_keeps_the_motion_along_its_face():
    env = WallDoorEnv()
    env.reset(options={"start": [-0.04, -0.5], "goal": [0.5, 0.5]})
    np.testing.assert_allclose(push(env, [1.0, 1.0], 1), [-0.025, -0.45], rtol=1e-6)


def test_a_step_longer_than_the_wall_is_thick_cannot_jump_it():
    env = WallDoorEnv(max_step=0.3)
    env.reset(options={"start": [-0.1, -0.5], "goal": [0.5, -0.5]})
    assert push(env, RIGHT, 1)[0] == pytest.approx(-0.025)


def test_door_edges_stop_a_point_inside_the_door():
    env = WallDoorEnv()  # door from y = 0.4 to 0.6
    env.reset(options={"start": [0.0, 0.55], "goal": [0.5, 0.5]})
    assert push(env, [0.0, 1.0], 3).tolist() == [0.0, pytest.approx(0.6)]


@pytest.mark.parametrize("env_class, vector_class", POINT_MASS)
def test_the_point_never_ends_inside_an_obstacle_under_random_actions(env_class, vector_class):
    vector = vector_class(256, autoreset_mode=AutoresetMode.DISABLED, max_step=0.08)
    obs, _ = vector.reset(seed=0)
    rng = np.random.default_rng(0)
    task = vector.task
    for step in range(150):
        # mostly saturated actions, to press against walls and discs
        actions = np.clip(rng.normal(scale=2.0, size=(256, 2)), -1, 1).astype(np.float32)
        obs, *_ = vector.step(actions)
        if step % 50 == 49:  # fresh random starts now and then
            obs, _ = vector.reset()
        assert not task.blocked(vector.positions).any()
        assert not task.blocked(obs["observation"].astype(np.float64)).any()
        assert (np.abs(obs["observation"]) <= 1).all()
    assert (obs["observation"] == vector.positions).all()  # observations are the states exactly


def test_obstacle_nav_slides_around_a_disc():
    env = ObstacleNavEnv()
    env.reset(options={"start": [-0.6, 0.0], "goal": [0.6, 0.0]})
    state = push(env, [1.0, 0.2], 12)
    assert (
        state[0] > -0.25 and np.hypot(state[0] + 0.25, state[1]) >= 0.2
    )  # past the disc's centre, outside it


# ---------------------------------------------------------------- reset, reward, success, rendering
@pytest.mark.parametrize("env_id", POINT_MASS_IDS)
def test_reset_options_round_trip(env_id):
    env = gym.make(env_id)
    start, goal = np.array([-0.9, 0.123], np.float32), np.array([0.7, -0.31], np.float32)
    obs, info = env.reset(seed=0, options={"start": start, "goal": goal})
    assert obs["observation"].tolist() == start.tolist() and obs["goal"].tolist() == goal.tolist()
    assert obs["observation"].dtype == obs["goal"].dtype == np.float32 and not info["is_success"]
    obs, _ = env.reset(options={"goal": goal})  # the start is drawn, the goal kept
    assert obs["goal"].tolist() == goal.tolist() and obs["observation"][0] < 0


@pytest.mark.parametrize(
    "env_class, options, message",
    [
        (WallDoorEnv, {"start": [0.1, 0.2, 0.3]}, "shape"),
        (WallDoorEnv, {"goal": [1.5, 0.0]}, "arena"),
        (WallDoorEnv, {"start": [0.0, -0.5]}, "obstacle"),
        (ObstacleNavEnv, {"goal": [-0.25, 0.1]}, "obstacle"),
        (ObstacleNavEnv, {"start": [np.nan, 0.0]}, "finite"),
        (ObstacleNavEnv, {"begin": [0.0, 0.0]}, "Unknown"),
    ],
)
def test_invalid_reset_options_raise(env_class, options, message):
    with pytest.raises(ValueError, match=message):
        env_class().reset(options=options)


@pytest.mark.parametrize("env_id", POINT_MASS_IDS)
def test_random_resets_put_start_and_goal_on_opposite_sides_with_the_line_blocked(env_id):
    env = gym.make(env_id)
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        start, goal = obs["observation"], obs["goal"]
        assert start[0] * goal[0] < 0 and not env.unwrapped.segment_is_free(start, goal)[0]
    first, _ = env.reset(seed=3)
    again, _ = env.reset(seed=3)
    assert first["observation"].tolist() == again["observation"].tolist()


def test_reward_is_minus_the_distance_and_success_terminates():
    env = gym.make("WallDoor-v0", success_threshold=0.1)
    env.reset(options={"start": [0.5, 0.0], "goal": [0.78, 0.0]})
    for expected_reward in (-0.23, -0.18, -0.13):
        _, reward, terminated, truncated, info = env.step(RIGHT)
        assert (
            reward == pytest.approx(expected_reward, abs=1e-6) and not terminated and not info["is_success"]
        )
    _, reward, terminated, truncated, info = env.step(RIGHT)
    assert terminated and info["is_success"] and not truncated and reward == pytest.approx(-0.08, abs=1e-6)


def test_episodes_are_truncated_after_max_episode_steps():
    env = gym.make("ObstacleNav-v0", max_episode_steps=5)
    env.reset(seed=0)
    flags = [env.step(np.zeros(2, np.float32))[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]


@pytest.mark.parametrize("env_class", [WallDoorEnv, ObstacleNavEnv])
def test_render_draws_agent_goal_and_obstacles(env_class):
    env = env_class(render_mode="rgb_array")
    start, goal = np.array([-0.7, -0.8]), np.array([0.8, 0.75])
    env.reset(options={"start": start, "goal": goal})
    frame = env.render()
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    for point, color in ((start, AGENT_COLOR), (goal, GOAL_COLOR)):
        row, col = world_to_pixel(point, 64)
        assert frame[row, col].tolist() == color.tolist()
    obstacle = [0.0, -0.5] if env_class is WallDoorEnv else [-0.25, 0.0]
    row, col = world_to_pixel(np.array(obstacle), 64)
    assert frame[row, col].tolist() == OBSTACLE_COLOR.tolist()
    push(env, RIGHT, 4)  # the agent's colour follows it
    row, col = world_to_pixel(env.unwrapped._position, 64)
    assert env.render()[row, col].tolist() == AGENT_COLOR.tolist()
    large = env_class(render_mode="rgb_array", render_size=96)
    large.reset(seed=0)
    assert large.render().shape == (96, 96, 3)
    assert env_class().render() is None  # no render_mode


# ---------------------------------------------------------------- vector envs
@pytest.mark.parametrize("env_class, vector_class", POINT_MASS)
def test_vector_env_matches_the_single_env(env_class, vector_class):
    count, rng = 8, np.random.default_rng(0)
    vector = vector_class(count, autoreset_mode=AutoresetMode.DISABLED)
    starts, goals = vector.task.sample_start_goal(rng, count)
    vector_obs, _ = vector.reset(options={"start": starts, "goal": goals})
    singles = [env_class() for _ in range(count)]
    for env, start, goal in zip(singles, starts, goals):
        env.reset(options={"start": start, "goal": goal})
    actions = rng.uniform(-1, 1, size=(60, count, 2)).astype(np.float32)
    for step_actions in actions:
        vector_obs, vector_reward, vector_terminated, _, _ = vector.step(step_actions)
        outputs = [env.step(action) for env, action in zip(singles, step_actions)]
        single_states = np.stack([out[0]["observation"] for out in outputs])
        assert (vector_obs["observation"] == single_states).all()
        np.testing.assert_array_equal(vector_reward, [out[1] for out in outputs])
        np.testing.assert_array_equal(vector_terminated, [out[2] for out in outputs])


def test_make_vec_uses_the_numpy_vector_env_and_autoresets_on_the_next_step():
    vector = gym.make_vec(
        "WallDoor-v0", num_envs=2, vectorization_mode="vector_entry_point", success_threshold=0.1
    )
    assert isinstance(vector, WallDoorVectorEnv) and vector.max_episode_steps == 200
    obs, _ = vector.reset(
        seed=0, options={"start": [[0.5, 0.0], [-0.5, -0.5]], "goal": [[0.6, 0.0], [0.5, -0.5]]}
    )
    obs, reward, terminated, _, info = vector.step(np.array([[1.0, 0.0], [0.0, 0.0]], np.float32))
    assert terminated.tolist() == [True, False] and info["is_success"].tolist() == [True, False]
    obs, reward, terminated, _, _ = vector.step(np.zeros((2, 2), np.float32))
    assert reward[0] == 0.0 and not terminated[0]  # the finished env restarted from a random pair
    assert obs["observation"][0].tolist() != [0.55, 0.0] and obs["observation"][1].tolist() == [-0.5, -0.5]


def test_vector_env_partial_reset_with_a_mask():
    vector = ObstacleNavVectorEnv(3, autoreset_mode="Disabled")
    obs, _ = vector.reset(seed=0)
    mask = np.array([False, True, False])
    new, _ = vector.reset(options={"reset_mask": mask, "start": [-0.9, 0.9], "goal": [0.9, -0.9]})
    assert (new["observation"][~mask] == obs["observation"][~mask]).all()
    assert new["observation"][1].tolist() == np.float32([-0.9, 0.9]).tolist()
    assert new["goal"][1].tolist() == np.float32([0.9, -0.9]).tolist()


# ---------------------------------------------------------------- sample_task
@pytest.mark.parametrize("env_class", [WallDoorEnv, ObstacleNavEnv])
@pytest.mark.parametrize("horizon", [20, 45])
def test_sample_task_needs_about_horizon_steps_around_the_obstacles(env_class, horizon):
    env = env_class()
    rng = np.random.default_rng(horizon)
    for _ in range(2):
        start, goal = env.sample_task(rng, horizon)
        assert start.dtype == np.float32 and start[0] * goal[0] < 0
        assert not env.blocked(np.stack([start, goal])).any()
        assert not env.segment_is_free(start, goal)[0]  # the straight line is blocked
        length = env.path_lengths(start, goal[None])[0]
        assert abs(length / (horizon * env.max_step) - 1) <= 0.1
        assert length > np.linalg.norm(goal - start) + 1e-3


def test_sample_task_reaches_horizon_100_with_a_smaller_step_and_refuses_the_impossible():
    start, goal = WallDoorEnv(max_step=0.025).sample_task(0, 100)
    assert WallDoorEnv(max_step=0.025).path_lengths(start, goal[None])[0] == pytest.approx(2.5, rel=0.1)
    with pytest.raises(ValueError, match="Lower max_step"):
        WallDoorEnv().sample_task(0, 100)


def test_walldoor_path_length_goes_through_the_door_corners():
    env = WallDoorEnv()  # door y in [0.4, 0.6], faces at x = +-0.025
    lengths = env.path_lengths(np.array([-0.5, -0.5]), np.array([[0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]))
    below = 2 * np.hypot(0.475, 0.9) + 0.05  # via (-0.025, 0.4) and (0.025, 0.4)
    across = np.hypot(0.475, 0.9) + np.hypot(0.525, 0.1)  # via (-0.025, 0.4)
    np.testing.assert_allclose(lengths, [below, across, 1.0])  # the last one is visible


def test_obstacle_path_length_matches_the_way_around_one_disc():
    env = ObstacleNavEnv(discs=[(0.0, 0.0, 0.5)])
    exact = 2 * np.sqrt(0.9**2 - 0.5**2) + 0.5 * (np.pi - 2 * np.arccos(0.5 / 0.9))
    estimate = env.path_lengths(np.array([-0.9, 0.0]), np.array([[0.9, 0.0], [0.0, 0.9]]))
    assert estimate[0] == pytest.approx(exact, rel=0.03)
    assert estimate[1] == pytest.approx(np.hypot(0.9, 0.9))  # visible: straight


# ---------------------------------------------------------------- TorchRL
@pytest.mark.parametrize("env_id", POINT_MASS_IDS)
@pytest.mark.parametrize("num_envs", [None, 3])
def test_make_env_passes_check_env_specs_and_exposes_goal_and_success(env_id, num_envs):
    env = make_env(env_id, num_envs=num_envs, max_episode_steps=20)
    check_env_specs(env)
    batch = () if num_envs is None else (num_envs,)
    start, goal = [-0.8, -0.8], [0.8, 0.8]
    td = env.reset(options={"start": start, "goal": goal})
    assert td["observation"].tolist() == torch.tensor(start).expand(*batch, 2).tolist()
    assert td["goal"].tolist() == torch.tensor(goal).expand(*batch, 2).tolist()
    rollout = env.rollout(30, tensordict=td, auto_reset=False, break_when_any_done=False)
    for key in (
        "observation",
        "goal",
        ("next", "observation"),
        ("next", "goal"),
        ("next", "reward"),
        "action",
    ):
        assert rollout[key].dtype == torch.float32
    assert rollout["next", "is_success"].dtype == torch.bool and rollout["next", "is_success"].shape == (
        *batch,
        30,
    )
    assert rollout["next", "truncated"].any()  # max_episode_steps=20 in 30 steps
    if num_envs is not None:  # TorchRL reset the truncated envs itself, from random pairs
        assert (rollout["observation"][:, 20] != rollout["next", "observation"][:, 19]).any()


def test_make_env_reports_success_through_the_door():
    env = make_env("WallDoor-v0")
    td = env.reset(options={"start": [-0.5, 0.5], "goal": [0.48, 0.5]})
    rollout = env.rollout(
        30, lambda td: td.set("action", torch.tensor([1.0, 0.0])), tensordict=td, auto_reset=False
    )
    assert rollout["next", "is_success"][-1] and rollout["next", "terminated"][-1]
    assert not rollout["next", "is_success"][:-1].any() and len(rollout) == 19


def test_importing_twice_keeps_one_registration():
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium warns when an id is registered again
        importlib.reload(envs)
    assert gym.spec("WallDoor-v0").vector_entry_point == "torchrl_grasp.envs.walldoor:WallDoorVectorEnv"


# ---------------------------------------------------------------- Push-T
@pytest.fixture
def pusht():
    pytest.importorskip("gym_pusht")
    return gym.make("PushTState-v0", render_mode="rgb_array")


def test_pusht_start_states_round_trip_exactly(pusht):
    rng = np.random.default_rng(0)
    for seed in range(10):
        obs, _ = pusht.reset(seed=seed)
        for _ in range(int(rng.integers(0, 8))):  # mid-trajectory states, with velocity
            obs, *_ = pusht.step(rng.uniform(-1, 1, 2).astype(np.float32))
        state = obs["observation"]
        again, _ = pusht.reset(options={"start": state, "goal": obs["goal"]})
        assert (
            again["observation"].tolist() == state.tolist() and again["goal"].tolist() == obs["goal"].tolist()
        )
        assert state.shape == (7,) and state.dtype == np.float32
    start = np.array([100.0, 120.0, 300.0, 280.0, 5.5, 10.0, -20.0], np.float32)
    assert pusht.reset(options={"start": start})[0]["observation"].tolist() == start.tolist()


def test_pusht_goal_can_be_moved_and_sets_success(pusht):
    start = np.array([100.0, 100.0, 300.0, 320.0, 1.0, 0.0, 0.0], np.float32)
    obs, info = pusht.reset(options={"start": start})
    assert not info["is_success"] and obs["goal"][2:5].tolist() == pytest.approx([256.0, 256.0, np.pi / 4])
    obs, info = pusht.reset(options={"start": start, "goal": start})  # the block already at the goal
    assert info["is_success"] and info["coverage"] == pytest.approx(1.0)
    _, reward, terminated, _, info = pusht.step(np.zeros(2, np.float32))
    assert terminated and info["is_success"] and reward == 1.0
    frame = pusht.render()
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8


def test_pusht_rejects_invalid_starts(pusht):
    with pytest.raises(ValueError, match="shape"):
        pusht.reset(options={"start": np.zeros(5)})
    with pytest.raises(ValueError, match="inside the block"):
        pusht.reset(options={"start": [300.0, 300.0, 300.0, 300.0, 0.0, 0.0, 0.0]})
    with pytest.raises(ValueError, match="lie in"):
        pusht.reset(options={"goal": [600.0, 300.0, 300.0, 300.0, 0.0, 0.0, 0.0]})


def test_pusht_make_env_passes_check_env_specs(pusht):
    env = make_env("PushTState-v0")
    check_env_specs(env)
    rollout = env.rollout(5)
    assert (
        rollout["next", "observation"].shape == (5, 7)
        and rollout["next", "observation"].dtype == torch.float32
    )
    assert rollout["goal"].shape == (5, 7) and rollout["next", "is_success"].dtype == torch.bool


@pytest.mark.parametrize("horizon", [20, 40])
def test_pusht_tasks_are_reached_by_the_scripted_pusher_and_not_solved_at_the_start(pusht, horizon):
    for seed in range(3):
        states, actions = pusht.unwrapped.sample_demonstration(np.random.default_rng(seed), horizon)
        start, goal = pusht.unwrapped.sample_task(np.random.default_rng(seed), horizon)
        assert states.shape == (horizon + 1, 7) and actions.shape == (horizon, 2)
        assert start.tolist() == states[0].tolist() and goal.tolist() == states[-1].tolist()
        _, info = pusht.reset(options={"start": start, "goal": goal})
        assert not info["is_success"] and info["coverage"] <= 0.8
        for action in actions:  # replaying the pusher's actions reaches the goal in `horizon` steps
            obs, _, _, _, info = pusht.step(action)
        assert obs["observation"].tolist() == goal.tolist() and info["is_success"]


def test_pusht_pusher_moves_the_block_far_more_often_than_random_actions(pusht):
    from torchrl_grasp.envs.pusht_pushing import BlockPushingPolicy

    rng = np.random.default_rng(0)
    policies = {
        "pusher": BlockPushingPolicy(rng),
        "random": lambda state: rng.uniform(-1, 1, 2).astype(np.float32),
    }
    moved = {}
    for name, policy in policies.items():
        pusht.reset(seed=0)
        steps = 0
        for episode in range(4):
            obs, _ = pusht.reset(seed=episode)
            for _ in range(50):
                before = obs["observation"][2:4]
                obs, *_ = pusht.step(policy(obs["observation"]))
                steps += bool(np.abs(obs["observation"][2:4] - before).max() > 0.5)  # pixels
        moved[name] = steps / 200
    assert moved["pusher"] > 0.2 and moved["pusher"] > 10 * moved["random"]  # measured: 0.245 and 0.01


def test_pusht_normalized_observation_is_the_normalized_state():
    pytest.importorskip("gym_pusht")
    from torchrl_grasp.envs.pusht_coordinates import normalize_state

    pixels, normalized = envs.PushTStateEnv(), envs.PushTStateEnv(observation_format="normalized")
    start = np.array([100.0, 120.0, 300.0, 280.0, 5.5, 10.0, -20.0], np.float32)
    goal = np.array([200.0, 220.0, 250.0, 260.0, 0.5, 0.0, 0.0], np.float32)
    for _ in range(2):
        obs_pixels, _ = pixels.reset(options={"start": start, "goal": goal})
        obs_normalized, _ = normalized.reset(options={"start": start, "goal": goal})
        for key in ("observation", "goal"):
            assert obs_normalized[key].shape == (8,) and normalized.observation_space[key].shape == (8,)
            assert obs_normalized[key] == pytest.approx(normalize_state(obs_pixels[key]), abs=1e-6)
        start = pixels.step(np.array([0.5, -1.0], np.float32))[0]["observation"]
        normalized.step(np.array([0.5, -1.0], np.float32))
    with pytest.raises(ValueError, match="observation_format"):
        envs.PushTStateEnv(observation_format="meters")


def test_pusht_normalized_block_distance_is_the_rms_distance_between_the_two_ts():
    from torchrl_grasp.envs.pusht_coordinates import POSITION_SCALE, normalize_state, physical_state, rotate
    from torchrl_grasp.envs.pusht_pushing import points_in_t

    rng = np.random.default_rng(0)
    points = points_in_t(rng, 200_000)  # the T's area, in its body frame
    for _ in range(5):
        poses = np.concatenate([rng.uniform(100, 400, (2, 2)), rng.uniform(0, 2 * np.pi, (2, 1))], axis=-1)
        states = np.concatenate([np.zeros((2, 2)), poses, np.zeros((2, 2))], axis=-1)
        placed = [pose[:2] + rotate(points, np.full(len(points), pose[2])) for pose in poses]
        rms = np.sqrt(((placed[0] - placed[1]) ** 2).sum(-1).mean()) / POSITION_SCALE
        encoded = normalize_state(states)[:, 2:6]
        assert np.linalg.norm(encoded[0] - encoded[1]) == pytest.approx(rms, rel=0.01)
        assert physical_state(normalize_state(states)) == pytest.approx(states, abs=1e-9)
