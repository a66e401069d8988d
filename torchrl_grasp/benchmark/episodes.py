"""One benchmark episode: plan on the learned model, execute in the real env, count success there."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tensordict import TensorDictBase
from torch import Tensor
from torchrl.envs import EnvBase
from torchrl.envs.utils import step_mdp

from torchrl_grasp.benchmark.views import PixelView, StateView
from torchrl_grasp.envs.torchrl_env import SUCCESS_KEY
from torchrl_grasp.planners.base import GoalPlanner
from torchrl_grasp.planners.result import PlanResult
from torchrl_grasp.policies import RecedingHorizonPolicy
from torchrl_grasp.world_models.data import TransitionData


@dataclass(frozen=True)
class Task:
    """One episode's task: the real env's ``reset`` keyword arguments, and where it starts and ends.

    Attributes:
        reset (dict): passed to the real env's ``reset`` (TorchRL forwards them to gymnasium's).
        start (numpy.ndarray): the start position (nominal where the env's reset adds noise).
        goal (numpy.ndarray): the goal position (likewise).

    Examples:
        >>> task = Task.exact([-0.5, 0.5], [0.5, 0.5])  # this package's envs set both exactly
        >>> task.reset["options"]["goal"], task.start.tolist()
        (array([0.5, 0.5]), [-0.5, 0.5])
    """

    reset: dict
    start: np.ndarray
    goal: np.ndarray

    @classmethod
    def exact(cls, start, goal) -> Task:
        """The task of this package's envs, whose reset takes ``options={"start": ..., "goal": ...}``."""
        start, goal = np.asarray(start, dtype=np.float64), np.asarray(goal, dtype=np.float64)
        return cls({"options": {"start": start, "goal": goal}}, start, goal)


@dataclass
class Episode:
    """What one episode measured.

    Attributes:
        success (bool): the real env reported success within the horizon.
        plan_seconds (float): wall time spent planning (all plans of the episode).
        plans (int): plans made (1 open loop; one per replanning in MPC).
        model_calls (int): batched world-model calls of all plans (a serial rollout counts ``T``).
        predicted_distance (float, optional): the first plan's goal distance in the model's own
            rollout (read as a position off the pixel model's decoded image, in the pixel tier); ``None``
            for TorchRL's planners, which return no plan.
        final_distance (float): the real env's distance to the goal when the episode ended.
        model_error (float): distance between the model's open-loop prediction of the executed
            actions and the real final position: the model error along the executed path.
        path (Tensor, optional): the real env's positions from the start to the last one, ``[steps + 1, D]``.
        restart (int): the restart the first plan came from (:attr:`PlanResult.restart
            <torchrl_grasp.PlanResult>`; ``0`` for planners without restarts).
        transitions (TransitionData, optional): the real transitions executed, in the world
            model's flat state (``None`` for the pixel tier): what a refit trains on
            (``load_or_train(config, extra_data=...)``).
        predicted_penalty (float, optional): the ensemble's disagreement summed along the first
            plan's rollout in the model (:meth:`StateView.predicted_penalty
            <torchrl_grasp.benchmark.views.StateView.predicted_penalty>`): how unsure the model was
            of it; ``None`` for a single network and for TorchRL's planners.
        model_transitions (float): world-model evaluations of all plans
            (:attr:`PlanResult.model_transitions <torchrl_grasp.PlanResult>`; for TorchRL's
            planners, their samples times the horizon and iterations).
        dynamics_gap (float, optional): the first plan's :attr:`PlanResult.dynamics_gap
            <torchrl_grasp.PlanResult>`, averaged over its steps: how far its virtual states were
            from the path its actions drive in the model, in step lengths (``0`` for planners
            without virtual states); ``None`` for TorchRL's planners.
        iterations (int): iterations of all plans (:attr:`PlanResult.iterations
            <torchrl_grasp.PlanResult>`; for TorchRL's planners, their ``optim_steps``): under a
            ``time_budget``, what the deadline allowed.
        second_success (bool, optional): the tier's second success test on the final position
            (:class:`~torchrl_grasp.benchmark.suite.SuccessTest`); ``None`` without one.

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
    predicted_distance: float | None
    final_distance: float
    model_error: float
    path: torch.Tensor | None = None
    restart: int = 0
    model_transitions: float = 0.0
    transitions: TransitionData | None = None
    predicted_penalty: float | None = None
    dynamics_gap: float | None = None
    iterations: int = 0
    second_success: bool | None = None


def run_episode(
    real_env: EnvBase,
    make_planner: Callable[[], object],
    task: Task,
    horizon: int,
    *,
    replan_every: int | None = None,
    view: StateView | PixelView | None = None,
    second_test: Callable[[Tensor, Tensor], bool] | None = None,
) -> Episode:
    """Resets ``real_env`` to ``task``, plans to its goal and executes for ``horizon`` steps there.

    ``make_planner()`` builds the episode's planner. A planner of this package acts through a
    :class:`~torchrl_grasp.RecedingHorizonPolicy` with the deadline ``horizon``: open loop
    (``replan_every=None``) makes one plan of ``horizon`` actions and executes all of them; MPC
    makes a new plan from the real state every ``replan_every`` steps, over the steps that remain
    (so the deadline is open loop's), warm-started from the last one when the planner warm starts.
    TorchRL's own planners (``torchrl-cem``) return only the first action of a plan, so they run in
    MPC only, replanning at every step over the steps that remain. The episode stops at the real
    env's first success.

    ``view`` says what the planners see of the real env and where its position and goal are (see
    :mod:`torchrl_grasp.benchmark.views`); by default the state and goal, on the planner's model env.
    ``second_test(final_position, goal)`` is a second success test, scored at the episode's end.

    Examples:
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import GradientPlanner, TransitionModelEnv
        >>> from torchrl_grasp.envs import make_env
        >>> class Free(torch.nn.Module):  # WallDoor's motion without its wall
        ...     def forward(self, state, action):
        ...         return (state + 0.05 * action).clamp(-1, 1)
        >>> model = TransitionModelEnv(Free(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> def planner():
        ...     return GradientPlanner(model, 20, optim_steps=50, lr=0.1)
        >>> real_env, start = make_env("WallDoor-v0"), [-0.5, -0.5]
        >>> episode = run_episode(real_env, planner, Task.exact(start, [-0.5, 0.0]), 20)
        >>> episode.success, episode.plans, episode.path.shape  # it stops at the first success
        (True, 1, torch.Size([19, 2]))
        >>> run_episode(real_env, planner, Task.exact(start, [-0.5, 0.0]), 20, replan_every=5).plans
        4
        >>> across = run_episode(real_env, planner, Task.exact(start, [0.3, -0.5]), 20)  # through the wall
        >>> across.success, across.path[-1].tolist(), round(across.model_error, 2)  # stopped at its face
        (False, [-0.02500000037252903, -0.5], 0.33)
    """
    planner = make_planner()
    view = view if view is not None else StateView(planner.env)
    plans: list[tuple[TensorDictBase, PlanResult | None]] = []
    model_calls, model_transitions, iterations = 0, 0.0, 0

    def record(
        problem: TensorDictBase, result: PlanResult | None, calls: int, transitions: float, steps: int
    ) -> None:
        nonlocal model_calls, model_transitions, iterations
        plans.append((problem, result))
        model_calls += calls
        model_transitions += transitions
        iterations += steps

    act = _policy(planner, horizon, replan_every, record)
    td = real_env.reset(**task.reset)
    executed, path, states = [], [view.position(td)], [view.flat_state(td)]
    plan_seconds, problem, success = 0.0, None, False
    while len(executed) < horizon and not success:
        begin = time.perf_counter()
        problem = view.planner_input(td, executed[-1] if executed else None, problem)
        action = act(problem, len(executed)).to(real_env.device)  # planned on the model's device
        plan_seconds += time.perf_counter() - begin
        td = real_env.step(td.set("action", action))
        executed.append(action)
        success = bool(td["next", SUCCESS_KEY])
        td = step_mdp(td)
        path.append(view.position(td))
        states.append(view.flat_state(td))
    final, goal = view.position(td), view.goal(td)
    first_problem, first_result = plans[0]
    model_final = view.predicted_final(first_problem, torch.stack(executed))
    predicted_distance = predicted_penalty = dynamics_gap = None
    if first_result is not None:
        dynamics_gap = float(first_result.dynamics_gap.mean())
        predicted_final = view.predicted_final(first_problem, first_result.actions[0])
        predicted_distance = float((predicted_final - goal).norm())
        predicted_penalty = view.predicted_penalty(first_problem, first_result.actions[0])
    return Episode(
        success=success,
        plan_seconds=plan_seconds,
        plans=len(plans),
        model_calls=model_calls,
        predicted_distance=predicted_distance,
        final_distance=float((final - goal).norm()),
        model_error=float((model_final - final).norm()),
        path=torch.stack(path),
        restart=0 if first_result is None else int(first_result.restart.reshape(-1)[0]),
        model_transitions=model_transitions,
        transitions=_executed(states, executed),
        predicted_penalty=predicted_penalty,
        dynamics_gap=dynamics_gap,
        iterations=iterations,
        second_success=None if second_test is None else bool(second_test(final, goal)),
    )


def _executed(states: list[Tensor | None], actions: list[Tensor]) -> TransitionData | None:
    """The episode's real transitions as one trajectory; ``None`` where the view has no flat state."""
    if states[0] is None:
        return None
    visited = torch.stack(states).float()
    return TransitionData(
        visited[:-1], torch.stack(actions).float(), visited[1:], torch.zeros(len(actions), dtype=torch.long)
    )


def _policy(
    planner, horizon: int, replan_every: int | None, record
) -> Callable[[TensorDictBase, int], Tensor]:
    """``act(planner_input, step)``: the action at ``step`` of the episode; each plan is passed to
    ``record(problem, result, model_calls, model_transitions, iterations)``."""
    if isinstance(planner, GoalPlanner):
        policy = RecedingHorizonPolicy(
            planner,
            replan_every or horizon,
            ends_at=horizon,
            on_plan=lambda problem, result: record(
                problem[0], result, result.model_calls, result.model_transitions, result.iterations
            ),
        )
        carried = None  # the plan the policy carries from step to step

        def act(problem: TensorDictBase, step: int) -> Tensor:
            nonlocal carried
            problem = problem.clone(False)  # the policy writes into its input
            if carried is not None:
                problem.set("planning", carried)
            out = policy(problem)
            carried = out.get(("next", "planning"))
            return out.get(planner.action_key)

        return act
    if replan_every is None:
        raise ValueError(
            f"TorchRL's {type(planner).__name__} returns the first action of its plan only: run it in MPC "
            "(--mode mpc), where it replans at every step."
        )

    def act(problem: TensorDictBase, step: int) -> Tensor:
        planner.planning_horizon = horizon - step  # the steps that remain, as the package's planners do
        calls = planner.optim_steps * planner.planning_horizon
        record(problem, None, calls, calls * planner.num_candidates, planner.optim_steps)
        return planner(problem.clone())["action"]

    return act
