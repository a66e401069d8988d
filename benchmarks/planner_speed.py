"""Time per GRASP iteration against the floor, against a per-step loop, and the share of plan time in sync.

The world model is a residual MLP ``s' = s + MLP(cat(s, a))`` (two hidden layers of ``width``,
state dim ``D``, action dim 2) wrapped in :class:`torchrl_grasp.TransitionModelEnv`. For each
(B, T, D, width) the script measures, side by side in one run:

- **iteration**: one loop iteration of ``GRASPPlanner._solve``, by calling the planner's own
  ``collocation_iteration``: one batched world-model call through ``WorldModelStep`` plus the
  objective's fused loss, ``torch.autograd.grad`` w.r.t. the virtual states and the actions, the
  (fused) Adam step, and the noise and bounds.
- **floor**: one forward + backward of the bare MLP on a ``[B*T, D]`` state batch and
  ``[B*T, 2]`` actions, backward w.r.t. the actions only: the least any gradient planner
  iteration must do. ``iteration / floor`` is the planner's overhead (target: <= 1.5 at T=256).
- **per-step loop**: the same collocation iteration written as a Python loop over ``t``
  (the authors' way): the bare MLP on ``[B, D]`` states and ``[B, 2]`` actions per step, the
  predictions stacked, ``collocation_loss_reference``, the same ``descend``, the planner's Adam,
  noise and bounds on copies of the same tensors. ``loop / iteration`` is the
  speed-up of the time-batched iteration (target: >= 30 at T=256).

Medians come from ``torch.utils.benchmark.Timer.blocked_autorange``, run with the thread count
printed in the header. A second table runs ``planner.plan`` with the default sync
(``GDSync(every=50, steps=10)``) for ``--sync-optim-steps`` iterations on a subset of configs
and reports the share of its wall time spent inside the sync (its shooting steps: serial
rollouts and their backward; the rollout that evaluates each sync's result is outside), with
the time in the sync per serial world-model step it made, beside the same plan with
``ParallelGDSync`` (Newton rollouts and the adjoint over all steps at once) and its serial fallbacks. A third table plans under a deadline
(``time_budget`` of ``--deadline`` seconds, iterations uncapped) on the same configs and reports how
far past it the plans ended, in milliseconds and in sync steps (the longest iteration a plan
makes: a serial rollout and its backward, from the second table; target: at most one). A fourth
table times full plans (no early stop) at ``--full-plan-horizon`` on the smooth wall-door world:
GRASP with each sync against the package's CEM (target: GRASP at most half CEM's time). A fifth
times one iteration eager and compiled (``GRASPPlanner(compile=True)``) on the sync table's configs,
with the compilation's seconds. The last lines say, per T=256 row, whether each target is met.

    python benchmarks/planner_speed.py                   # the full grid, a few minutes on 2 CPU cores
    python benchmarks/planner_speed.py --quick           # a tiny grid, seconds
    python benchmarks/planner_speed.py --threads 1       # pin the thread count
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from dataclasses import dataclass, field

import torch
from tensordict import TensorDict
from torch import nn
from torch.utils import benchmark
from torchrl.data import Bounded, Unbounded

from torchrl_grasp import GRASPPlanner, TransitionModelEnv
from torchrl_grasp.benchmark.planners import make_planner
from torchrl_grasp.ops import collocation_loss_reference
from torchrl_grasp.planners.descent import descend, plan_variable
from torchrl_grasp.planners.grasp import collocation_iteration, schedule_value
from torchrl_grasp.planners.syncs import GDSync, ParallelGDSync
from torchrl_grasp.world_models.analytic import SmoothWallDoor

ACTION_DIM = 2
TARGET_HORIZON = 256
TARGET_OVERHEAD = 1.5  # iteration / floor at most
TARGET_SPEEDUP = 30.0  # per-step loop / iteration at least
UNSTEADY_SPREAD = 2.0  # a side's round medians max / min above this flags the row


class ResidualMLP(nn.Module):
    """``s' = s + MLP(cat(s, a))`` with two hidden layers of ``width``."""

    def __init__(self, dim: int, width: int, activation: type[nn.Module]):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim + ACTION_DIM, width),
            activation(),
            nn.Linear(width, width),
            activation(),
            nn.Linear(width, dim),
        )

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return state + self.net(torch.cat([state, action], dim=-1))


