"""The planners of the benchmark, at their published settings or under a wall-time deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torchrl.envs.model_based import ModelBasedEnvBase
from torchrl.modules.planners import CEMPlanner

from torchrl_grasp.planners import (
    AdamStates,
    CEMSync,
    CollocationPlanner,
    GoalCEMPlanner,
    GoalICEMPlanner,
    GoalMPPIPlanner,
    GradientPlanner,
    GRASPPlanner,
    NewtonStates,
    ParallelGDSync,
    Population,
    SyncPhaseDecay,
)
from torchrl_grasp.planners.base import GoalPlanner

PlannerFactory = Callable[..., object]

# name -> (class, settings). ``optim_steps`` is each planner's iteration count (under ``--budget``,
# DEADLINE_STEPS_FACTOR times it is the cap: the deadline ends the plan). GRASP's state settings are
# in step lengths (STEP_UNITS, below), the same on every tier; GD's learning rate was
# tuned on WallDoor (see docs/benchmarks.md); CEM is DINO-WM's Push-T setting; iCEM is Pinneri et
# al.'s at CEM's population (300 decaying by 1.25, 30 elites, 30% kept, beta = 2) with CEM's initial
# spread of 1 (10/16 on WallDoor at H=60 against 8/16 with the paper's 0.5); MPPI weighs its
# elites e^3 : 1 best to worst (its temperature per spread of the scores; e^10 : 1 collapsed onto
# the first elites, 0/16 on WallDoor at H=60, e^3 and e^1 5/16, as CEM). ``torchrl-cem`` is
# TorchRL's own CEMPlanner at the same setting, as TorchRL users have it: it ranks by the env's
# reward summed over the horizon (TransitionModelEnv's: minus the distance at every step), draws
# from the global RNG and returns the first action only, so the benchmark runs it in MPC only.
#
# GRASP's state settings are in the plan's step length |g - s_0| / T, not in state units: Adam moves
# the states 0.4 step lengths an iteration and the noise is 0.2 of one, which is the 0.01 and 0.005
# tuned on the point masses (steps of about 0.025) and the method's 0.1 tuned on the pixel tier's
# latent state (steps of about 0.24 at H=40): one rule for every scale, not separated from the
# per-tier settings on any tier measured (docs/tuning.md, "Settings per scale"). STATE_UNITS are the
# point masses' settings that the benchmark published until 2026-12-03.
STEP_UNITS = dict(
    lr_states=None, state_step=AdamStates(0.4, unit="step"), state_noise_std=0.2, state_noise_unit="step"
)
STATE_UNITS = dict(state_step=None, lr_states=0.01, state_noise_std=0.005, state_noise_unit="state")
GRASP_SETTINGS = dict(optim_steps=300, **STEP_UNITS, lr_actions=0.05, goal_weight=1.0, num_restarts=8)
SETTINGS: dict[str, tuple[type, dict]] = {
    "grasp": (GRASPPlanner, GRASP_SETTINGS),
    # GRASP whose sync is an iCEM search of spread 0.5 around its actions (not the authors' sync):
    # on PointMaze's U the collocation alone found the path in 1 of 32 plans inside the model.
    "grasp-icem": (
        GRASPPlanner,
        {
            **GRASP_SETTINGS,
            "sync": CEMSync(every=50, iterations=10, std=0.5, samples=100, top_k=10, population=Population.icem()),
        },
    ),
    "gd": (GradientPlanner, dict(optim_steps=300, lr=0.05, num_restarts=8)),
    "collocation": (
        CollocationPlanner,
        dict(optim_steps=300, lr_states=0.01, lr_actions=0.05, num_restarts=8),
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
SCALE_FREE = dict(
    lr_states=None, state_step=NewtonStates(damping=0.5), state_noise_std=0.2, state_noise_unit="step"
)

# GRASP with one ingredient removed or changed, for the ablation table of docs/benchmarks.md:
# each change applies on top of GRASP's settings on the tier (its published ones and the tier's
# overrides of "grasp").
GRASP_ABLATIONS: dict[str, dict] = {
    "grasp-no-stop-gradient": dict(stop_gradient=False),
    "grasp-no-goal-term": dict(goal_weight=0.0),
    "grasp-no-noise": dict(state_noise_std=0.0),
    # The authors' schedule: the noise decays within each phase of the sync's 50 iterations.
    "grasp-noise-decay": dict(state_noise_std=SyncPhaseDecay(0.2, every=50)),
    "grasp-no-sync": dict(sync=None),
    "grasp-one-restart": dict(num_restarts=1),
    "grasp-newton": dict(lr_states=None, state_step=NewtonStates(damping=0.5)),
    "grasp-red-noise": dict(state_noise_beta=2.0),
    "grasp-reset-adam": dict(reset_optimizer_at_sync=True),
    "grasp-red-restarts": dict(restart_beta=2.0),
    "grasp-scale-free": SCALE_FREE,
    "grasp-parallel-sync": dict(sync=ParallelGDSync()),
    "grasp-scale-free-red-restarts": {**SCALE_FREE, "restart_beta": 2.0},
    # The published settings until 2026-12-03, in state units (the tables measured before then):
    # the state tiers' and the method's own rates (the pixel tier's then).
    "grasp-state-units": STATE_UNITS,
    "grasp-method-rates": {**STATE_UNITS, "lr_states": 0.1, "lr_actions": 0.005},
    # In MPC every planner starts each replan from its last plan, shifted (the package's default);
    # until 2026-12-02 the gradient planners' benchmark settings started afresh: this row does.
    "grasp-no-warm-start": dict(warm_start=False),
}

# The same removals on GRASP with the iCEM sync, its best configuration on WallDoor and PointMaze,
# and one more: ``no-collocation`` leaves the actions to the syncs (``lr_actions=0``), so that the
# plan is iCEM's searches around GRASP's initial actions and what the collocation adds is the
# difference to ``grasp-icem``.
ICEM_SYNC_ABLATIONS: dict[str, dict] = {
    "grasp-icem" + name.removeprefix("grasp"): GRASP_ABLATIONS[name]
    for name in (
        "grasp-no-stop-gradient",
        "grasp-no-goal-term",
        "grasp-no-noise",
        "grasp-noise-decay",
        "grasp-one-restart",
        "grasp-newton",
        "grasp-state-units",
    )
}
ICEM_SYNC_ABLATIONS["grasp-icem-no-collocation"] = dict(lr_actions=0.0)

ABLATIONS: dict[str, dict] = {**GRASP_ABLATIONS, **ICEM_SYNC_ABLATIONS}
ABLATION_BASE: dict[str, str] = {
    **{name: "grasp" for name in GRASP_ABLATIONS},
    **{name: "grasp-icem" for name in ICEM_SYNC_ABLATIONS},
}
SETTINGS.update({name: SETTINGS[base] for name, base in ABLATION_BASE.items()})


#: The planners that return the first action of a plan only: MPC only.
FIRST_ACTION_ONLY = ("torchrl-cem",)

QUICK_STEPS = {
    "grasp": 40,
    "grasp-icem": 40,
    "gd": 40,
    "collocation": 40,
    "cem": 4,
    "icem": 4,
    "mppi": 4,
    "torchrl-cem": 4,
}
QUICK_STEPS.update({name: QUICK_STEPS[base] for name, base in ABLATION_BASE.items()})

# The package's planners stop once their rollout through the model ends within this fraction of
# the real env's success radius (the rest of the radius absorbs the model's error). TorchRL's
# CEM always runs all its iterations: its loop has no such exit.
STOP_FRACTION = 0.5

# Under a deadline a planner runs until its time_budget (or stop_distance) ends the plan; its
# iterations are capped at this many times its published count, so that every plan ends.
DEADLINE_STEPS_FACTOR = 100


def make_planner(
    name: str,
    env: ModelBasedEnvBase,
    horizon: int,
    *,
    optim_steps: int | None = None,
    seed: int = 0,
    success_radius: float | None = None,
    overrides: dict | None = None,
    time_budget: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
):
    """The planner ``name`` at its published settings (``optim_steps`` overrides the iterations).

    With ``success_radius``, the package's planners stop early at ``STOP_FRACTION`` of it. With
    ``time_budget``, they plan until that many seconds of ``clock`` are spent (``status ==
    "deadline"``), up to ``DEADLINE_STEPS_FACTOR`` times their published iterations (or
    ``optim_steps``); TorchRL's planner has no deadline and raises a ``ValueError``.
    ``overrides`` replaces settings (the benchmark passes a penalty weight), and an ablation's
    change (``ABLATIONS``) replaces both those and the published ones. The
    package's planners draw from a generator on ``env``'s device seeded with ``seed``; TorchRL's from the global RNG,
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
        >>> icem = make_planner("icem", env, 60, time_budget=2.0)  # until 2 s are spent
        >>> icem.time_budget, icem.optim_steps
        (2.0, 3000)
    """
    cls, settings = SETTINGS[name]
    settings = {**settings, **(overrides or {}), **ABLATIONS.get(name, {})}
    if time_budget is not None:
        if not issubclass(cls, GoalPlanner):
            raise ValueError(
                f"{name} is TorchRL's {cls.__name__}, which takes no time budget: leave it out of "
                "--planners or run without --budget."
            )
        settings.update(
            time_budget=time_budget, clock=clock, optim_steps=DEADLINE_STEPS_FACTOR * settings["optim_steps"]
        )
    if optim_steps is not None:
        settings["optim_steps"] = optim_steps
    if not issubclass(cls, GoalPlanner):
        torch.manual_seed(seed)
        return cls(env, horizon, **settings)
    if success_radius is not None:
        settings["stop_distance"] = STOP_FRACTION * success_radius
    return cls(env, horizon, generator=torch.Generator(env.device).manual_seed(seed), **settings)
