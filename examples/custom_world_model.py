"""Bring your own world model: train a tiny MLP, wrap it for the planners, plan with GRASP and with GD.

What it shows:

1. **A plain ``nn.Module``** ``f(state, action) -> next_state``: a small residual MLP is trained on
   transitions of the analytic wall world
   (:class:`~torchrl_grasp.world_models.analytic.SmoothWallDoor`; any source of
   ``(state, action, next_state)`` triples does, e.g. a gymnasium env), then
   ``TransitionModelEnv(mlp, state_spec, action_spec)`` makes it a TorchRL model-based env.
2. **A ``TensorDictModule`` with two state keys**: a second MLP learns a damped double
   integrator whose state is ``("agent", "position")`` and ``("agent", "velocity")``; the module
   reads both and the action and writes both, and the goal names the position only (a subset of
   the state keys), so the planners leave the final velocity free.
3. For each, ``GRASPPlanner`` and ``GradientPlanner`` (shooting: Adam through the rollout) plan the
   same task; it prints each plan's goal distance in the learned model (``goal_distance``) and
   when its actions are executed in the true dynamics the data came from.

Expect the wall world to teach the usual lesson of planning on a learned model: a small MLP
leaks a little through the wall at every step, and both planners find and use that leak, so
plans that reach the goal in the model stop at the wall in the true dynamics. Check plans
against the real system; the package's own learned models
(:mod:`torchrl_grasp.world_models.learned`) add random Fourier features and input noise in
training so that their rollouts stop at walls. The double integrator, which a small MLP learns
well, reaches its goal in both.

Full size (about 40 s on one core)::

    python examples/custom_world_model.py

Smoke run (seconds; smaller training)::

    python examples/custom_world_model.py --quick
"""

from __future__ import annotations

import argparse
import time

import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.data import Bounded, Composite, Unbounded

from torchrl_grasp import GradientPlanner, GRASPPlanner, TransitionModelEnv
from torchrl_grasp.world_models.analytic import SmoothWallDoor

ACTIONS = Bounded(-1.0, 1.0, (2,))


class ResidualMLP(nn.Module):
    """``next = state + scale * tanh(MLP(state, action))``: the state moves at most ``scale`` per step."""

    def __init__(self, state_dim: int, action_dim: int, hidden: int = 64, scale: float = 0.1):
        super().__init__()
        self.scale = scale
        self.net = nn.Sequential(
            nn.Linear(state_dim + action_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, state_dim),
        )

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return state + self.scale * torch.tanh(self.net(torch.cat([state, action], dim=-1)))


def fit(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], target: torch.Tensor, steps: int, seed: int
) -> float:
    """Adam on the mean squared one-step error; returns the final RMS error on the whole data set."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        index = torch.randint(len(target), (512,), generator=generator)
        loss = (model(*(x[index] for x in inputs)) - target[index]).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.requires_grad_(False).eval()  # planners differentiate through the model, never into its weights
    with torch.no_grad():
        return float((model(*inputs) - target).square().mean().sqrt())


# -- 1. a plain nn.Module on the wall world ------------------------------------------------------


def wall_world(steps: int, seed: int) -> None:
    truth = SmoothWallDoor()
    generator = torch.Generator().manual_seed(seed)
    states = torch.rand(50_000, 2, generator=generator) * 2 - 1
    states[::2, 0] *= 0.15  # half the data near the wall, where the dynamics bend sharply
    actions = torch.rand(50_000, 2, generator=generator) * 2 - 1
    with torch.no_grad():
        next_states = truth(states, actions)
    torch.manual_seed(seed)
    mlp = ResidualMLP(2, 2, hidden=64, scale=0.1)
    began = time.perf_counter()
    error = fit(mlp, (states, actions), next_states, steps, seed)
    print(
        f"wall world: MLP trained in {time.perf_counter() - began:.1f} s, one-step RMS error {error:.4f} "
        f"(a step moves up to 0.05)"
    )

    env = TransitionModelEnv(mlp, Unbounded(2), ACTIONS)  # the state at "observation", the goal at "goal"
    task = TensorDict(observation=torch.tensor([-0.5, 0.4]), goal=torch.tensor([0.5, 0.3]))
    horizon = 40
    planners = {
        "GRASP": GRASPPlanner(
            env, horizon, lr_states=0.01, lr_actions=0.05, num_restarts=4, stop_distance=0.02
        ),
        "GD": GradientPlanner(env, horizon, optim_steps=300, num_restarts=4, stop_distance=0.02),
    }
    for name, planner in planners.items():
        report(
            name, "wall world", planner, task, lambda actions: _execute(truth, task["observation"], actions)
        )


def _execute(model: nn.Module, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        for action in actions:
            state = model(state, action)
    return state


# -- 2. a TensorDictModule with two (nested) state keys ------------------------------------------


class DoubleIntegrator(nn.Module):
    """The true dynamics: ``v' = 0.8 v + 0.2 a``, ``p' = p + 0.1 v'``."""

    def forward(self, position, velocity, action):
        velocity = 0.8 * velocity + 0.2 * action
        return position + 0.1 * velocity, velocity


