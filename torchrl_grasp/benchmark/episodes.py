"""One benchmark episode: plan on the learned model, execute in the real env, count success there."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torchrl.envs import EnvBase
from torchrl.envs.utils import step_mdp

from torchrl_grasp.benchmark.views import PixelView, StateView
from torchrl_grasp.envs.torchrl_env import SUCCESS_KEY


@dataclass
class Episode:
    """What one episode measured.

    Attributes:
        success (bool): the real env reported success within the horizon.
        plan_seconds (float): wall time spent planning (all plans of the episode).
        plans (int): plans made (1 open loop; one per replanning in MPC).
        model_calls (int): batched world-model calls of all plans (a serial rollout counts ``T``).
        predicted_distance (float): the first plan's goal distance in the model's own rollout
            (read as a position by the pixel model's probe, in the pixel tier).
        final_distance (float): the real env's distance to the goal when the episode ended.
        model_error (float): distance between the model's open-loop prediction of the executed
            actions and the real final state: the model error along the executed path.
        path (Tensor, optional): the real env's states from the start to the last one, ``[steps + 1, D]``.
        restart (int): the restart the first plan came from (:attr:`PlanResult.restart
            <torchrl_grasp.PlanResult>`; ``0`` for planners without restarts).

    Examples:
        >>> episode = Episode(success=False, plan_seconds=1.5, plans=1, model_calls=600,
        ...                   predicted_distance=0.01, final_distance=0.33, model_error=0.33)
        >>> episode.predicted_distance < 0.05 < episode.final_distance  # reached in the model only
        True
        >>> episode.path is None  # run_episode fills it in
        True
    """

    success: bool
    plan_seconds: float
    plans: int
    model_calls: int
    predicted_distance: float
    final_distance: float
    model_error: float
    path: torch.Tensor | None = None
    restart: int = 0


def run_episode(
    real_env: EnvBase,
    make_planner: Callable[[int], object],
    start: np.ndarray,
    goal: np.ndarray,
    horizon: int,
    *,
    replan_every: int | None = None,
    view: StateView | PixelView | None = None,
) -> Episode:
    """Plans from ``start`` to ``goal`` and executes for ``horizon`` steps in ``real_env``.

    Open loop (``replan_every=None``): one plan of ``horizon`` actions, all executed. MPC: a new
    plan from the real state every ``replan_every`` steps, over the steps that remain (a
    shrinking horizon, so the deadline is the same as open loop's), of which the first
    ``replan_every`` are executed. ``make_planner(steps)`` builds a planner of that horizon.
    The episode stops at the real env's first success.

    ``view`` says what the planners see of the real env (see :mod:`torchrl_grasp.benchmark.views`);
    by default the state and goal, on the first planner's model env.

    Examples:
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import GradientPlanner, TransitionModelEnv
        >>> from torchrl_grasp.envs import make_env
        >>> class Free(torch.nn.Module):  # WallDoor's motion without its wall
        ...     def forward(self, state, action):
        ...         return (state + 0.05 * action).clamp(-1, 1)
        >>> model = TransitionModelEnv(Free(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> def planner(steps):
        ...     return GradientPlanner(model, steps, optim_steps=50, lr=0.1)
        >>> real_env, start = make_env("WallDoor-v0"), np.array([-0.5, -0.5])
        >>> episode = run_episode(real_env, planner, start, np.array([-0.5, 0.0]), 20)
        >>> episode.success, episode.plans, episode.path.shape  # it stops at the first success
        (True, 1, torch.Size([19, 2]))
        >>> run_episode(real_env, planner, start, np.array([-0.5, 0.0]), 20, replan_every=5).plans
        4
        >>> across = run_episode(real_env, planner, start, np.array([0.3, -0.5]), 20)  # through the wall
        >>> across.success, across.path[-1].tolist(), round(across.model_error, 2)  # stopped at its face
        (False, [-0.02500000037252903, -0.5], 0.33)
    """
    td = real_env.reset(options={"start": start, "goal": goal})
    executed, path = [], [td["observation"]]
    plan_seconds, plans, model_calls, first_plan = 0.0, 0, 0, None
    success = False
    while len(executed) < horizon and not success:
        remaining = horizon - len(executed)
        planner = make_planner(remaining)
        view = view if view is not None else StateView(planner.env)
        begin = time.perf_counter()
        problem = view.planner_input(td)
        result = planner.plan(problem)
        plan_seconds += time.perf_counter() - begin
        plans, model_calls = plans + 1, model_calls + result.model_calls
        first_plan = (problem, result) if first_plan is None else first_plan
        chunk = result.actions if replan_every is None else result.actions[:replan_every]
        for action in chunk:
            td = real_env.step(td.set("action", action))
            executed.append(action)
            success = bool(td["next", SUCCESS_KEY])
            td = step_mdp(td)
            path.append(td["observation"])
            if success:
                break
    final, goal = td["observation"], td["goal"]
    first_problem, first_result = first_plan
    predicted_final = view.predicted_final(first_problem, first_result.actions)
    model_final = view.predicted_final(first_problem, torch.stack(executed))
    return Episode(
        success=success,
        plan_seconds=plan_seconds,
        plans=plans,
        model_calls=model_calls,
        predicted_distance=float((predicted_final - goal).norm()),
        final_distance=float((final - goal).norm()),
        model_error=float((model_final - final).norm()),
        path=torch.stack(path),
        restart=int(first_result.restart.reshape(-1)[0]),
    )
