"""The planners' iterates equal a plain per-step implementation of the method, to float precision.

The reference below is written from the method's statement alone (``../shared/GRASP-METHOD.md``):
a Python loop over time steps calling the model on one step at a time, the stop-gradient loss
summed per step, and Adam written out by hand. It shares no code with the planners, so a speed
change in the planners (time batching, a fused op, a fused optimiser) that changes the math
fails here. The models are the common shapes whose backward hands the optimiser strided
gradients: an MLP on ``torch.cat([state, action])`` (the action's gradient is a slice), a model
that sums the action (an expanded, zero-stride gradient), and TorchRL's ``RSSMPrior`` (two state
keys, a concatenation inside).
"""

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.data import Bounded, Composite, Unbounded
from torchrl.modules.models.model_based import RSSMPrior
from world_models import CatMLP, RewardingCatMLP

from torchrl_grasp import GDSync, GradientPlanner, GRASPPlanner, TransitionModelEnv
from torchrl_grasp.dreamer.rssm import PriorMeanStep
from torchrl_grasp.planners import AdamStates, NewtonStates

HORIZON = 12
# Float64 where the model allows it, so that rounding (the batched and the per-step calls round
# differently) stays far below Adam's eps. TorchRL's RSSMPrior runs its GRU in float32.
DTYPE = torch.float64
ACTIONS = Bounded(-1.0, 1.0, (2,), dtype=DTYPE)
TOLERANCE = {torch.float64: dict(rtol=1e-9, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-5)}
LR_STATES, LR_ACTIONS, GOAL_WEIGHT = 0.01, 0.05, 0.5


class ActionSum(nn.Module):
    """A model that reduces its action: the action's gradient comes back expanded (zero strides)."""

    def forward(self, state, action):
        return state + 0.1 * action.sum(-1, keepdim=True)


def single_key_case(model, dim):
    env = TransitionModelEnv(model.to(DTYPE).requires_grad_(False), Unbounded(dim, dtype=DTYPE), ACTIONS)
    start = TensorDict(
        observation=torch.linspace(-0.5, 0.5, dim, dtype=DTYPE), goal=torch.full((dim,), 0.3, dtype=DTYPE)
    )
    step = lambda states, action: {"observation": model(states["observation"], action)}  # noqa: E731
    return env, start, step, ["observation"]


def rssm_case():
    torch.manual_seed(0)
    actions = Bounded(-1.0, 1.0, (2,))
    prior = RSSMPrior(actions, hidden_dim=16, rnn_hidden_dim=16, state_dim=4, action_dim=2).requires_grad_(
        False
    )
    mean_step = PriorMeanStep(prior)
    module = TensorDictModule(mean_step, in_keys=["state", "belief", "action"], out_keys=["state", "belief"])
    env = TransitionModelEnv(module, Composite(state=Unbounded(4), belief=Unbounded(16)), actions)
    # A goal on both keys: every virtual state starts on a line, away from the model's own
    # rollout, whose float32 residuals (~1e-8) Adam's first step would magnify to lr / 10.
    goal = TensorDict(state=torch.full((4,), 0.5), belief=torch.linspace(-0.3, 0.3, 16))
    start = TensorDict(state=torch.zeros(4), belief=torch.zeros(16), goal=goal)

    def step(states, action):
        state, belief = mean_step(states["state"], states["belief"], action)
        return {"state": state, "belief": belief}

    return env, start, step, ["state", "belief"]


CASES = {
    "cat-mlp": lambda: single_key_case(CatMLP(), 4),
    "action-sum": lambda: single_key_case(ActionSum(), 2),
    "rssm": rssm_case,
}


class HandAdam:
    """Adam (Kingma and Ba, 2015) written out: what ``torch.optim.Adam`` computes with its defaults."""

    def __init__(self, lr, betas=(0.9, 0.999), eps=1e-8):
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.moments, self.steps = {}, 0

    def update(self, name, value, gradient):
        first, second = self.moments.get(name, (torch.zeros_like(value), torch.zeros_like(value)))
        first = self.beta1 * first + (1 - self.beta1) * gradient
        second = self.beta2 * second + (1 - self.beta2) * gradient * gradient
        self.moments[name] = (first, second)
        first_hat = first / (1 - self.beta1**self.steps)
        second_hat = second / (1 - self.beta2**self.steps)
        return value - self.lr * first_hat / (second_hat.sqrt() + self.eps)


def reference_rollout(step, start, actions):
    states, path = dict(start), []
    for t in range(actions.shape[0]):
        states = step(states, actions[t])
        path.append(states)
    return {key: torch.stack([s[key] for s in path]) for key in start}


