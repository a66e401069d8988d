"""``GRASPPlanner(compile=True)``: the compiled iteration gives the eager iterates, and one compilation
serves every plan of the same shapes (no Python state that changes per call inside what is compiled)."""

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torchrl.data import Bounded, Composite, Unbounded
from torchrl.modules.models.model_based import RSSMPrior
from world_models import CatMLP, PointMass, RewardingCatMLP

from torchrl_grasp import GRASPPlanner, TransitionModelEnv
from torchrl_grasp.dreamer.rssm import PriorMeanStep
from torchrl_grasp.planners import GDSync
from torchrl_grasp.planners.compiled import CompiledForward
from torchrl_grasp.planners.grasp import collocation_forward

# With the method's noise, explicitly: the compiled iteration draws the same noise.
SETTINGS = {
    "optim_steps": 20,
    "lr_states": 0.01,
    "lr_actions": 0.05,
    "state_noise_std": 0.005,
    "sync": GDSync(every=10, steps=3),
}
FLOAT64 = {"rtol": 1e-9, "atol": 1e-10}  # so that the compiled kernels' rounding stays far below Adam's eps


def cat_mlp_case():
    dtype = torch.float64
    model = CatMLP().to(dtype).requires_grad_(False)
    env = TransitionModelEnv(model, Unbounded(4, dtype=dtype), Bounded(-1.0, 1.0, (2,), dtype=dtype))
    start = TensorDict(
        observation=torch.linspace(-0.5, 0.5, 4, dtype=dtype), goal=torch.full((4,), 0.3, dtype=dtype)
    )
    return env, start, {}, FLOAT64


def rewarding_case():
    """By reward the step cost is differentiated a second time, so the iteration runs eager: the same iterates."""
    dtype = torch.float64
    module = TensorDictModule(
        RewardingCatMLP().to(dtype), in_keys=["observation", "action"], out_keys=["observation", "reward"]
    )
    env = TransitionModelEnv(module, Unbounded(4, dtype=dtype), Bounded(-1.0, 1.0, (2,), dtype=dtype))
    start = TensorDict(observation=torch.linspace(-0.5, 0.5, 4, dtype=dtype))
    return env, start, {"reward_key": "reward"}, FLOAT64


def rssm_case():
    torch.manual_seed(0)
    actions = Bounded(-1.0, 1.0, (2,))
    prior = RSSMPrior(actions, hidden_dim=16, rnn_hidden_dim=16, state_dim=4, action_dim=2)
    module = TensorDictModule(
        PriorMeanStep(prior), in_keys=["state", "belief", "action"], out_keys=["state", "belief"]
    )
    env = TransitionModelEnv(module, Composite(state=Unbounded(4), belief=Unbounded(16)), actions)
    goal = TensorDict(state=torch.full((4,), 0.5), belief=torch.linspace(-0.3, 0.3, 16))
    start = TensorDict(state=torch.zeros(4), belief=torch.zeros(16), goal=goal)
    return env, start, {}, {"rtol": 1e-4, "atol": 1e-5}


def iterates(planner, start):
    """The actions and the virtual states after every iteration of one plan."""
    seen = []
    planner.callback = lambda iteration, plan: seen.append(plan.select("actions", "virtual_states").clone())
    planner.plan(start)
    return torch.stack(seen)


@pytest.mark.parametrize("case", [cat_mlp_case, rewarding_case, rssm_case], ids=["cat-mlp", "reward", "rssm"])
def test_compiled_iterates_equal_eager(case):
    env, start, options, tolerance = case()
    eager = iterates(GRASPPlanner(env, 8, warm_start=False, **SETTINGS, **options), start)
    planner = GRASPPlanner(env, 8, warm_start=False, compile=True, **SETTINGS, **options)
    assert isinstance(planner.collocation_forward, CompiledForward) and planner.compiles_iteration
    # Whole, without graph breaks: a break would still give eager's iterates, from eager pieces.
    planner.collocation_forward = CompiledForward(
        planner.model_step.module, collocation_forward, fullgraph=True
    )
    compiled = iterates(planner, start)
    assert len(compiled) == SETTINGS["optim_steps"] + 1
    for key in compiled.keys(True, True):
        torch.testing.assert_close(compiled.get(key), eager.get(key), **tolerance, msg=f"{key} differs")
    moved = (eager["actions"][-1] - eager["actions"][0]).abs().max()
    assert moved > 0.1  # the iterates compared are a plan's, not its zero start


def test_one_compilation_serves_every_plan_of_a_shape():
    env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
    planner = GRASPPlanner(env, 20, optim_steps=100, lr_actions=0.05, sync=GDSync(every=25), compile=True)
    planner.plan(TensorDict(observation=torch.zeros(2), goal=torch.tensor([1.0, -0.5])))
    goal = torch.tensor([-0.8, 0.6])  # a new start, goal, warm start and noise seed: the same shapes
    with torch.compiler.set_stance("fail_on_recompile"):
        result = planner.plan(TensorDict(observation=torch.tensor([0.1, 0.0]), goal=goal))
    assert result.goal_distance < 0.05  # zero actions stay 1.08 away


def test_compile_refuses_a_goal_weight_schedule():
    env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
    with pytest.raises(ValueError, match="compile=True needs a constant goal_weight"):
        GRASPPlanner(env, 20, goal_weight=lambda iteration: 1.0 + iteration, compile=True)
