"""The parallel sync: Newton's rollout equals the serial one, its adjoint equals backpropagation
through the serial rollout, and GRASP with ``ParallelGDSync`` plans what it plans with ``GDSync``
(falling back to the serial rollout, counted, where the parallel one does not serve)."""

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.data import Bounded, Composite, Unbounded
from torchrl.modules.models.model_based import RSSMPrior
from world_models import CatMLP

from torchrl_grasp import GRASPPlanner, TransitionModelEnv
from torchrl_grasp.dreamer.rssm import PriorMeanStep
from torchrl_grasp.planners import GDSync, ParallelGDSync
from torchrl_grasp.planners.parallel_rollout import FlatStates, adjoint_gradient, newton_rollout
from torchrl_grasp.planners.scan import affine_scan

HORIZON = 13  # not a power of two: the scan's last round is partial


def mlp_case(dtype=torch.float64):
    model = CatMLP().to(dtype).requires_grad_(False)
    flat = FlatStates([torch.Size([4])])
    start = torch.linspace(-0.5, 0.5, 4, dtype=dtype).expand(3, 4)
    return (lambda leaves, action: [model(leaves[0], action)]), flat, start


def rssm_case():
    torch.manual_seed(0)
    prior = RSSMPrior(Bounded(-1.0, 1.0, (2,)), hidden_dim=16, rnn_hidden_dim=16, state_dim=4, action_dim=2)
    mean_step = PriorMeanStep(prior.requires_grad_(False))
    flat = FlatStates([torch.Size([4]), torch.Size([16])])
    start = torch.cat([torch.zeros(3, 4), torch.linspace(-0.2, 0.2, 16).expand(3, 16)], dim=-1)
    return (lambda leaves, action: list(mean_step(leaves[0], leaves[1], action))), flat, start


def serial(step, flat, start, actions):
    states = [start]
    for t in range(actions.shape[1]):
        states.append(flat.flatten(step(flat.unflatten(states[-1]), actions[:, t]), batch_dims=1))
    return torch.stack(states, dim=1)


def test_the_scan_solves_the_recurrence_a_loop_solves():
    generator = torch.Generator().manual_seed(0)
    matrices = torch.randn(2, HORIZON, 3, 3, generator=generator, dtype=torch.float64) * 0.6
    offsets = torch.randn(2, HORIZON, 3, generator=generator, dtype=torch.float64)
    initial = torch.randn(2, 3, generator=generator, dtype=torch.float64)
    x, expected = initial, []
    for t in range(HORIZON):
        x = (matrices[:, t] @ x.unsqueeze(-1)).squeeze(-1) + offsets[:, t]
        expected.append(x)
    torch.testing.assert_close(affine_scan(matrices, offsets, initial), torch.stack(expected, dim=1))


@pytest.mark.parametrize("case", [mlp_case, rssm_case], ids=["cat-mlp", "rssm"])
def test_newton_rollout_equals_the_serial_rollout(case):
    step, flat, start = case()
    actions = torch.rand(3, HORIZON, 2, generator=torch.Generator().manual_seed(1), dtype=start.dtype) * 2 - 1
    expected = serial(step, flat, start, actions)
    # From zeros: after k iterations the first k steps are exact, so HORIZON iterations always converge.
    found = newton_rollout(
        step, flat, start, actions, torch.zeros_like(expected[:, 1:]), iterations=HORIZON + 1, tolerance=1e-6
    )
    assert found.converged and found.iterations <= HORIZON + 1
    torch.testing.assert_close(found.states, expected, rtol=1e-5, atol=1e-5)
    # From a nearby guess (the previous plan's rollout) it takes a few.
    near = newton_rollout(step, flat, start, actions, expected[:, 1:] + 0.01, iterations=6, tolerance=1e-6)
    assert near.converged and near.iterations <= 4
    torch.testing.assert_close(near.states, expected, rtol=1e-5, atol=1e-5)


def test_newton_rollout_says_when_it_has_not_converged():
    step, flat, start = mlp_case()
    actions = torch.ones(3, HORIZON, 2, dtype=start.dtype)
    found = newton_rollout(step, flat, start, actions, torch.zeros(3, HORIZON, 4, dtype=start.dtype), iterations=2, tolerance=1e-9)
    assert not found.converged and found.iterations == 2