def reference_grasp(step, start, goal, iterations, dtype, newton_damping=None, lr_in_steps=None):
    """GRASP's collocation iterations without noise or sync, one model call per time step.

    With ``newton_damping``, each virtual state moves that fraction of the way to the model's
    prediction of it instead of taking an Adam step (``NewtonStates``). With ``lr_in_steps``, each
    key's Adam learning rate is that many of its step lengths ``|g - s_0| / T``
    (``AdamStates(unit="step")``; every key of these cases has a goal).

    Returns the actions ``[T, A]``, the virtual states ``s_1 .. s_T`` per key ``[T, D]`` and the
    loss of each iteration.
    """
    actions = torch.zeros(HORIZON, 2, dtype=dtype)
    fraction = torch.arange(1, HORIZON + 1, dtype=dtype) / HORIZON
    zero_rollout = reference_rollout(step, start, actions)
    virtual = {
        key: start[key] + fraction[:, None] * (goal[key] - start[key]) if key in goal else zero_rollout[key]
        for key in start
    }
    state_adams = {
        key: HandAdam(
            LR_STATES if lr_in_steps is None else lr_in_steps * float((goal[key] - start[key]).norm()) / HORIZON
        )
        for key in start
    }
    action_adam = HandAdam(LR_ACTIONS)
    losses = []
    for _ in range(iterations):
        actions.requires_grad_(True)
        for value in virtual.values():
            value.requires_grad_(True)
        loss, predictions = 0.0, []
        for t in range(HORIZON):
            previous = {key: (start[key] if t == 0 else virtual[key][t - 1]).detach() for key in start}
            predicted = step(previous, actions[t])
            predictions.append(predicted)
            for key in start:
                loss = loss + (predicted[key] - virtual[key][t]).square().mean()
                if key in goal:
                    loss = loss + GOAL_WEIGHT * (predicted[key] - goal[key]).square().mean()
        keys = list(virtual)
        gradients = torch.autograd.grad(loss, [virtual[key] for key in keys] + [actions])
        for adam in [*state_adams.values(), action_adam]:
            adam.steps += 1
        with torch.no_grad():
            if newton_damping is None:
                virtual = {key: state_adams[key].update(key, virtual[key], g) for key, g in zip(keys, gradients)}
            else:
                predicted = {key: torch.stack([p[key] for p in predictions]) for key in keys}
                virtual = {key: virtual[key] + newton_damping * (predicted[key] - virtual[key]) for key in keys}
            for key in goal:
                virtual[key][-1] = goal[key]
            actions = action_adam.update("actions", actions, gradients[-1]).clamp(-1.0, 1.0)
        losses.append(loss.detach())
    return actions, virtual, torch.stack(losses)


def goal_of(start):
    goal = start["goal"]
    return {"observation": goal} if isinstance(goal, torch.Tensor) else dict(goal.items())


