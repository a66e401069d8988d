"""One benchmark episode: plan on the learned model, execute in the real env, count success there."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torchrl.envs import EnvBase
from torchrl.envs.utils import step_mdp

from torchrl_grasp.envs.torchrl_env import SUCCESS_KEY


@dataclass
class Episode:
    """What one episode measured.

    Attributes:
        success (bool): the real env reported success within the horizon.
        plan_seconds (float): wall time spent planning (all plans of the episode).
        plans (int): plans made (1 open loop; one per replanning in MPC).
        model_calls (int): batched world-model calls of all plans (a serial rollout counts ``T``).
        predicted_distance (float): the first plan's goal distance in the model's own rollout.
        final_distance (float): the real env's distance to the goal when the episode ended.
        model_error (float): distance between the model's open-loop prediction of the executed
            actions and the real final state: the model error along the executed path.
        path (Tensor, optional): the real env's states from the start to the last one, ``[steps + 1, D]``.
    """

    success: bool
    plan_seconds: float
    plans: int
    model_calls: int
    predicted_distance: float
    final_distance: float
    model_error: float
    path: torch.Tensor | None = None


def run_episode(
    real_env: EnvBase,
    make_planner: Callable[[int], object],
    start: np.ndarray,
    goal: np.ndarray,
    horizon: int,
    *,
    replan_every: int | None = None,
) -> Episode:
    """Plans from ``start`` to ``goal`` and executes for ``horizon`` steps in ``real_env``.

    Open loop (``replan_every=None``): one plan of ``horizon`` actions, all executed. MPC: a new
    plan from the real state every ``replan_every`` steps, over the steps that remain (a
    shrinking horizon, so the deadline is the same as open loop's), of which the first
    ``replan_every`` are executed. ``make_planner(steps)`` builds a planner of that horizon.
    The episode stops at the real env's first success.
    """
    td = real_env.reset(options={"start": start, "goal": goal})
    executed, path = [], [td["observation"]]
    plan_seconds, plans, model_calls, predicted = 0.0, 0, 0, None
    success = False
    while len(executed) < horizon and not success:
        remaining = horizon - len(executed)
        planner = make_planner(remaining)
        begin = time.perf_counter()
        result = planner.plan(td.select("observation", "goal"))
        plan_seconds += time.perf_counter() - begin
        plans, model_calls = plans + 1, model_calls + result.model_calls
        predicted = float(result.goal_distance) if predicted is None else predicted
        chunk = result.actions if replan_every is None else result.actions[:replan_every]
        for action in chunk:
            td = real_env.step(td.set("action", action))
            executed.append(action)
            success = bool(td["next", SUCCESS_KEY])
            td = step_mdp(td)
            path.append(td["observation"])
            if success:
                break
    final = td["observation"]
    distance = float((final - td["goal"]).norm())
    with torch.no_grad():  # from the first observation: the start as the model sees it (Push-T's normalised)
        model_final = planner.model_step.rollout([path[0][None]], torch.stack(executed)[None])[0][0, -1]
    return Episode(
        success=success,
        plan_seconds=plan_seconds,
        plans=plans,
        model_calls=model_calls,
        predicted_distance=predicted,
        final_distance=distance,
        model_error=float((model_final - final).norm()),
        path=torch.stack(path),
    )