@pytest.mark.parametrize("case", [mlp_case, rssm_case], ids=["cat-mlp", "rssm"])
def test_the_adjoint_equals_backpropagation_through_the_serial_rollout(case):
    step, flat, start = case()
    actions = torch.rand(3, HORIZON, 2, generator=torch.Generator().manual_seed(2), dtype=start.dtype) * 2 - 1
    actions.requires_grad_()
    goal = torch.full((flat.size,), 0.3, dtype=start.dtype)

    def loss(states):  # the final state's error and a term on a middle state
        return (states[:, -1] - goal).square().mean(-1) + 0.5 * states[:, HORIZON // 2].square().sum(-1)

    found = newton_rollout(
        step, flat, start, actions, torch.zeros(3, HORIZON, flat.size, dtype=start.dtype), iterations=HORIZON + 1, tolerance=1e-7
    )
    value, gradient = adjoint_gradient(flat, found, actions, loss)
    expected_value = loss(serial(step, flat, start, actions))
    (expected,) = torch.autograd.grad(expected_value.sum(), actions)
    torch.testing.assert_close(value, expected_value.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gradient, expected, rtol=1e-4, atol=1e-6)


class Curved(nn.Module):
    """A point mass whose speed depends on where it is: nonlinear in the state and the action."""

    def forward(self, state, action):
        return state + 0.15 * torch.tanh(action) * (1 + 0.5 * torch.sin(3 * state).flip(-1))


# Unbounded actions: no step of the sync is clamped to a bound that would leave its rollout unchanged.
CURVED = TransitionModelEnv(Curved(), Unbounded(2, dtype=torch.float64), Unbounded(2, dtype=torch.float64))
TASK = TensorDict(
    observation=torch.tensor([[-0.5, 0.2], [0.1, -0.4]], dtype=torch.float64),
    goal=torch.tensor([[0.3, 0.4], [0.5, 0.1]], dtype=torch.float64),
    batch_size=[2],
)
SETTINGS = dict(optim_steps=100, lr_states=0.01, lr_actions=0.05, num_restarts=3)


def test_grasp_with_the_parallel_sync_plans_what_it_plans_with_the_serial_one():
    serial_plan = GRASPPlanner(CURVED, 20, sync=GDSync(every=25), **SETTINGS).plan(TASK)
    parallel = GRASPPlanner(CURVED, 20, sync=ParallelGDSync(every=25, newton_iterations=21, tolerance=1e-12), **SETTINGS)
    plan = parallel.plan(TASK)
    assert plan.serial_fallbacks == 0
    torch.testing.assert_close(plan.actions, serial_plan.actions, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(plan.rollout.to_dict(), serial_plan.rollout.to_dict(), rtol=1e-6, atol=1e-7)
    zero_distance = (TASK["goal"] - TASK["observation"]).norm(dim=-1)
    assert bool((plan.goal_distance < 0.2 * zero_distance).all())  # it planned: zero actions stay put
    assert plan.model_calls < serial_plan.model_calls  # 20-step serial rollouts became a few batched calls
    # After k Newton iterations the first k steps are exact: 21 checks always converge on 20 steps.


def test_rollouts_newton_does_not_finish_are_completed_serially_and_counted():
    # One Newton iteration never converges here: every rollout is completed step by step from the
    # first step it missed, checked by one more batched call, and differentiated by the adjoint.
    serial_plan = GRASPPlanner(CURVED, 20, sync=GDSync(every=25), **SETTINGS).plan(TASK)
    plan = GRASPPlanner(CURVED, 20, sync=ParallelGDSync(every=25, newton_iterations=1), **SETTINGS).plan(TASK)
    assert plan.serial_fallbacks == 4 * (10 + 1)  # every step of the four syncs, and their evaluations
    torch.testing.assert_close(plan.actions, serial_plan.actions, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(plan.rollout.to_dict(), serial_plan.rollout.to_dict(), rtol=1e-9, atol=1e-12)


def test_a_serial_completion_is_the_serial_rollout_and_its_adjoint_the_backpropagated_gradient():
    step, flat, start = mlp_case()
    actions = torch.rand(3, HORIZON, 2, generator=torch.Generator().manual_seed(3), dtype=start.dtype) * 2 - 1
    actions.requires_grad_()
    found = newton_rollout(
        step, flat, start, actions, torch.zeros(3, HORIZON, 4, dtype=start.dtype), iterations=3, tolerance=1e-9,
        complete_serially=True,
    )
    assert found.converged and found.serial_steps == HORIZON - 2 and found.iterations == 4
    expected = serial(step, flat, start, actions)
    torch.testing.assert_close(found.states, expected.detach(), rtol=1e-9, atol=1e-12)
    goal = torch.full((4,), 0.3, dtype=start.dtype)
    value, gradient = adjoint_gradient(flat, found, actions, lambda s: (s[:, -1] - goal).square().sum(-1))
    (backpropagated,) = torch.autograd.grad((expected[:, -1] - goal).square().sum(-1).sum(), actions)
    torch.testing.assert_close(gradient, backpropagated, rtol=1e-7, atol=1e-10)


def test_a_stochastic_model_takes_the_serial_sync():
    class Noisy(nn.Module):
        def forward(self, state, action):
            return state + 0.1 * action + 0.001 * torch.randn_like(state)

    env = TransitionModelEnv(Noisy(), Unbounded(2, dtype=torch.float64), Bounded(-1.0, 1.0, (2,), dtype=torch.float64))
    serial_plan = GRASPPlanner(env, 20, sync=GDSync(every=25), **SETTINGS).plan(TASK)
    plan = GRASPPlanner(env, 20, sync=ParallelGDSync(every=25), **SETTINGS).plan(TASK)
    assert plan.serial_fallbacks == 4 * (10 + 1)
    torch.testing.assert_close(plan.actions, serial_plan.actions, rtol=0, atol=0)


def test_two_state_keys_plan_in_parallel():
    torch.manual_seed(0)
    actions = Bounded(-1.0, 1.0, (2,))
    prior = RSSMPrior(actions, hidden_dim=16, rnn_hidden_dim=16, state_dim=4, action_dim=2).requires_grad_(False)
    module = TensorDictModule(PriorMeanStep(prior), in_keys=["state", "belief", "action"], out_keys=["state", "belief"])
    env = TransitionModelEnv(module, Composite(state=Unbounded(4), belief=Unbounded(16)), actions)
    task = TensorDict(state=torch.zeros(4), belief=torch.zeros(16), goal=TensorDict(state=torch.full((4,), 0.2)))
    settings = dict(optim_steps=50, lr_states=0.01, lr_actions=0.05)
    serial_plan = GRASPPlanner(env, 10, sync=GDSync(every=25), **settings).plan(task)
    plan = GRASPPlanner(env, 10, sync=ParallelGDSync(every=25, newton_iterations=12, tolerance=1e-6), **settings).plan(task)
    assert plan.serial_fallbacks == 0
    torch.testing.assert_close(plan.actions, serial_plan.actions, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(plan.goal_distance, serial_plan.goal_distance, rtol=1e-3, atol=1e-5)


def test_a_model_that_ignores_its_state_or_its_action_has_zero_jacobians_there():
    flat = FlatStates([torch.Size([2])])
    start, actions = torch.ones(2, 2), torch.full((2, HORIZON, 2), 0.5)
    for step in (lambda leaves, a: [0.1 * a], lambda leaves, a: [0.9 * leaves[0]]):
        found = newton_rollout(step, flat, start, actions, torch.zeros(2, HORIZON, 2), iterations=HORIZON + 1, tolerance=1e-6)
        assert found.converged
        torch.testing.assert_close(found.states, serial(step, flat, start, actions))
    ignores_state = newton_rollout(
        lambda leaves, a: [0.1 * a], flat, start, actions, torch.zeros(2, HORIZON, 2), iterations=3, tolerance=1e-6
    )
    assert ignores_state.iterations == 2 and not ignores_state.jacobians.any()  # exact after one iteration
    assert not newton_rollout(
        lambda leaves, a: [0.9 * leaves[0]], flat, start, actions, torch.zeros(2, HORIZON, 2), iterations=HORIZON + 1,
        tolerance=1e-6,
    ).action_jacobians.any()