def now() -> float:
    """The wall clock once the default device's queued work is done (CUDA runs ahead of Python)."""
    if torch.get_default_device().type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


@dataclass(frozen=True)
class TimedGDSync(GDSync):
    """GRASP's default sync, accumulating the wall time spent in it (its serial rollouts and steps)."""

    seconds: list = field(default_factory=lambda: [0.0], compare=False, repr=False)
    calls: list = field(default_factory=lambda: [0], compare=False, repr=False)

    def __call__(self, context, *args):
        start, calls = now(), context.model_calls
        try:
            super().__call__(context, *args)
        finally:
            self.seconds[0] += now() - start
            self.calls[0] += context.model_calls - calls


@dataclass(frozen=True)
class TimedParallelGDSync(TimedGDSync, ParallelGDSync):
    """The parallel sync (Newton rollouts and the adjoint), timed the same way."""


def make_env(dim: int, width: int, activation: type[nn.Module]):
    model = ResidualMLP(dim, width, activation)
    device = torch.get_default_device()  # the planner's generator lives on the env's device
    env = TransitionModelEnv(model, Unbounded(dim), Bounded(-1.0, 1.0, (ACTION_DIM,)), device=device)
    return model, env


def make_start(batch: int, dim: int) -> TensorDict:
    return TensorDict(observation=torch.randn(batch, dim), goal=torch.randn(batch, dim), batch_size=[batch])


def median_seconds(fn, min_run_time: float, threads: int) -> float:
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=min_run_time).median


def interleaved_medians(fns: dict, min_run_time: float, threads: int, rounds: int) -> tuple[dict, float]:
    """Median over ``rounds`` of each side's median, the sides taking turns, so that load that
    comes and goes on a shared machine hits all of them alike; and the largest max / min of a
    side's round medians, which flags a cell that load disturbed throughout."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(median_seconds(fn, min_run_time / rounds, threads))
    spread = max(max(values) / min(values) for values in times.values())
    return {name: statistics.median(values) for name, values in times.items()}, spread


def grasp_iteration(planner: GRASPPlanner, td: TensorDict):
    """A closure running one iteration of ``GRASPPlanner._solve``'s loop: the planner's own
    :func:`~torchrl_grasp.planners.grasp.collocation_iteration` with its model call and loss
    (compiled with ``compile=True``), on the planner's initial plan."""
    context = planner.make_context(td)
    plan, _ = planner._initial_plan(context)
    optimizer = planner.optimizer(plan)
    actions = plan["actions"]
    virtual = [plan["virtual_states"].get(key) for key in context.problem.state_keys]
    settings = dict(goal_weight=schedule_value(planner.goal_weight, 0), noise_std=schedule_value(planner.state_noise_std, 0))

    def iteration():
        # As in plan(): the model's noise fixed (the call reseeds the global RNG). plan() forks the
        # RNG state once per plan; here it is once per iteration, so this is an upper bound.
        with planner.model_step.fixed_noise(0, context.device):
            collocation_iteration(
                context, actions, virtual, optimizer, forward=planner.collocation_forward, **settings
            )

    return iteration, context, plan


def per_step_loop(planner: GRASPPlanner, model: nn.Module, context, plan):
    """The same iteration written as a Python loop over t, on copies of the same tensors: the bare
    model per step, the predictions stacked, the reference loss, the planner's Adam, noise and bounds."""
    start = context.problem.start["observation"]
    goal = context.problem.objective.goal["observation"]
    plan = plan.apply(plan_variable)
    actions, virtual = plan["actions"], plan["virtual_states", "observation"]
    optimizer = planner.optimizer(plan)
    goal_weight = schedule_value(planner.goal_weight, 0)
    noise_std = schedule_value(planner.state_noise_std, 0)
    horizon = actions.shape[1]

    def iteration():
        predictions = []
        for t in range(horizon):
            state = start if t == 0 else virtual[:, t - 1].detach()
            predictions.append(model(state, actions[:, t]))
        loss = collocation_loss_reference(torch.stack(predictions, dim=1), virtual, goal, goal_weight)
        descend(optimizer, loss, [virtual, actions])
        with torch.no_grad():
            virtual.add_(context.normal(virtual.shape), alpha=noise_std)
            virtual[:, -1] = goal
            actions.copy_(context.clamp(actions))

    return iteration


