"""Learned world models: collection, training, validation, the cache, and planning with the result.

The "real" env here is :class:`HardWallEnv`, a batched TorchRL env defined below: a point in
``[-1, 1]^2`` with a wall at ``|x| < 0.02`` that has a door at ``|y| < 0.15``; a move into the
wall outside the door stops at the wall's face, a discontinuity the model must learn.
"""

import dataclasses

import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded, Composite, Unbounded
from torchrl.envs import EnvBase
from torchrl.envs.utils import check_env_specs

from torchrl_grasp import GDSync, GRASPPlanner
from torchrl_grasp.envs import WallDoorEnv, make_env
from torchrl_grasp.world_models import learned
from torchrl_grasp.world_models.cache import cache_path
from torchrl_grasp.world_models.data import CollectionConfig, TransitionData, collect_transitions
from torchrl_grasp.world_models.learned import ModelConfig, fit_world_model, load_or_train
from torchrl_grasp.world_models.mlp import NetworkConfig, ResidualMLP
from torchrl_grasp.world_models.pusht_exploration import PushTExploration
from torchrl_grasp.world_models.training import TrainingConfig, train_model
from torchrl_grasp.world_models.validation import trajectory_open_loop_errors, validate

WALL, DOOR, STEP = 0.02, 0.15, 0.05


def hard_wall_step(position, action):
    """Moves by ``STEP * action`` in the box; a move into or across the wall (not the door) stops at it."""
    new = (position + STEP * action.clamp(-1, 1)).clamp(-1, 1)
    crosses = (new[..., 0].abs() < WALL) | (new[..., 0].sign() != position[..., 0].sign())
    blocked = (new[..., 1].abs() >= DOOR) & crosses
    face = position[..., 0].sign() * WALL
    return torch.stack([torch.where(blocked, face, new[..., 0]), new[..., 1]], -1)


class HardWallEnv(EnvBase):
    """``num_envs`` points, each reset to a uniformly random free state and goal."""

    def __init__(self, num_envs: int | None = 8):
        batch = () if num_envs is None else (num_envs,)
        super().__init__(batch_size=torch.Size(batch))
        box = Bounded(-1.0, 1.0, (*batch, 2))
        self.observation_spec = Composite(observation=box, goal=box.clone(), shape=batch)
        self.action_spec = Bounded(-1.0, 1.0, (*batch, 2))
        self.reward_spec = Unbounded((*batch, 1))
        self.generator = torch.Generator().manual_seed(0)

    def _free_points(self):
        count = self.batch_size.numel()
        points = torch.rand(4 * count, 2, generator=self.generator) * 2 - 1
        free = (points[:, 0].abs() >= WALL) | (points[:, 1].abs() < DOOR)
        return points[free][:count].reshape(*self.batch_size, 2)

    def _reset(self, tensordict):
        done = torch.zeros(*self.batch_size, 1, dtype=torch.bool)
        return TensorDict(
            observation=self._free_points(),
            goal=self._free_points(),
            done=done,
            terminated=done.clone(),
            batch_size=self.batch_size,
        )

    def _step(self, tensordict):
        position = hard_wall_step(tensordict["observation"], tensordict["action"])
        goal = tensordict["goal"]
        done = torch.zeros(*self.batch_size, 1, dtype=torch.bool)
        return TensorDict(
            observation=position,
            goal=goal,
            reward=-(position - goal).norm(dim=-1, keepdim=True),
            done=done,
            terminated=done.clone(),
            batch_size=self.batch_size,
        )

    def _set_seed(self, seed):
        self.generator.manual_seed(seed)