# The state steps: Adam (the method's); Adam in step lengths, which rescales each plan's Adam
# update after the fused step and must give Adam at that many step lengths per key; and
# NewtonStates, which is SGD at damping * D / 2 per key and must give the same iterates as moving
# each virtual state half way to the model's prediction.
STATE_STEPS = {
    "adam": (dict(lr_states=LR_STATES), dict()),
    "adam-in-steps": (dict(state_step=AdamStates(0.4, unit="step")), dict(lr_in_steps=0.4)),
    "newton": (dict(state_step=NewtonStates(damping=0.5)), dict(newton_damping=0.5)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("iterations", [1, 5, 40])
@pytest.mark.parametrize("state_step", sorted(STATE_STEPS))
def test_grasp_iterates_equal_the_per_step_reference_before_the_first_sync(case, iterations, state_step):
    env, start, step, keys = CASES[case]()
    state_options, reference_options = STATE_STEPS[state_step]
    planner = GRASPPlanner(
        env,
        HORIZON,
        optim_steps=iterations,
        lr_actions=LR_ACTIONS,
        goal_weight=GOAL_WEIGHT,
        state_noise_std=0.0,
        sync=None,
        warm_start=False,
        **state_options,
    )
    result = planner.plan(start)
    dtype = result.actions.dtype
    actions, virtual, losses = reference_grasp(
        step, {key: start[key] for key in keys}, goal_of(start), iterations, dtype, **reference_options
    )
    torch.testing.assert_close(result.loss_history, losses, **TOLERANCE[dtype])
    torch.testing.assert_close(result.actions, actions, **TOLERANCE[dtype])
    for key in keys:
        torch.testing.assert_close(result.virtual_states[key][1:], virtual[key], **TOLERANCE[dtype])
    # The iterates moved: this compares optimisation, not two copies of the initial guess.
    assert actions.abs().max() > 0.04
    if iterations > 1:  # and the states left their initial line
        line = start[keys[0]] + (goal_of(start)[keys[0]] - start[keys[0]]) / HORIZON
        assert (result.virtual_states[keys[0]][1] - line).abs().max() > 1e-3


def test_the_same_call_gives_the_same_plan_when_the_model_reduces_the_action():
    env, start, _, _ = single_key_case(ActionSum(), 2)
    distances = [
        GRASPPlanner(env, 8, optim_steps=20, sync=GDSync(every=10)).plan(start).goal_distance
        for _ in range(4)
    ]
    assert all(torch.isfinite(d) for d in distances)
    assert all(torch.equal(d, distances[0]) for d in distances), distances


def reference_shooting(step, start, goal, steps, lr, dtype):
    """Adam on the actions through the serial rollout's final goal error, one model call per step."""
    actions, adam, losses = torch.zeros(HORIZON, 2, dtype=dtype), HandAdam(lr), []
    for _ in range(steps):
        actions.requires_grad_(True)
        final = {key: path[-1] for key, path in reference_rollout(step, start, actions).items()}
        loss = sum((final[key] - goal[key]).square().mean() for key in goal)
        (gradient,) = torch.autograd.grad(loss, [actions])
        adam.steps += 1
        with torch.no_grad():
            actions = adam.update("actions", actions, gradient).clamp(-1.0, 1.0)
        losses.append(loss.detach())
    return torch.stack(losses)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradient_planner_losses_equal_the_per_step_reference(case):
    env, start, step, keys = CASES[case]()
    result = GradientPlanner(env, HORIZON, optim_steps=30, lr=0.05, warm_start=False).plan(start)
    dtype = result.actions.dtype
    losses = reference_shooting(step, {key: start[key] for key in keys}, goal_of(start), 30, 0.05, dtype)
    torch.testing.assert_close(result.loss_history, losses, **TOLERANCE[dtype])
    assert losses[-1] < 0.95 * losses[0]  # the actions moved


def reference_grasp_by_reward(model, start, iterations, dtype):
    """GRASP by reward without noise or sync, one model call per time step and term: the dynamics
    term from the stop-gradient state, the reward from the virtual state itself (its gradient
    reaches it one step through the model's state input)."""
    actions = torch.zeros(HORIZON, 2, dtype=dtype)
    with torch.no_grad():
        state, path = start, []
        for t in range(HORIZON):
            state, _ = model(state, actions[t])
            path.append(state)
    virtual = torch.stack(path)
    state_adam, action_adam, losses = HandAdam(LR_STATES), HandAdam(LR_ACTIONS), []
    for _ in range(iterations):
        actions.requires_grad_(True)
        virtual.requires_grad_(True)
        loss = 0.0
        for t in range(HORIZON):
            previous = start if t == 0 else virtual[t - 1]
            predicted, _ = model(previous.detach(), actions[t])
            _, reward = model(previous, actions[t])
            loss = loss + (predicted - virtual[t]).square().mean() - reward.sum()
        state_gradient, action_gradient = torch.autograd.grad(loss, [virtual, actions])
        state_adam.steps += 1
        action_adam.steps += 1
        with torch.no_grad():
            virtual = state_adam.update("states", virtual, state_gradient)
            actions = action_adam.update("actions", actions, action_gradient).clamp(-1.0, 1.0)
        losses.append(loss.detach())
    return actions, virtual, torch.stack(losses)


@pytest.mark.parametrize("iterations", [1, 5, 40])
def test_grasp_by_reward_iterates_equal_the_per_step_reference(iterations):
    model = RewardingCatMLP().to(DTYPE).requires_grad_(False)
    module = TensorDictModule(model, in_keys=["observation", "action"], out_keys=["observation", "reward"])
    env = TransitionModelEnv(module, Unbounded(4, dtype=DTYPE), ACTIONS)
    start = torch.linspace(-0.5, 0.5, 4, dtype=DTYPE)
    planner = GRASPPlanner(
        env, HORIZON, optim_steps=iterations, lr_states=LR_STATES, lr_actions=LR_ACTIONS,
        state_noise_std=0.0, sync=None, warm_start=False, reward_key="reward",
    )  # fmt: skip
    result = planner.plan(TensorDict(observation=start))
    actions, virtual, losses = reference_grasp_by_reward(model, start, iterations, DTYPE)
    torch.testing.assert_close(result.loss_history, losses, **TOLERANCE[DTYPE])
    torch.testing.assert_close(result.actions, actions, **TOLERANCE[DTYPE])
    torch.testing.assert_close(result.virtual_states["observation"][1:], virtual, **TOLERANCE[DTYPE])
    assert actions.abs().max() > 0.04
