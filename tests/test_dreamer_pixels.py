"""The pixel Dreamer pipeline: images, episodes, training, the latent filter, and planning in the latent space."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from tensordict import TensorDict
from torchrl.data import Bounded
from torchrl.modules.planners import CEMPlanner

from torchrl_grasp import GRASPPlanner
from torchrl_grasp.benchmark.suite import QUICK_PIXEL_MODEL, quick_pixel_model
from torchrl_grasp.dreamer import (
    LatentFilter,
    PixelEpisodes,
    PointMassPixels,
    RSSMWorldModel,
    fit_pixel_model,
    load_or_train_pixel_model,
)
from torchrl_grasp.dreamer.planning import LatentMPC, LatentPlanning, pixel_env
from torchrl_grasp.dreamer.readout import (
    PositionReadout,
    ReadoutConfig,
    load_or_fit_position_readout,
    readout_targets,
)
from torchrl_grasp.dreamer.training import open_loop_position_distances, validate_pixel_model
from torchrl_grasp.envs import WallDoorEnv
from torchrl_grasp.world_models import WorldModelStep

PIXEL_MODEL_ERROR = Path(__file__).resolve().parents[1] / "benchmarks" / "pixel_model_error.py"


@pytest.fixture(scope="module")
def quick_model(tmp_path_factory):
    return load_or_train_pixel_model(
        QUICK_PIXEL_MODEL, cache_directory=tmp_path_factory.mktemp("pixels"), progress=False
    )


def random_model(seed: int = 0) -> RSSMWorldModel:
    torch.manual_seed(seed)
    return RSSMWorldModel(Bounded(-1.0, 1.0, (2,))).requires_grad_(False)


def test_images_show_the_wall_and_move_with_the_point_below_a_pixel():
    task = WallDoorEnv()
    render = PointMassPixels(task)
    images = render(torch.tensor([[-0.5, 0.2], [-0.49, 0.2], [0.5, -0.5]]))
    wall = torch.as_tensor(task.blocked(render.centers.reshape(-1, 2).numpy()).reshape(64, 64))
    far_from_point = (render.centers - torch.tensor([-0.5, 0.2])).norm(dim=-1) > 1.0  # 6.7 blob sigmas
    assert torch.equal(images[0, 1][far_from_point & wall], torch.full_like(images[0, 1][far_from_point & wall], 0.5))
    assert float(images[0][:, far_from_point & ~wall].abs().max()) < 1e-6  # black elsewhere
    # A move of 0.01 (a third of a pixel) changes the image, smoothly.
    change = (images[1] - images[0]).abs().max()
    assert 0.0 < float(change) < 0.2
    with pytest.raises(ValueError, match=r"\[\.\.\., 2\]"):
        render(torch.zeros(3))


def test_locate_reads_the_point_back_from_its_image_to_a_fraction_of_a_pixel():
    task = WallDoorEnv()
    render = PointMassPixels(task)
    rng = np.random.default_rng(0)
    points = torch.as_tensor(np.concatenate([task.sample_free_points(rng, 200, side) for side in (0, 1)]), dtype=torch.float32)
    error = (render.locate(render(points)) - points).norm(dim=-1)
    pixel = 2 / 64
    assert float(error.max()) < 0.05 * pixel  # a wall or the border cutting the blob does not pull it
    # A dimmer blob (as a decoder may draw it) is read at the same place.
    away = points[points[:, 0].abs() > 0.4]  # from the wall, whose grey the blob would sink into
    dimmer = torch.maximum(render.background, 0.6 * render(away) - 0.6 * render.background)
    torch.testing.assert_close(render.locate(dimmer), render.locate(render(away)))
    with pytest.raises(ValueError, match=r"images must be \[\.\.\., 3, 64, 64\]"):
        render.locate(torch.zeros(3, 32, 32))


def test_episodes_follow_the_task_dynamics_and_start_with_a_reset_step():
    task = WallDoorEnv(max_step=0.025)
    data = PixelEpisodes.collect(task, 32, 40, generator=torch.Generator().manual_seed(0))
    assert torch.equal(data.actions[:, 0], torch.zeros(32, 2))
    replayed = task.dynamics(data.positions[:, 5].double().numpy(), data.actions[:, 6].double().numpy())
    np.testing.assert_allclose(replayed, data.positions[:, 6].numpy(), atol=1e-6)
    assert not task.blocked(data.positions.reshape(-1, 2).double().numpy()).any()
    windows = data.windows(
        8, 6, PointMassPixels(task), (0.5, -0.5), (16, 64), generator=torch.Generator().manual_seed(0)
    )
    assert windows.batch_size == (8, 6) and windows["next", "pixels"].shape == (8, 6, 3, 64, 64)
    assert float(windows["state"].abs().max()) == 0.0


def test_training_fits_the_reward_head_through_the_filtered_latents():
    """A gradient check of the whole wiring: DreamerModelLoss reaches the reward head through the
    encoder, posterior and prior (a tiny model learns little else in seconds)."""
    held_out = PixelEpisodes.collect(QUICK_PIXEL_MODEL.task(), 16, 16, generator=torch.Generator().manual_seed(1))
    untrained, _ = fit_pixel_model(replace(QUICK_PIXEL_MODEL, train_steps=1), progress=False)
    trained, report = fit_pixel_model(replace(QUICK_PIXEL_MODEL, train_steps=60, lr=3e-3), progress=False)
    before = validate_pixel_model(untrained, held_out, QUICK_PIXEL_MODEL).reward_mae
    after = validate_pixel_model(trained, held_out, QUICK_PIXEL_MODEL).reward_mae
    assert after < 0.5 * before, (before, after)
    assert report.reward_mae < 0.5 * before


def test_cached_model_is_loaded_and_identical(quick_model):
    again = load_or_train_pixel_model(QUICK_PIXEL_MODEL, cache_directory=quick_model.path.parents[1], progress=False)
    assert again.from_cache and not quick_model.from_cache
    for name, value in quick_model.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[name]), name
    assert again.report == quick_model.report


def test_latent_filter_is_deterministic_and_uses_the_action():
    model = random_model()
    latent_filter = LatentFilter(model)
    images = PointMassPixels(WallDoorEnv())(torch.tensor([[-0.5, 0.0], [-0.45, 0.0]]))
    first = latent_filter.observe(images[0])
    again = latent_filter.observe(images[0])
    assert torch.equal(first["state"], again["state"])
    after_left = latent_filter.observe(images[1], torch.tensor([-1.0, 0.0]), first)
    after_right = latent_filter.observe(images[1], torch.tensor([1.0, 0.0]), first)
    assert not torch.allclose(after_left["belief"], after_right["belief"])
    sequence = latent_filter.filter(images[None], torch.stack([torch.zeros(2), torch.tensor([1.0, 0.0])])[None])
    torch.testing.assert_close(sequence[0, 1]["state"], after_right["state"])


def planning_view(model: RSSMWorldModel, tmp_path: Path) -> LatentPlanning:
    pixel_model = load_or_train_pixel_model(QUICK_PIXEL_MODEL, cache_directory=tmp_path, progress=False)
    pixel_model.model = model
    return LatentPlanning(pixel_model)


def test_grasp_reaches_a_reachable_latent_goal_of_a_random_rssm(tmp_path):
    model = random_model(1)
    planning = planning_view(model, tmp_path)
    start = planning.latent_filter.observe(planning.pixel_model.renderer(torch.tensor([-0.5, 0.0])))
    step = WorldModelStep(model.transition_module(), ["state", "belief"], "action")
    actions = torch.rand(1, 12, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    states = step.rollout([start["state"][None], start["belief"][None]], actions).states
    goal = TensorDict(state=states[0][0, -1], belief=states[1][0, -1])
    problem = start.clone().set("goal", goal)
    zero = step.rollout([start["state"][None], start["belief"][None]], torch.zeros(1, 12, 2)).states
    zero_distance = torch.cat([zero[0][0, -1] - goal["state"], zero[1][0, -1] - goal["belief"]]).norm()
    planner = GRASPPlanner(
        planning.goal_env(), 12, 200, lr_states=0.01, lr_actions=0.05, num_restarts=4,
        generator=torch.Generator().manual_seed(0),
    )
    result = planner.plan(problem)
    assert float(result.goal_distance) < 0.25 * float(zero_distance), (result.goal_distance, zero_distance)


def test_grasp_and_torchrl_cem_raise_the_learned_return_on_the_dreamer_env(tmp_path):
    model = random_model(2)
    planning = planning_view(model, tmp_path)
    start = planning.latent_filter.observe(planning.pixel_model.renderer(torch.tensor([-0.5, 0.0])))
    env = planning.reward_env()
    step = WorldModelStep(env.world_model, ["state", "belief"], "action", reward_key="reward")
    begin = [start["state"][None], start["belief"][None]]
    zero_return = float(step.rollout(begin, torch.zeros(1, 10, 2), with_reward=True)[1].sum())
    grasp = GRASPPlanner(env, 10, 100, reward_key="reward", generator=torch.Generator().manual_seed(0))
    grasp_return = float(step.rollout(begin, grasp.plan(start.clone()).actions[None], with_reward=True)[1].sum())
    assert grasp_return > zero_return + 0.05, (grasp_return, zero_return)
    # TorchRL's CEMPlanner as the policy in the model, replanning at every one of 10 steps.
    torch.manual_seed(0)
    cem, latent, cem_return = CEMPlanner(env, 10, 5, 64, 8), start.clone(), 0.0
    for _ in range(10):
        action = cem(latent.clone())["action"]
        assert action.shape == (2,) and bool(action.abs().max() <= 1)
        prediction = step.predict([latent["state"][None], latent["belief"][None]], action[None], with_reward=True)
        (state, belief), reward = prediction.states, prediction.reward
        latent, cem_return = TensorDict(state=state[0], belief=belief[0]), cem_return + float(reward)
    assert cem_return > zero_return + 0.05, (cem_return, zero_return)


def test_latent_mpc_acts_from_images_only_and_starts_each_episode_afresh(quick_model):
    planning = LatentPlanning(quick_model)
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, td):
            seen.append(td.clone())
            return td.set("action", torch.tensor([0.5, 0.0]))

    policy = LatentMPC(planning, Recorder())
    env = pixel_env(quick_model).append_transform(policy.make_tensordict_primer())
    td = env.reset(options={"start": [-0.5, 0.0], "goal": [0.5, 0.0]})
    rollout = env.rollout(3, policy, tensordict=td, auto_reset=False)
    assert rollout["next", "observation"][-1, 0] == pytest.approx(-0.5 + 3 * 0.5 * 0.025)
    assert sorted(seen[0].keys()) == ["belief", "goal", "state"]  # no position reaches the planner
    # The first call reads the first image from the zero latent; the second filters on from there
    # with the action taken.
    first = planning.latent_filter.observe(rollout["pixels"][0])
    second = planning.latent_filter.observe(rollout["pixels"][1], torch.tensor([0.5, 0.0]), first)
    torch.testing.assert_close(seen[0]["state"], first["state"])
    torch.testing.assert_close(seen[1]["state"], second["state"])
    goal = planning.goal(rollout["goal_pixels"][0])  # encoded once, the same at every step
    for problem in seen[:3]:
        torch.testing.assert_close(problem["goal", "belief"], goal["belief"])
    # A new episode (a reset zeroes the carried latent) starts from the zero latent again.
    env.rollout(1, policy, tensordict=env.reset(options={"start": [-0.5, 0.0], "goal": [0.5, 0.0]}), auto_reset=False)
    torch.testing.assert_close(seen[-1]["state"], first["state"])


def test_the_benchmarks_pixel_view_filters_the_latent_as_latent_mpc_does(quick_model):
    """Both paths to the pixel tier's planner input agree: the latent is filtered recurrently from
    the images and the actions taken, not encoded afresh from the zero latent at each step."""
    from tensordict.nn import TensorDictModule

    from torchrl_grasp.benchmark.views import PixelView

    actions = iter(torch.tensor([[0.5, 0.2], [-0.3, 0.6], [0.1, -0.4]]))
    problems = []

    def record(state, belief, goal):
        problems.append(TensorDict(state=state, belief=belief).clone())
        return next(actions)

    scripted = TensorDictModule(record, in_keys=["state", "belief", "goal"], out_keys=["action"])
    planning = LatentPlanning(quick_model)
    policy = LatentMPC(planning, scripted)
    env = pixel_env(quick_model).append_transform(policy.make_tensordict_primer())
    rollout = env.rollout(3, policy, tensordict=env.reset(options={"start": [-0.5, 0.0], "goal": [0.5, 0.0]}))
    view, previous = PixelView(quick_model), None
    for t in range(3):
        real = rollout[t].select("observation", "goal")
        previous = view.planner_input(real, rollout["action"][t - 1] if t else None, previous)
        torch.testing.assert_close(previous.select("state", "belief"), problems[t])
    fresh = view.planner_input(rollout[2].select("observation", "goal"))
    assert not torch.allclose(fresh["belief"], problems[2]["belief"])  # history matters


def test_a_position_readout_reads_where_the_decoded_images_show_the_point(quick_model, tmp_path):
    """The readout learns the decoded image's position from the latent alone: on held-out latents,
    filtered and imagined, it reads far closer than the best constant does. (The quick model's
    decoder draws the point in one place whatever the latent, so this one draws it at a smooth
    function of the latent, which the readout is never shown.)"""
    import copy

    pixel_model = copy.copy(quick_model)
    pixel_model.model = copy.deepcopy(quick_model.model)
    probe = PixelEpisodes.collect(quick_model.config.task(), 8, 24, generator=torch.Generator().manual_seed(4))
    latents = LatentFilter(pixel_model.model).filter(quick_model.renderer(probe.positions), probe.actions)
    features = torch.cat([latents["state"], latents["belief"]], -1).flatten(0, 1)
    mean, std = features.mean(0), features.std(0) + 1e-6
    mixing = torch.randn(features.shape[-1], 2, generator=torch.Generator().manual_seed(0)) / features.shape[-1] ** 0.5

    def decode(latent):
        joined = torch.cat([latent["state"], latent["belief"]], -1)
        return quick_model.renderer(0.8 * torch.tanh(((joined - mean) / std) @ mixing))

    pixel_model.model.decode = decode
    config = ReadoutConfig(episodes=32, episode_steps=24, hidden=64, train_steps=600, batch_size=256)
    fitted = load_or_fit_position_readout(pixel_model, config, cache_directory=tmp_path, progress=False)
    held_out = PixelEpisodes.collect(quick_model.config.task(), 8, 24, generator=torch.Generator().manual_seed(5))
    state, belief, position = readout_targets(pixel_model, held_out, config.context)
    error = (fitted.readout(state, belief) - position).norm(dim=-1).mean()
    constant = (position - position.mean(0)).norm(dim=-1).mean()
    assert float(constant) > 0.1  # the decoded positions do move with the latent
    assert float(error) < 0.5 * float(constant), (error, constant)
    again = load_or_fit_position_readout(pixel_model, config, cache_directory=tmp_path, progress=False)
    assert again.from_cache and again.held_out_error == fitted.held_out_error
    assert torch.equal(again.readout(state, belief), fitted.readout(state, belief))


def test_grasp_reaches_a_goal_position_read_off_the_imagined_latents(tmp_path):
    """With a readout the model env gains a position state, the goal names only it, and GRASP's
    collocation reaches it through the readout of each imagined latent."""
    model = random_model(3)
    torch.manual_seed(0)
    readout = PositionReadout(model.size, hidden=32).requires_grad_(False)
    pixel_model = load_or_train_pixel_model(QUICK_PIXEL_MODEL, cache_directory=tmp_path, progress=False)
    pixel_model.model = model
    planning = LatentPlanning(pixel_model, readout=readout)
    env = planning.goal_env()
    step = WorldModelStep(env.world_model, ["state", "belief", "position"], "action")
    start = planning.planner_input(planning.latent_filter.observe(pixel_model.renderer(torch.tensor([-0.5, 0.0]))))
    begin = [start[key][None] for key in ("state", "belief", "position")]
    actions = torch.rand(1, 12, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    goal = step.rollout(begin, actions).states[2][0, -1]
    zero = step.rollout(begin, torch.zeros(1, 12, 2)).states[2][0, -1]
    planner = GRASPPlanner(env, 12, 200, num_restarts=4, generator=torch.Generator().manual_seed(0))
    result = planner.plan(start.set("goal", TensorDict(position=goal)))
    reached = step.rollout(begin, result.actions[None]).states[2][0, -1]
    assert float((reached - goal).norm()) < 0.25 * float((zero - goal).norm()), (reached, goal, zero)
    assert float(result.goal_distance) == pytest.approx(float((reached - goal).norm()), abs=1e-5)


def test_final_lr_decays_the_learning_rate_and_leaves_the_constant_recipe_alone():
    """A cosine from lr to lr is the constant recipe, step for step; to a lower final_lr it trains
    differently (and its cache name differs; a constant recipe's name is the one cached before)."""
    from torchrl_grasp.world_models.cache import config_hash

    short = replace(QUICK_PIXEL_MODEL, train_steps=4)
    constant, _ = fit_pixel_model(short, progress=False)
    flat_cosine, _ = fit_pixel_model(replace(short, final_lr=short.lr), progress=False)
    decayed, _ = fit_pixel_model(replace(short, final_lr=1e-5), progress=False)
    for name, value in constant.state_dict().items():
        torch.testing.assert_close(flat_cosine.state_dict()[name], value)
    assert any(not torch.allclose(decayed.state_dict()[n], v) for n, v in constant.state_dict().items())
    assert config_hash(replace(short, final_lr=1e-5), 3) != config_hash(short, 3)


def test_the_pixel_model_error_script_reports_the_rollout_distances_the_model_report_averages(tmp_path, monkeypatch):
    """``benchmarks/pixel_model_error.py`` prints mean / median / share within 0.1 of the same
    per-episode distances whose mean ``validate_pixel_model`` reports."""
    monkeypatch.setenv("TORCHRL_GRASP_CACHE", str(tmp_path))
    spec = importlib.util.spec_from_file_location("pixel_model_error", PIXEL_MODEL_ERROR)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    table = script.main(["--quick", "--recipes", "plain", "--episodes", "6", "--horizons", "5", "10", "--steps", "20"])
    config = quick_pixel_model(script.RECIPES["plain"])
    loaded = load_or_train_pixel_model(config, progress=False)
    assert loaded.from_cache  # the script trained and cached this very model
    held_out = script.held_out_episodes(config, 6, 20)
    distances = open_loop_position_distances(loaded.model, held_out, config, horizons=(5, 10))
    report = validate_pixel_model(loaded.model, held_out, config, horizons=(5, 10))
    row = next(line for line in table.splitlines() if line.startswith("| plain | 0 | 1 to 10 |"))
    for steps, cell in zip((5, 10), row.strip("|").split("|")[3:]):
        mean, median, share = (float(value.strip(" %")) for value in cell.split("/"))
        assert mean == pytest.approx(report.open_loop_position_error[steps], abs=5e-4)
        assert median == pytest.approx(float(distances[steps].median()), abs=5e-4)
        assert share == pytest.approx(100 * float((distances[steps] < 0.1).float().mean()), abs=0.5)