TINY = ModelConfig(
    "HardWall-test",
    num_envs=8,
    collection=CollectionConfig(num_frames=800, frames_per_batch=400, max_steps_per_trajectory=40),
    network=NetworkConfig(hidden_size=16, num_layers=1),
    training=TrainingConfig(steps=20, batch_size=32),
)
SMALL = ModelConfig(
    "HardWall-test",
    num_envs=16,
    collection=CollectionConfig(num_frames=16_000, frames_per_batch=3_200, max_steps_per_trajectory=80),
    network=NetworkConfig(hidden_size=64, num_layers=2, fourier_features=16, fourier_scale=10.0),
    training=TrainingConfig(steps=1_500, batch_size=256, lr=1e-2, input_noise_std=0.3),
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small models train fastest on one thread, and several threads crawl on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_hard_wall_env(num_envs):
    return HardWallEnv(num_envs)


@pytest.fixture(scope="module")
def small_data():
    buffer = collect_transitions(lambda: HardWallEnv(SMALL.num_envs), SMALL.collection, seed=SMALL.seed)
    return TransitionData.from_tensordict(buffer[:]).split_trajectories(0.1, torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def small_model(small_data):
    train, _ = small_data
    model = ResidualMLP(2, 2, SMALL.network)
    train_model(model, train, SMALL.training, progress=False)
    return model.requires_grad_(False)


def test_hard_wall_env_is_a_valid_torchrl_env():
    check_env_specs(HardWallEnv(4))
    check_env_specs(HardWallEnv(None))


def test_collected_trajectories_are_continuous_and_touch_the_wall(small_data):
    train, validation = small_data
    assert len(train) + len(validation) == SMALL.collection.num_frames
    assert not set(train.trajectory_ids.tolist()) & set(validation.trajectory_ids.tolist())
    same = train.trajectory_ids[1:] == train.trajectory_ids[:-1]
    torch.testing.assert_close(train.next_states[:-1][same], train.states[1:][same])
    torch.testing.assert_close(train.next_states, hard_wall_step(train.states, train.actions))
    # Contacts: transitions that the wall stopped short of the free move.
    free_move = (train.states + STEP * train.actions).clamp(-1, 1)
    stopped = (train.next_states - free_move).abs().amax(-1) > 1e-4
    at_face = (train.next_states[:, 0].abs() - WALL).abs() < 1e-6
    assert (stopped & at_face).float().mean() > 0.03
    # Exploration covers the box: every cell of a 4 x 4 grid is visited.
    cells = ((train.states + 1) * 2).clamp(0, 3.999).long()
    assert torch.unique(cells[:, 0] * 4 + cells[:, 1]).numel() == 16


def test_walldoor_transitions_are_exact_and_include_wall_contacts():
    config = CollectionConfig(num_frames=4_000, frames_per_batch=2_000, max_steps_per_trajectory=100)
    buffer = collect_transitions(lambda: make_env("WallDoor-v0", num_envs=8), config, seed=3)
    data = TransitionData.from_tensordict(buffer[:])
    task = WallDoorEnv()
    real_next = task.dynamics(data.states.double().numpy(), data.actions.numpy())
    torch.testing.assert_close(data.next_states, torch.as_tensor(real_next, dtype=torch.float32))
    at_face = (data.next_states[:, 0].abs() - task.wall_half_thickness).abs() < 1e-6
    stopped = (data.next_states - (data.states + task.max_step * data.actions)).abs().amax(-1) > 1e-4
    assert (at_face & stopped).float().mean() > 0.03


def test_training_lowers_the_validation_error_by_a_large_factor(small_data, small_model):
    train, validation = small_data
    fresh = ResidualMLP(2, 2, SMALL.network).fit_normalization(train.states, train.actions, train.next_states)
    before, after = validate(fresh, validation), validate(small_model, validation)
    assert after.one_step_mse < before.one_step_mse / 30, (before, after)
    assert after.open_loop_error[10] < before.open_loop_error[10] / 5, (before, after)
    assert after.open_loop_error[1] < 0.01
    assert "open-loop error @ 50" in str(after)


def test_k_step_training_lowers_the_k_step_loss(small_data):
    train, _ = small_data
    model = ResidualMLP(2, 2, NetworkConfig(hidden_size=16, num_layers=1, num_members=2))
    losses = train_model(
        model, train, TrainingConfig(steps=60, batch_size=32, lr=1e-2, rollout_steps=5), progress=False
    )
    assert losses[-10:].mean() < 0.3 * losses[:10].mean()


@pytest.mark.parametrize("rollout_steps, clipped", [(1, False), (4, True)])
def test_only_the_multi_step_loss_has_its_gradient_clipped(small_data, monkeypatch, rollout_steps, clipped):
    """Backpropagation through k model steps explodes as BPTT does (rollout_steps=4 diverged on
    PointMaze unclipped); the one-step loss has no such path and trains as before."""
    norms = []
    real_clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda p, n: norms.append(n) or real_clip(p, n))
    model = ResidualMLP(2, 2, NetworkConfig(hidden_size=16, num_layers=1))
    train_model(model, small_data[0], TrainingConfig(steps=5, batch_size=16, rollout_steps=rollout_steps), progress=False)
    assert norms == ([1.0] * 5 if clipped else [])


def test_a_model_worse_than_predicting_no_change_is_named(small_data, small_model):
    _, validation = small_data
    report = validate(small_model, validation)
    assert report.no_change_error[10] > 5 * report.open_loop_error[10]  # a trained model clears the bar
    assert report.worse_than_no_change() == []
    with pytest.warns(RuntimeWarning, match=r"worse than no change at 1, 10, 50 step\(s\)"):
        validate(lambda state, action: state + 0.5, validation)  # drifts off


def test_ensemble_forward_is_the_mean_of_a_loop_over_members():
    config = NetworkConfig(hidden_size=8, num_layers=2, num_members=3, fourier_features=2)
    model = ResidualMLP(2, 2, config, generator=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(1)
    states, actions = torch.randn(5, 2, generator=gen), torch.randn(5, 2, generator=gen)
    model.fit_normalization(states, actions, states + 0.1 * torch.randn(5, 2, generator=gen))
    actions.requires_grad_()

    def member(index, state, action):
        state_in = (state - model.state_mean) / model.state_std
        projected = state_in @ model.fourier_projection
        x = torch.cat(
            [state_in, projected.sin(), projected.cos(), (action - model.action_mean) / model.action_std], -1
        )
        for layer, (weight, bias) in enumerate(zip(model.weights, model.biases)):
            x = x @ weight[index] + bias[index, 0]
            x = torch.nn.functional.silu(x) if layer < len(model.weights) - 1 else x
        return state + x * model.delta_std + model.delta_mean

    looped = torch.stack([member(index, states, actions) for index in range(3)])
    torch.testing.assert_close(model.members(states, actions), looped)
    torch.testing.assert_close(model(states, actions), looped.mean(0))
    grad_batched = torch.autograd.grad(model(states, actions).square().sum(), actions)[0]
    grad_looped = torch.autograd.grad(looped.mean(0).square().sum(), actions)[0]
    torch.testing.assert_close(grad_batched, grad_looped)
    torch.testing.assert_close(model.disagreement(states, actions), looped.std(0).norm(dim=-1))


def test_open_loop_errors_along_real_trajectories():
    env = HardWallEnv(3)
    gen = torch.Generator().manual_seed(0)
    actions = torch.rand(3, 30, 2, generator=gen) * 2 - 1
    step = {"t": 0}

    def replay(td):
        step["t"] += 1
        return td.set("action", actions[:, step["t"] - 1])

    trajectory = env.rollout(30, replay)
    exact = trajectory_open_loop_errors(hard_wall_step, trajectory, horizons=(1, 10, 31))
    assert exact[1] == exact[10] == 0.0 and exact[31] != exact[31]  # nan: longer than the trajectories
    frozen = trajectory_open_loop_errors(lambda s, a: s, trajectory, horizons=(1, 10))
    assert 0 < frozen[1] < frozen[10]


def test_planning_with_the_learned_model(small_model):
    env = learned.model_env(small_model, HardWallEnv(None))
    planner = GRASPPlanner(
        env, planning_horizon=10, optim_steps=100, lr_actions=0.05, lr_states=0.01, sync=GDSync(every=20)
    )
    start = TensorDict(
        observation=torch.tensor([[-0.6, -0.5], [0.5, 0.6]]),
        goal=torch.tensor([[-0.3, -0.3], [0.7, 0.4]]),
        batch_size=[2],
    )
    result = planner.plan(start)
    assert torch.isfinite(result.loss_history).all()
    assert (result.loss_history.amin(0) < 0.7 * result.loss_history[0]).all()
    assert (result.goal_distance < 0.02).all()
    # The plan works in the real env too: the learned model is accurate enough to act on.
    real = start["observation"]
    for action in result.actions.unbind(1):
        real = hard_wall_step(real, action)
    assert ((real - start["goal"]).norm(dim=-1) < 0.05).all()
    assert not any(parameter.requires_grad for parameter in small_model.parameters())


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path))
    return tmp_path