class TwoKeyMLP(nn.Module):
    """A learned model with two state tensors: ``(position, velocity, action) -> (position, velocity)``."""

    def __init__(self):
        super().__init__()
        self.step = ResidualMLP(4, 2, hidden=64, scale=0.5)

    def forward(self, position, velocity, action):
        state = self.step(torch.cat([position, velocity], dim=-1), action)
        return state[..., :2], state[..., 2:]


def double_integrator(steps: int, seed: int) -> None:
    truth = DoubleIntegrator()
    generator = torch.Generator().manual_seed(seed)
    position = torch.rand(50_000, 2, generator=generator) * 2 - 1
    velocity = torch.rand(50_000, 2, generator=generator) * 2 - 1
    actions = torch.rand(50_000, 2, generator=generator) * 2 - 1
    with torch.no_grad():
        target = torch.cat(truth(position, velocity, actions), dim=-1)
    torch.manual_seed(seed)
    mlp = TwoKeyMLP()
    flat = FlatOutput(mlp)
    began = time.perf_counter()
    error = fit(flat, (position, velocity, actions), target, steps, seed)
    print(
        f"double integrator: MLP trained in {time.perf_counter() - began:.1f} s, "
        f"one-step RMS error {error:.4f}"
    )

    keys = [("agent", "position"), ("agent", "velocity")]
    module = TensorDictModule(mlp, in_keys=[*keys, "action"], out_keys=keys)
    state_spec = Composite(agent=Composite(position=Unbounded(2), velocity=Unbounded(2)))
    env = TransitionModelEnv(module, state_spec, ACTIONS)  # the planners infer the state keys from the module
    task = TensorDict(
        agent=TensorDict(position=torch.tensor([-0.5, -0.5]), velocity=torch.zeros(2)),
        goal=TensorDict(agent=TensorDict(position=torch.tensor([0.4, 0.3]))),  # the position only
    )
    horizon = 30
    planners = {
        "GRASP": GRASPPlanner(
            env, horizon, lr_states=0.01, lr_actions=0.05, num_restarts=4, stop_distance=0.02
        ),
        "GD": GradientPlanner(env, horizon, optim_steps=300, num_restarts=4, stop_distance=0.02),
    }

    def true_final_position(actions):
        position, velocity = task["agent", "position"], task["agent", "velocity"]
        with torch.no_grad():
            for action in actions:
                position, velocity = truth(position, velocity, action)
        return position

    for name, planner in planners.items():
        goal = task["goal", "agent", "position"]
        report(name, "double integrator", planner, task, true_final_position, goal)


class FlatOutput(nn.Module):
    """Training view of :class:`TwoKeyMLP`: both outputs concatenated, to fit them with one loss."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        return torch.cat(self.model(*inputs), dim=-1)


def report(name, world, planner, task, execute, goal=None) -> None:
    began = time.perf_counter()
    result = planner.plan(task)
    seconds = time.perf_counter() - began
    goal = task["goal"] if goal is None else goal
    true_distance = float((execute(result.actions) - goal).norm())
    print(
        f"{world}: {name:5s} goal distance {float(result.goal_distance):.4f} in the learned model, "
        f"{true_distance:.4f} in the true dynamics ({seconds:.2f} s, {result.model_calls} model calls)"
    )
    if true_distance > 0.1 > float(result.goal_distance):
        print(f"{world}: {name:5s} reached the goal in the model only: the plan uses an error of the model")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter training: a smoke run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = 1500 if args.quick else 8000
    wall_world(steps, args.seed)
    double_integrator(steps // 3, args.seed)


if __name__ == "__main__":
    main()