def floor(model: nn.Module, batch: int, steps: int, dim: int):
    """One forward + backward of the bare model on ``[B*T]``, backward w.r.t. the actions only."""
    states = torch.randn(batch * steps, dim)
    actions = torch.rand(batch * steps, ACTION_DIM).mul_(2).sub_(1).requires_grad_()

    def forward_backward():
        out = model(states, actions)
        torch.autograd.grad(out.sum(), [actions])

    return forward_backward


def time_config(batch, steps, dim, width, activation, args):
    torch.manual_seed(0)
    model, env = make_env(dim, width, activation)
    planner = GRASPPlanner(env, planning_horizon=steps, optim_steps=100, sync=None)
    td = make_start(batch, dim)
    with torch.enable_grad():
        iteration, context, plan = grasp_iteration(planner, td)
        loop = per_step_loop(planner, model, context, plan)
        bare = floor(model, batch, steps, dim)
        for fn in (iteration, loop, bare):  # warm-up: layout caches, allocator, Adam state
            fn()
        medians, spread = interleaved_medians(
            dict(iteration=iteration, floor=bare, loop=loop), args.min_run_time, args.threads, args.rounds
        )
    return {f"{name}_s": seconds for name, seconds in medians.items()} | {"spread": spread}


def eager_and_compiled(batch, steps, dim, width, activation, args):
    """One iteration eager and with ``GRASPPlanner(compile=True)``'s compiled model call and loss,
    interleaved; and the seconds of the first compiled call (the compilation)."""
    torch.manual_seed(0)
    _, env = make_env(dim, width, activation)
    td = make_start(batch, dim)
    previous = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        with torch.enable_grad():
            eager, _, _ = grasp_iteration(GRASPPlanner(env, planning_horizon=steps, sync=None), td)
            planner = GRASPPlanner(env, planning_horizon=steps, sync=None, compile=True)
            compiled, _, _ = grasp_iteration(planner, td)
            start = now()
            compiled()
            compile_s = now() - start
            eager()
            medians, spread = interleaved_medians(
                dict(eager=eager, compiled=compiled), args.min_run_time, args.threads, args.rounds
            )
    finally:
        torch.set_num_threads(previous)
    return {
        "eager_s": medians["eager"], "compiled_s": medians["compiled"], "compile_s": compile_s, "spread": spread
    }


def sync_share(batch, steps, dim, width, activation, args, parallel=False):
    torch.manual_seed(0)
    _, env = make_env(dim, width, activation)
    sync = TimedParallelGDSync() if parallel else TimedGDSync()
    planner = GRASPPlanner(env, planning_horizon=steps, optim_steps=args.sync_optim_steps, sync=sync)
    td = make_start(batch, dim)
    plan_times, sync_times, calls = [], [], 0
    previous = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        planner.plan(td)  # warm-up
        for _ in range(args.sync_repeats):
            planner.reset()  # no warm start: every repeat solves the same problem
            sync.seconds[0], sync.calls[0] = 0.0, 0
            start = now()
            result = planner.plan(td)
            plan_times.append(now() - start)
            sync_times.append(sync.seconds[0])
            calls, fallbacks = result.model_calls, result.serial_fallbacks
    finally:
        torch.set_num_threads(previous)
    plan_s, sync_s = statistics.median(plan_times), statistics.median(sync_times)
    return dict(
        plan_s=plan_s,
        sync_s=sync_s,
        share=sum(sync_times) / sum(plan_times),
        model_calls=calls,
        sync_calls=sync.calls[0],  # the last repeat's, as model_calls
        fallbacks=fallbacks,
        gd_steps=result.iterations // sync.every * sync.steps,
        # the rest of the plan's time per iteration (its collocation step; the evaluations too)
        iteration_s=(plan_s - sync_s) / result.iterations,
    )