def test_a_cached_model_is_loaded_not_retrained(cache, monkeypatch):
    calls = []

    def counted_fit(*args, **kwargs):
        calls.append(args[0])
        if len(calls) > 1:
            raise AssertionError("trained twice")
        return fit_world_model(*args, **kwargs)

    monkeypatch.setattr(learned, "fit_world_model", counted_fit)
    first = load_or_train(TINY, make_env=make_hard_wall_env, progress=False)
    second = load_or_train(TINY, make_env=make_hard_wall_env, progress=False)
    assert len(calls) == 1 and not first.from_cache and second.from_cache
    assert first.path == second.path and first.path.parent.parent == cache
    assert first.model.state_dict().keys() == second.model.state_dict().keys()
    for key, value in first.model.state_dict().items():
        torch.testing.assert_close(second.model.state_dict()[key], value, rtol=0, atol=0)
    assert repr(second.report) == repr(
        first.report
    )  # repr: the 50-step error is nan, longer than the trajectories
    assert list(cache.rglob("*.tmp")) == []
    td = second.env.rollout(3, auto_reset=True)
    assert td["next", "observation"].shape == (3, 2)


def test_training_is_reproducible_and_configs_have_their_own_files(cache):
    first = load_or_train(TINY, make_env=make_hard_wall_env, progress=False, cache_directory=cache / "a")
    again = load_or_train(TINY, make_env=make_hard_wall_env, progress=False, cache_directory=cache / "b")
    for key, value in first.model.state_dict().items():
        torch.testing.assert_close(again.model.state_dict()[key], value, rtol=0, atol=0)
    assert first.path.name == again.path.name
    other = dataclasses.replace(TINY, training=dataclasses.replace(TINY.training, steps=21))
    reseeded = dataclasses.replace(TINY, seed=1)
    names = {cache_path(c.env_id, c, learned.MODEL_FORMAT_VERSION).name for c in (TINY, other, reseeded)}
    assert len(names) == 3


