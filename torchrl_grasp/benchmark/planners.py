"""The planners of the benchmark, at their published settings, and matching them to a wall-time budget."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from tensordict import TensorDictBase
from torchrl.envs.model_based import ModelBasedEnvBase
from torchrl.modules.planners import CEMPlanner

from torchrl_grasp.planners import (
    CEMSync,
    CollocationPlanner,
    GoalCEMPlanner,
    GoalICEMPlanner,
    GoalMPPIPlanner,
    GradientPlanner,
    GRASPPlanner,
    NewtonStates,
    Population,
)
from torchrl_grasp.planners.base import GoalPlanner

PlannerFactory = Callable[..., object]

# name -> (class, settings). ``optim_steps`` is each planner's iteration count, the knob that
# ``--budget`` turns. GRASP's learning rates are those its tests and the wall world taught (the
# method's defaults oscillate on unit-scale states, see the README); GD's learning rate was
# tuned on WallDoor (see docs/benchmarks.md); CEM is DINO-WM's Push-T setting; iCEM is Pinneri et
# al.'s at CEM's population (300 decaying by 1.25, 30 elites, 30% kept, beta = 2) with CEM's initial
# spread of 1 (10/16 on WallDoor at H=60 against 8/16 with the paper's 0.5); MPPI weighs its
# elites e^3 : 1 best to worst (its temperature per spread of the scores; e^10 : 1 collapsed onto
# the first elites, 0/16 on WallDoor at H=60, e^3 and e^1 5/16, as CEM). ``torchrl-cem`` is
# TorchRL's own CEMPlanner at the same setting, as TorchRL users have it: it ranks by the env's
# reward summed over the horizon (TransitionModelEnv's: minus the distance at every step), draws
# from the global RNG and returns the first action only, so the benchmark runs it in MPC only.
SETTINGS: dict[str, tuple[type, dict]] = {
    "grasp": (
        GRASPPlanner,
        dict(optim_steps=300, lr_states=0.01, lr_actions=0.05, goal_weight=1.0, num_restarts=8, warm_start=False),
    ),
    # GRASP whose sync is an iCEM search of spread 0.5 around its actions (not the authors' sync):
    # on PointMaze's U the collocation alone found the path in 1 of 32 plans inside the model.
    "grasp-icem": (
        GRASPPlanner,
        dict(
            optim_steps=300,
            lr_states=0.01,
            lr_actions=0.05,
            goal_weight=1.0,
            num_restarts=8,
            warm_start=False,
            sync=CEMSync(every=50, iterations=10, std=0.5, samples=100, top_k=10, population=Population.icem()),
        ),
    ),
    "gd": (GradientPlanner, dict(optim_steps=300, lr=0.05, num_restarts=8, warm_start=False)),
    "collocation": (
        CollocationPlanner,
        dict(optim_steps=300, lr_states=0.01, lr_actions=0.05, num_restarts=8, warm_start=False),
    ),
    "cem": (GoalCEMPlanner, dict(optim_steps=30, num_candidates=300, top_k=30)),
    "icem": (GoalICEMPlanner, dict(optim_steps=30, num_candidates=300, top_k=30, init_std=1.0)),
    "mppi": (
        GoalMPPIPlanner,
        dict(optim_steps=30, num_candidates=300, top_k=30, temperature=3.0, relative_temperature=True),
    ),
    "torchrl-cem": (CEMPlanner, dict(optim_steps=30, num_candidates=300, top_k=30)),
}

# Nothing of GRASP in state units: Newton state steps and noise of a fifth of the plan's step length.
SCALE_FREE = dict(lr_states=None, state_step=NewtonStates(damping=0.5), state_noise_std=0.2, state_noise_unit="step")

# GRASP with one ingredient removed or changed, for the ablation table of docs/benchmarks.md:
# each change applies on top of GRASP's settings on the tier (its published ones and the tier's
# overrides of "grasp").
ABLATIONS: dict[str, dict] = {
    "grasp-no-stop-gradient": dict(stop_gradient=False),
    "grasp-no-goal-term": dict(goal_weight=0.0),
    "grasp-no-noise": dict(state_noise_std=0.0),
    "grasp-no-sync": dict(sync=None),
    "grasp-one-restart": dict(num_restarts=1),
    "grasp-newton": dict(lr_states=None, state_step=NewtonStates(damping=0.5)),
    "grasp-red-noise": dict(state_noise_beta=2.0),
    "grasp-reset-adam": dict(reset_optimizer_at_sync=True),
    "grasp-red-restarts": dict(restart_beta=2.0),
    "grasp-scale-free": SCALE_FREE,
    "grasp-scale-free-red-restarts": {**SCALE_FREE, "restart_beta": 2.0},
}
SETTINGS.update({name: SETTINGS["grasp"] for name in ABLATIONS})


def base_planner(name: str) -> str:
    """The planner whose tier settings ``name`` uses: ``"grasp"`` for an ablation, else ``name``.

    Examples:
        >>> base_planner("grasp-no-noise"), base_planner("icem")
        ('grasp', 'icem')
    """
    return "grasp" if name in ABLATIONS else name


#: The planners that return the first action of a plan only: MPC only.
FIRST_ACTION_ONLY = ("torchrl-cem",)

QUICK_STEPS = {"grasp": 40, "grasp-icem": 40, "gd": 40, "collocation": 40, "cem": 4, "icem": 4, "mppi": 4, "torchrl-cem": 4}
QUICK_STEPS.update({name: QUICK_STEPS["grasp"] for name in ABLATIONS})

# The package's planners stop once their rollout through the model ends within this fraction of
# the real env's success radius (the rest of the radius absorbs the model's error). TorchRL's
# CEM always runs all its iterations: its loop has no such exit.
STOP_FRACTION = 0.5


def make_planner(
    name: str,
    env: ModelBasedEnvBase,
    horizon: int,
    *,
    optim_steps: int | None = None,
    seed: int = 0,
    success_radius: float | None = None,
    overrides: dict | None = None,
):
    """The planner ``name`` at its published settings (``optim_steps`` overrides the iterations).

    With ``success_radius``, the package's planners stop early at ``STOP_FRACTION`` of it.
    ``overrides`` replaces settings (a tier's own, see ``BenchmarkEnv.planner_settings``), and an
    ablation's change (``ABLATIONS``) replaces both. The
    package's planners draw from a generator seeded with ``seed``; TorchRL's from the global RNG,
    which is seeded with ``seed`` here.

    Examples:
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import TransitionModelEnv
        >>> from torchrl_grasp.world_models.analytic import SmoothWallDoor
        >>> env = TransitionModelEnv(SmoothWallDoor(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> grasp = make_planner("grasp", env, 60, success_radius=0.05)
        >>> type(grasp).__name__, grasp.optim_steps, grasp.num_restarts, grasp.stop_distance
        ('GRASPPlanner', 300, 8, 0.025)
        >>> cem = make_planner("cem", env, 60, optim_steps=5, success_radius=0.05)
        >>> type(cem).__name__, cem.num_candidates, cem.stop_distance
        ('GoalCEMPlanner', 300, 0.025)
        >>> type(make_planner("torchrl-cem", env, 60, success_radius=0.05)).__name__  # TorchRL's: no early stop
        'CEMPlanner'
        >>> make_planner("grasp-newton", env, 60, overrides={"lr_states": 0.1}).state_step  # the ablation wins
        NewtonStates(damping=0.5)
    """
    cls, settings = SETTINGS[name]
    settings = {**settings, **(overrides or {}), **ABLATIONS.get(name, {})}
    if optim_steps is not None:
        settings["optim_steps"] = optim_steps
    if not issubclass(cls, GoalPlanner):
        torch.manual_seed(seed)
        return cls(env, horizon, **settings)
    if success_radius is not None:
        settings["stop_distance"] = STOP_FRACTION * success_radius
    return cls(env, horizon, generator=torch.Generator().manual_seed(seed), **settings)


def steps_for_budget(
    name: str,
    env: ModelBasedEnvBase,
    horizon: int,
    tensordict: TensorDictBase,
    budget_s: float,
    overrides: dict | None = None,
    *,
    repeats: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> int:
    """The ``optim_steps`` that make one plan of ``name`` take about ``budget_s`` seconds by ``clock``.

    Times plans of ``a`` and ``2a`` iterations on ``tensordict``, ``a`` a quarter of the published
    count, and fits ``time = fixed + steps * per_step``. Both probes are long enough to hold
    GRASP's periodic syncs, so their cost lands in ``per_step`` and not in ``fixed``. Each probe
    is timed ``repeats`` times and its fastest time kept: another job that takes the core for a
    moment slows one timing, not the fit (a slowed probe once gave a planner one iteration).
    ``clock`` is read before and after each timed plan; the tests pass a scripted one, so that no
    verdict depends on the machine's speed.

    Examples:
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import TransitionModelEnv
        >>> from torchrl_grasp.world_models.analytic import SmoothWallDoor
        >>> env = TransitionModelEnv(SmoothWallDoor(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
        >>> task = TensorDict(observation=torch.tensor([-0.5, 0.0]), goal=torch.tensor([0.5, 0.0]))
        >>> # Probes of 7 and 14 CEM iterations that take 1.5 s and 2.5 s: 0.5 s fixed, 1/7 s per iteration.
        >>> clock = iter([0.0, 1.5, 10.0, 12.5]).__next__
        >>> steps_for_budget("cem", env, 10, task, budget_s=2.0, repeats=1, clock=clock)  # (2.0 - 0.5) * 7
        10
        >>> # The same probes, the first slowed to 9 s once by another job: its fastest time is kept.
        >>> clock = iter([0.0, 9.0, 10.0, 11.5, 20.0, 22.5, 30.0, 32.5]).__next__
        >>> steps_for_budget("cem", env, 10, task, budget_s=2.0, repeats=2, clock=clock)
        10
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}.")
    low = max(2, SETTINGS[name][1]["optim_steps"] // 4)
    seconds = []
    for steps in (low, 2 * low):
        planner = make_planner(name, env, horizon, optim_steps=steps, overrides=overrides)
        plan = planner.plan if isinstance(planner, GoalPlanner) else lambda td: planner(td.clone())
        plan(tensordict)  # warm-up: caches, allocator
        timings = []
        for _ in range(repeats):
            start = clock()
            plan(tensordict)
            timings.append(clock() - start)
        seconds.append(min(timings))
    return fitted_steps(low, seconds, budget_s)


def fitted_steps(low: int, seconds: list[float], budget_s: float) -> int:
    """The iterations that fit ``budget_s``, from probes of ``low`` and ``2 * low`` iterations that took ``seconds``.

    A probe pair that timing noise made non-increasing gives the per-iteration cost a floor of
    1 us, and at least one iteration is always run.

    Examples:
        >>> fitted_steps(10, [1.0, 1.5], budget_s=3.0)  # 0.5 s fixed, 0.05 s per iteration
        50
        >>> fitted_steps(10, [1.0, 1.5], budget_s=0.1)  # less than the fixed cost
        1
    """
    per_step = max((seconds[1] - seconds[0]) / low, 1e-6)
    fixed = max(seconds[0] - low * per_step, 0.0)
    return max(1, int((budget_s - fixed) / per_step))