def deadline_overshoot(batch, steps, dim, width, activation, args):
    """Plans with ``time_budget=args.deadline``: median wall time, iterations, time past the budget."""
    torch.manual_seed(0)
    _, env = make_env(dim, width, activation)
    planner = GRASPPlanner(env, planning_horizon=steps, optim_steps=1_000_000, time_budget=args.deadline)
    td = make_start(batch, dim)
    plan_times, iterations = [], []
    previous = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        planner.plan(td)  # warm-up
        for _ in range(args.sync_repeats):
            planner.reset()
            start = now()
            result = planner.plan(td)
            plan_times.append(now() - start)
            iterations.append(result.iterations)
            assert result.status == "deadline", result.status
    finally:
        torch.set_num_threads(previous)
    plan_s = statistics.median(plan_times)
    return dict(plan_s=plan_s, iterations=statistics.median(iterations), over_s=plan_s - args.deadline)


def full_plans(horizon: int, args) -> dict[str, float]:
    """Median seconds of a full plan (no early stop) on the smooth wall-door world, 4 problems:
    GRASP at the benchmark's published settings with each sync and without one (its iterations
    alone: the least a plan of 300 can cost), and the package's CEM."""
    env = TransitionModelEnv(
        SmoothWallDoor(), Unbounded(2), Bounded(-1.0, 1.0, (2,)), device=torch.get_default_device()
    )
    td = TensorDict(
        observation=torch.tensor([[-0.6, 0.6], [-0.6, -0.5], [0.6, 0.5], [0.5, -0.6]]),
        goal=torch.tensor([[0.6, 0.5], [0.6, -0.6], [-0.6, -0.4], [-0.5, 0.6]]),
        batch_size=[4],
    )
    planners = {
        "grasp (GDSync)": make_planner("grasp", env, horizon),
        "grasp (ParallelGDSync)": make_planner("grasp-parallel-sync", env, horizon),
        # the 300 collocation iterations and one evaluation: what a plan costs with a free sync
        "grasp (no sync: the iterations alone)": make_planner("grasp-no-sync", env, horizon),
        "cem": make_planner("cem", env, horizon),
    }
    previous = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        seconds = {}
        for name, planner in planners.items():
            planner.plan(td)  # warm-up
            timings = []
            for _ in range(args.sync_repeats):
                planner.reset()
                start = now()
                planner.plan(td)
                timings.append(now() - start)
            seconds[name] = statistics.median(timings)
    finally:
        torch.set_num_threads(previous)
    return seconds


