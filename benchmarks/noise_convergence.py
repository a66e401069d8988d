"""What GRASP's state noise buys on a point mass: goals reached after a given number of iterations.

The docstring's point mass (``s' = s + 0.1 a``, actions in ``[-1, 1]^2``), 96 goals drawn
uniformly in ``[-1.5, 1.5]^2`` from the origin, GRASP at its default learning rates
(``lr_states=0.1``) but ``lr_actions=0.05``, horizon 20, a GD sync every 25 iterations, one
restart. Printed per iteration count and noise: the goals whose planned rollout ends within
0.05, and the median distance. It takes about 7 s on one core; ``tests/test_planner.py`` runs
its 100-iteration cells.

    python benchmarks/noise_convergence.py
    python benchmarks/noise_convergence.py --iterations 100 300 --goals 256
"""

from __future__ import annotations

import argparse

import torch
from tensordict import TensorDict
from torchrl.data import Bounded, Unbounded

from torchrl_grasp import GDSync, GRASPPlanner, TransitionModelEnv
from torchrl_grasp.planners import SyncPhaseDecay

NOISES = {"none": 0.0, "0.005": 0.005, "0.02": 0.02, "decay 0.005": SyncPhaseDecay(0.005, every=25)}


class PointMass(torch.nn.Module):
    def forward(self, state, action):
        return state + 0.1 * action


def make_goals(count: int) -> torch.Tensor:
    """``count`` goals uniform in ``[-1.5, 1.5]^2``, the same on every run."""
    return (torch.rand(count, 2, generator=torch.Generator().manual_seed(1)) * 2 - 1) * 1.5


def goals_reached(iterations: int, noise, goals: torch.Tensor) -> tuple[int, float]:
    """Goals within 0.05 of the planned rollout's end, and the median distance."""
    env = TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,)))
    planner = GRASPPlanner(
        env, 20, optim_steps=iterations, lr_actions=0.05, sync=GDSync(every=25),
        state_noise_std=noise, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    problem = TensorDict(observation=torch.zeros_like(goals), goal=goals, batch_size=goals.shape[:1])
    distance = planner.plan(problem).goal_distance
    return int((distance < 0.05).sum()), float(distance.median())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, nargs="+", default=[50, 100, 150])
    parser.add_argument("--goals", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    goals = make_goals(args.goals)
    print(f"| iterations | {' | '.join(NOISES)} |")
    print(f"|---:|{'---:|' * len(NOISES)}")
    for iterations in args.iterations:
        cells = [goals_reached(iterations, noise, goals) for noise in NOISES.values()]
        print(f"| {iterations} | " + " | ".join(f"{n}/{args.goals} ({median:.3f})" for n, median in cells) + " |")


if __name__ == "__main__":
    main()
