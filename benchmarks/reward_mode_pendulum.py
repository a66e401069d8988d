"""Planning by reward at Pendulum scale: a learned MLP world model, TorchRL's CEM beside the package's planners.

The world model is ``examples/planet_loop.py``'s (a residual MLP and a reward head on the
observation) fitted on 10 episodes of 100 random held actions in ``Pendulum-v1`` with an action
repeat of 2 (1000 transitions). Each planner acts in the real env for 100 actions
(``env.rollout``, replanning every action, horizon 15) from the start states of env seeds
``--starts``, a fresh planner per episode. Printed per planner: the mean return with a 95%
interval (t, over the episodes), each episode's return, and the planning seconds per action.

    python benchmarks/reward_mode_pendulum.py cem gd grasp-defaults     # about 15 minutes on one core
    python benchmarks/reward_mode_pendulum.py --starts 0 1 cem planet-example
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
from torchrl.modules.planners import CEMPlanner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from planet_loop import PendulumModelEnv, Timed, fit_world_model, make_real_env, random_policy, run_episode

from torchrl_grasp import CEMSync, GDSync, GradientPlanner, GRASPPlanner

T_975 = {
    2: 12.71,
    3: 4.30,
    4: 3.18,
    5: 2.78,
    6: 2.57,
    8: 2.36,
    10: 2.26,
}  # Student's t, n - 1 degrees of freedom by n


def planners(model_env, seed: int) -> dict:
    """The settings compared, by name: factories of a fresh planner, horizon 15, by the model's reward."""

    def generator():
        return torch.Generator().manual_seed(seed)

    def example(optim_steps: int, sync, num_restarts: int = 1):
        """GRASP with ``examples/planet_loop.py``'s rates and noise, the given iterations, sync and restarts."""
        return lambda: GRASPPlanner(
            model_env, 15, optim_steps, lr_actions=0.1, lr_states=0.05, state_noise_std=0.05, sync=sync,
            num_restarts=num_restarts, reward_key="reward", generator=generator(),
        )  # fmt: skip

    return {
        "cem": lambda: CEMPlanner(model_env, 15, optim_steps=8, num_candidates=200, top_k=20),
        "gd": lambda: GradientPlanner(
            model_env, 15, 40, lr=0.1, num_restarts=4, reward_key="reward", generator=generator()
        ),
        "gd-defaults": lambda: GradientPlanner(model_env, 15, reward_key="reward", generator=generator()),
        "grasp-defaults": lambda: GRASPPlanner(model_env, 15, reward_key="reward", generator=generator()),
        "planet-example": example(30, GDSync(every=30, steps=10, lr=0.3), num_restarts=4),
        "example-1-restart": example(30, GDSync(every=30, steps=10, lr=0.3)),
        "example-2-restarts": example(30, GDSync(every=30, steps=10, lr=0.3), num_restarts=2),
        "grasp-100": example(100, GDSync(every=50, steps=10, lr=0.3)),
        "grasp-shoot": example(20, GDSync(every=10, steps=10, lr=0.1), num_restarts=4),
        "grasp-cem": example(30, CEMSync(every=30, iterations=8, samples=200, top_k=20, std=0.5)),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "planners",
        nargs="+",
        help="any of: cem gd gd-defaults grasp-defaults planet-example example-1-restart example-2-restarts grasp-100 grasp-shoot grasp-cem",
    )
    parser.add_argument(
        "--starts", nargs="+", type=int, default=[0, 1, 2, 3], help="env seeds of the episodes"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    env = make_real_env(2)
    policy = random_policy(env, 0)
    data = torch.cat([run_episode(env, policy, 100, 10_000 + i, i) for i in range(10)])
    model_env = PendulumModelEnv(fit_world_model(data, 64, 1500, 0), env)
    for name in args.planners:
        returns, seconds = [], 0.0
        for start in args.starts:
            planner = Timed(planners(model_env, start)[name]())
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(start)  # TorchRL's CEMPlanner samples from the global RNG
                episode = run_episode(env, planner, 100, start, 0)
            returns.append(float(episode["next", "reward"].sum()))
            seconds += planner.seconds
        half = (
            T_975.get(len(returns), 2.0) * statistics.stdev(returns) / len(returns) ** 0.5
            if len(returns) > 1
            else float("nan")
        )
        row = dict(planner=name, mean=round(statistics.mean(returns), 1), half_95=round(half, 1))
        row.update(
            returns=[round(r, 1) for r in returns],
            seconds_per_action=round(seconds / (100 * len(returns)), 3),
        )
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