def check_targets(rows) -> None:
    """Per T=256 row, whether each target is met, plainly."""
    targets = [row for row in rows if row["steps"] == TARGET_HORIZON]
    if not targets:
        print(f"Targets: not checked, no row has T={TARGET_HORIZON}.")
        return
    met = 0
    for row in targets:
        overhead = row["iteration_s"] / row["floor_s"]
        speedup = row["loop_s"] / row["iteration_s"]
        ok_overhead, ok_speedup = overhead <= TARGET_OVERHEAD, speedup >= TARGET_SPEEDUP
        met += ok_overhead and ok_speedup
        ceiling = row["loop_s"] / row["floor_s"]
        print(
            f"T={TARGET_HORIZON} B={row['batch']} D={row['dim']} width={row['width']}: "
            f"iteration/floor {overhead:.2f} {'MET' if ok_overhead else 'MISSED'} "
            f"(target <= {TARGET_OVERHEAD}); "
            f"loop/iteration {speedup:.1f} {'MET' if ok_speedup else 'MISSED'} "
            f"(target >= {TARGET_SPEEDUP:.0f}; loop/floor, the most any iteration could reach here, "
            f"is {ceiling:.1f})"
        )
    print(f"Both targets met in {met} of {len(targets)} rows at T={TARGET_HORIZON}.")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dims", type=int, nargs="+", default=[4, 32, 256])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--horizons", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--activation", default="relu", choices=["relu", "silu"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds of timing per cell and side")
    parser.add_argument("--rounds", type=int, default=3, help="turns the sides take, sharing --min-run-time")
    parser.add_argument("--sync-dims", type=int, nargs="+", default=[32])
    parser.add_argument("--sync-widths", type=int, nargs="+", default=[64])
    parser.add_argument("--sync-batches", type=int, nargs="+", default=[16])
    parser.add_argument("--sync-horizons", type=int, nargs="+", default=None, help="defaults to --horizons")
    parser.add_argument("--sync-optim-steps", type=int, default=100, help="optim_steps of each timed plan")
    parser.add_argument("--sync-repeats", type=int, default=3, help="timed plans per sync config")
    parser.add_argument("--deadline", type=float, default=0.25, help="time_budget (s) of the deadline table's plans")
    parser.add_argument(
        "--full-plan-horizon", type=int, default=80, help="H of the full-plan table (GRASP vs CEM); 0 skips it"
    )
    parser.add_argument(
        "--no-compile", dest="compile", action="store_false", help="skip the eager-vs-compiled table"
    )
    parser.add_argument("--device", default="cpu", help="where the models and plans live (cuda on a GPU)")
    parser.add_argument("--quick", action="store_true", help="a tiny grid with short timings")
    args = parser.parse_args(argv)
    if args.quick:
        args.dims, args.widths, args.horizons, args.batches = [4], [64], [16], [1]
        args.min_run_time, args.rounds = 0.05, 1
        args.sync_dims, args.sync_widths, args.sync_batches, args.sync_repeats = [4], [64], [1], 1
        args.deadline, args.full_plan_horizon = 0.05, 0
    if args.sync_horizons is None:
        args.sync_horizons = args.horizons
    activation = {"relu": nn.ReLU, "silu": nn.SiLU}[args.activation]
    with torch.device(args.device):  # every model, start and goal below is made there
        return _run(args, activation)