def test_pusht_exploration_collects_transitions_that_move_the_block():
    pytest.importorskip("gym_pusht")
    from torchrl_grasp.envs.pusht_coordinates import POSITION_SCALE

    config = CollectionConfig(
        num_frames=800, frames_per_batch=400, max_steps_per_trajectory=50, exploration=PushTExploration()
    )
    buffer = collect_transitions(
        lambda: make_env("PushTState-v0", num_envs=4, observation_format="normalized"), config
    )
    data = TransitionData.from_tensordict(buffer[:])
    assert data.states.shape == (800, 8) and data.actions.abs().max() <= 1
    moved = (data.next_states[:, 2:4] - data.states[:, 2:4]).norm(dim=-1) * POSITION_SCALE > 0.5  # pixels
    assert moved.float().mean() > 0.2  # held random actions: about 0.01 (tests/test_envs.py)


def test_the_exploration_policy_is_part_of_the_cache_name():
    pusht = learned.pusht_model()

    def exploring(exploration):
        collection = dataclasses.replace(pusht.collection, exploration=exploration)
        return dataclasses.replace(pusht, collection=collection)

    configs = (pusht, exploring(None), exploring(PushTExploration(push_probability=0.3)))
    assert len({cache_path(c.env_id, c, learned.MODEL_FORMAT_VERSION).name for c in configs}) == 3


@pytest.mark.parametrize(
    "content", [b"", b"PK\x03\x04 truncated", "foreign"], ids=["empty", "truncated", "foreign"]
)
def test_a_broken_cache_file_is_named_and_retrained_not_fatal(cache, content):
    path = cache_path(TINY.env_id, TINY, learned.MODEL_FORMAT_VERSION)
    path.parent.mkdir(parents=True)
    if content == "foreign":
        torch.save({"weights": torch.ones(2)}, path)  # another program's file at the model's name
    else:
        path.write_bytes(content)
    with pytest.warns(RuntimeWarning, match=f"{path.name} is unreadable or foreign"):
        model = load_or_train(TINY, make_env=make_hard_wall_env, progress=False)
    assert not model.from_cache
    again = load_or_train(TINY, make_env=make_hard_wall_env, progress=False)  # the file was replaced
    assert again.from_cache


def test_a_cache_that_cannot_be_written_still_returns_the_trained_model(tmp_path):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    with pytest.warns(RuntimeWarning, match="is returned but not cached.*TORCHRL_GRASP_CACHE"):
        model = load_or_train(TINY, make_env=make_hard_wall_env, progress=False, cache_directory=blocked)
    assert not model.from_cache
    td = model.env.rollout(3, auto_reset=True)  # a usable model
    assert td["next", "observation"].shape == (3, 2)


def test_a_refit_on_executed_transitions_learns_them_and_has_its_own_file(cache):
    """The model-based RL loop's refit: transitions a planner executed (here: pushing into the wall
    face, which held random actions visit little) join the training data."""
    config = dataclasses.replace(
        SMALL,
        collection=dataclasses.replace(SMALL.collection, num_frames=4_000, frames_per_batch=800),
        training=dataclasses.replace(SMALL.training, steps=300),
    )
    pushing = torch.tensor([[1.0, 0.0]]).expand(30, 2)
    states = [torch.tensor([-0.5, 0.5])]
    for action in pushing:
        states.append(hard_wall_step(states[-1], action))
    visited = torch.stack(states)
    executed = TransitionData(visited[:-1], pushing, visited[1:], torch.zeros(30, dtype=torch.long))
    executed = executed.concat(executed).concat(executed).concat(executed)  # the same episode, four times
    before = load_or_train(config, make_env=make_hard_wall_env, progress=False)
    after = load_or_train(config, make_env=make_hard_wall_env, progress=False, extra_data=executed)
    again = load_or_train(config, make_env=make_hard_wall_env, progress=False, extra_data=executed)
    assert after.path != before.path and again.from_cache and again.path == after.path

    def error(model):
        return (model(executed.states, executed.actions) - executed.next_states).norm(dim=-1).mean()

    assert error(after.model) < 0.5 * error(before.model), (error(before.model), error(after.model))