def _run(args, activation):
    """The tables, for ``main``'s parsed ``args``, on the default device."""
    print(
        f"torch {torch.__version__}, device {args.device}, float32, threads {args.threads}, "
        f"residual MLP (2 hidden layers, {args.activation}), action dim {ACTION_DIM}"
    )
    print()
    print(
        "| B | T | D | width | iteration (ms) | floor (ms) | iteration/floor "
        "| per-step loop (ms) | loop/iteration |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for batch, steps, dim, width in itertools.product(args.batches, args.horizons, args.dims, args.widths):
        row = dict(batch=batch, steps=steps, dim=dim, width=width)
        row.update(time_config(batch, steps, dim, width, activation, args))
        rows.append(row)
        print(
            f"| {batch} | {steps} | {dim} | {width} | {row['iteration_s'] * 1e3:.3f} "
            f"| {row['floor_s'] * 1e3:.3f} | {row['iteration_s'] / row['floor_s']:.2f} "
            f"| {row['loop_s'] * 1e3:.3f} | {row['loop_s'] / row['iteration_s']:.1f} |",
            flush=True,
        )

    unsteady = [row for row in rows if row["spread"] > UNSTEADY_SPREAD]
    if unsteady:
        print()
        print(
            f"Unsteady (a side's {args.rounds} round medians differ by more than {UNSTEADY_SPREAD}x, "
            "load on the machine likely; rerun these with --batches/--horizons/--dims/--widths): "
            + ", ".join(
                f"B={row['batch']} T={row['steps']} D={row['dim']} width={row['width']} "
                f"({row['spread']:.1f}x)"
                for row in unsteady
            )
        )

    print()
    print(
        f"plan() with sync=GDSync(every=50, steps=10), optim_steps={args.sync_optim_steps} "
        f"(median of {args.sync_repeats} plans; share = total time in the sync / total plan time):"
    )
    print()
    print(
        "| B | T | D | width | plan (ms) | in sync (ms) | sync share | model calls "
        "| in sync per serial step (us) | parallel: plan (ms) | in sync (ms) | sync share | serial fallbacks "
        "| calls / GD step | sync call / iteration |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    sync_rows = []
    for batch, steps, dim, width in itertools.product(
        args.sync_batches, args.sync_horizons, args.sync_dims, args.sync_widths
    ):
        row = dict(batch=batch, steps=steps, dim=dim, width=width)
        row.update(sync_share(batch, steps, dim, width, activation, args))
        parallel = sync_share(batch, steps, dim, width, activation, args, parallel=True)
        row.update({f"parallel_{key}": value for key, value in parallel.items()})
        sync_rows.append(row)
        print(
            f"| {batch} | {steps} | {dim} | {width} | {row['plan_s'] * 1e3:.1f} | {row['sync_s'] * 1e3:.1f} "
            f"| {row['share']:.0%} | {row['model_calls']} | {row['sync_s'] / row['sync_calls'] * 1e6:.0f} "
            f"| {parallel['plan_s'] * 1e3:.1f} | {parallel['sync_s'] * 1e3:.1f} | {parallel['share']:.0%} "
            f"| {parallel['fallbacks']} | {parallel['sync_calls'] / parallel['gd_steps']:.1f} "
            f"| {parallel['sync_s'] / parallel['sync_calls'] / parallel['iteration_s']:.2f} |",
            flush=True,
        )
    print()
    print(
        "(parallel sync: calls / GD step is its batched model calls per GD step, Newton's and the adjoint's; "
        "sync call / iteration is one of them against the rest of the plan per iteration. With k calls of "
        "relative cost c per GD step and g GD steps per iteration, the share is k c g / (1 + k c g): at the "
        "default schedule, g = 0.2, a share of 30% needs k c <= 2.1.)"
    )

    print()
    print(
        f"plan() with time_budget={args.deadline:g} s and the default sync, iterations uncapped "
        f"(median of {args.sync_repeats} plans; past = plan time - budget; iteration = plan time / iterations):"
    )
    print()
    print("| B | T | D | width | plan (ms) | iterations | past the budget (ms) | one sync step (ms) | past / sync step |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for sync_row in sync_rows:
        batch, steps, dim, width = (sync_row[key] for key in ("batch", "steps", "dim", "width"))
        row = deadline_overshoot(batch, steps, dim, width, activation, args)
        sync_step_s = sync_row["sync_s"] / (sync_row["sync_calls"] / steps)  # its serial steps, T per GD step
        print(
            f"| {batch} | {steps} | {dim} | {width} | {row['plan_s'] * 1e3:.1f} | {row['iterations']:.0f} "
            f"| {row['over_s'] * 1e3:.1f} | {sync_step_s * 1e3:.1f} | {row['over_s'] / sync_step_s:.2f} |",
            flush=True,
        )

    if args.full_plan_horizon:
        print()
        seconds = full_plans(args.full_plan_horizon, args)
        print(
            f"Full plans at H={args.full_plan_horizon} on SmoothWallDoor, 4 problems, benchmark settings without "
            f"the early stop (GRASP 300 iterations, 8 restarts; CEM 30 x 300), median of {args.sync_repeats}:"
        )
        print()
        print("| planner | plan (s) | / cem |")
        print("|---|---:|---:|")
        for name, value in seconds.items():
            print(f"| {name} | {value:.2f} | {value / seconds['cem']:.2f} |")

    if args.compile:
        print()
        print(
            "One iteration eager and compiled (GRASPPlanner(compile=True): the model call and loss through "
            "torch.compile's default backend), interleaved medians; compilation = the first compiled call:"
        )
        print()
        print("| B | T | D | width | eager (ms) | compiled (ms) | eager / compiled | compilation (s) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for sync_row in sync_rows:
            batch, steps, dim, width = (sync_row[key] for key in ("batch", "steps", "dim", "width"))
            row = eager_and_compiled(batch, steps, dim, width, activation, args)
            print(
                f"| {batch} | {steps} | {dim} | {width} | {row['eager_s'] * 1e3:.3f} "
                f"| {row['compiled_s'] * 1e3:.3f} "
                f"| {row['eager_s'] / row['compiled_s']:.2f} | {row['compile_s']:.1f} |",
                flush=True,
            )

    print()
    check_targets(rows)
    return rows, sync_rows


if __name__ == "__main__":
    main()
