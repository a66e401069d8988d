"""A PlaNet-style loop on ``Pendulum-v1``: collect, fit a world model, plan with GRASP or CEM, repeat.

What it shows, with TorchRL's pieces:

1. **Collect.** A few episodes of random actions (held 1 to 5 steps) in the real env,
   ``TransformedEnv(GymEnv("Pendulum-v1"), FrameSkipTransform(2))``: each action is held for two
   steps, PlaNet's "action repeat", and ``env.rollout`` records the transitions.
2. **Fit a world model** on all data so far, from scratch: the package's residual MLP
   (``ResidualMLP``, ``train_model``) on the observation (cos, sin, angular velocity) and the
   action predicts the next observation, and a reward head ``r(s)`` predicts the reward from the
   observation. One ``TensorDictModule`` reads ``"observation"`` and ``"action"`` and writes the
   next ``"observation"`` and ``"reward"``, the reward read from the predicted observation as
   PlaNet's and Dreamer's reward models read the latent state (TorchRL's ``WorldModelWrapper``
   chains them the same way). ``PendulumModelEnv``, a short ``ModelBasedEnvBase`` (what
   ``DreamerEnv`` is for a latent state), makes it an env that both planners plan on.
3. **Act** in the real env with the planner as ``env.rollout``'s policy, replanning at every
   action (MPC): ``GRASPPlanner(model_env, 15, reward_key="reward", ...)``, which plans by the
   model's reward because the input has no goal, or TorchRL's own ``CEMPlanner``, which scores
   its samples by the ``("next", "reward")`` of the model env's rollouts. The episodes join the
   data.
4. **Repeat** for ``--iterations``, once per planner, with the same seeds: the same random data,
   so the same first model, and the same start states for the acting episodes of an iteration,
   two per iteration (the same data budget for both).

It prints a line per iteration and planner (the acting episodes' returns, planning seconds, the
model's one-step errors on those episodes, which it was not fitted on), a table beside the
return of random actions from the same start states, and saves ``planet_loop.png`` (the return
per iteration, a line per planner) under ``--out``.

Not PlaNet: PlaNet learns a latent RSSM from pixels; here the state is observed and the model
is a deterministic MLP on it, with no exploration noise on the acting actions. PlaNet's CEM is
larger (horizon 12, 1000 samples, 10 iterations, the top 100).

**The planners' settings.** TorchRL's ``CEMPlanner``: horizon 15, 8 iterations of 200 samples,
the top 20; it starts from N(0, 1) at every step (it has no warm start) and draws from the
global RNG, seeded here per episode. GRASP: horizon 15, 30 iterations with ``lr_actions=0.1``,
``lr_states=0.05``, ``state_noise_std=0.05`` and 4 restarts, then one ``"gd"`` sync of 10 Adam
steps of lr 0.3 on the model's serial return; it warm-starts from its previous plan. The figures
below were measured when GRASP's collocation gave the reward to the actions one step ahead only
(the long-horizon credit came from the sync); it now also reaches the virtual states
(:class:`~torchrl_grasp.GRASPPlanner`, "Planning by reward"), and they were not re-run. While tuning, on a model fitted on 1000 random
transitions, planning 15 actions from 5 start states, the mean model return of a plan was
-138.9 for this CEM and -143.0 for this GRASP; -149.2 without its restarts and noise, -158.8
with a sync lr of 0.1 as well, -166.8 with 100 collocation iterations and a single sync step;
``reward_weight`` 0.1 or 10 instead of 1 moved it by less than 1.

Full size (6 iterations of 2 episodes of 200 steps, both planners: about 10 minutes on one core;
this run took 611 s on a 2-core machine shared with other jobs)::

    python examples/planet_loop.py
    python examples/planet_loop.py --planners GRASP --iterations 10 --out results/

printed (seed 0; the returns are deterministic, the seconds are not: GRASP's first two
iterations shared the core with a test run)::

    mean return of the acting episodes (random: random actions from the same start states)
    iteration   random    GRASP  GRASP s      CEM    CEM s
            1  -1280.8   -260.9    112.3  -1367.8     24.3
            2  -1188.3   -275.0     84.0   -228.9     22.6
            3  -1213.7   -172.9     58.8   -158.5     23.4
            4  -1108.2   -143.6     55.2   -175.1     22.9
            5  -1231.5   -136.7     50.7   -123.6     24.6
            6  -1119.8   -144.5     47.0   -177.6     22.9
          all  -1190.4   -188.9    408.0   -371.9    140.8

With the first model (fitted on 200 random transitions) GRASP swings the pendulum up and holds
it, within 0.3 rad of upright over the last 60 steps of both episodes, while CEM pumps energy but
never comes within 1.6 rad of upright and does worse than random actions. A single fresh plan is
not where GRASP wins: from 10 states along CEM's failed episode, GRASP's plan scored higher in
that model at 4 and CEM's at 6; what differs in closed loop is likely that GRASP refines its
previous plan at every step while CEM starts afresh. From the second model on the two are even:
over iterations 2 to 6 the mean return is -174.5 for GRASP and -172.7 for CEM, and **CEM plans
faster**: 0.11 to 0.12 s per action against 0.24 to 0.28 s for GRASP where the core was not
shared (iterations 4 to 6; 2.2 times). One run, two start states per iteration: the returns vary
with the start state by more than the planners differ after iteration 1.

Smoke run (2 iterations of one 60-step episode, a smaller model: about 25 s)::

    python examples/planet_loop.py --quick
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule
from torch import Tensor, nn
from torchrl.data import Composite, Unbounded
from torchrl.envs import EnvBase, FrameSkipTransform, GymEnv, TransformedEnv
from torchrl.envs.model_based import ModelBasedEnvBase
from torchrl.modules.planners import CEMPlanner

from torchrl_grasp import GDSync, GRASPPlanner
from torchrl_grasp.world_models.data import TransitionData
from torchrl_grasp.world_models.exploration import HeldRandomActionPolicy
from torchrl_grasp.world_models.mlp import NetworkConfig, ResidualMLP
from torchrl_grasp.world_models.training import TrainingConfig, train_model

PLANNERS = ("GRASP", "CEM")


def make_real_env(action_repeat: int) -> TransformedEnv:
    """``Pendulum-v1`` with each action held for ``action_repeat`` steps (rewards summed), as PlaNet does."""
    return TransformedEnv(GymEnv("Pendulum-v1"), FrameSkipTransform(action_repeat))


# -- the world model -------------------------------------------------------------------------


class RewardHead(nn.Module):
    """``r(s)``: the reward an MLP predicts for the observation ``s`` ``[*B, D]``, as ``[*B, 1]``.

    Its input and output are normalised by the statistics of the data it was fitted on.
    """

    def __init__(self, state_dim: int, hidden: int, generator: torch.Generator):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(state_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 1),
        )
        with torch.no_grad():  # nn.Linear's initialisation, drawn from ``generator``
            for layer in self.net[::2]:
                bound = layer.in_features**-0.5
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
        for name, dim in (("state", state_dim), ("reward", 1)):
            self.register_buffer(f"{name}_mean", torch.zeros(dim))
            self.register_buffer(f"{name}_std", torch.ones(dim))

    def forward(self, state: Tensor) -> Tensor:
        return self.net((state - self.state_mean) / self.state_std) * self.reward_std + self.reward_mean

    def fit(self, states: Tensor, rewards: Tensor, steps: int, generator: torch.Generator) -> None:
        """Adam on the squared error ``[N, D] -> [N, 1]``, minibatches of 256 drawn from ``generator``."""
        for name, data in (("state", states), ("reward", rewards)):
            getattr(self, f"{name}_mean").copy_(data.mean(0))
            getattr(self, f"{name}_std").copy_(data.std(0).clamp_min(1e-6))
        optimizer = torch.optim.Adam(self.parameters(), lr=3e-3)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=3e-3 / 20)
        for _ in range(steps):
            index = torch.randint(len(states), (256,), generator=generator)
            loss = ((self(states[index]) - rewards[index]) / self.reward_std).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()


class PendulumWorldModel(nn.Module):
    """``(s, a) -> (s', r(s'))``: the transition, then the reward head on the predicted observation.

    The reward is read from the state the model arrives in, as PlaNet's and Dreamer's reward
    models read the latent state (TorchRL's ``WorldModelWrapper`` chains them the same way).
    """

    def __init__(self, transition: ResidualMLP, reward: RewardHead):
        super().__init__()
        self.transition, self.reward = transition, reward

    def forward(self, observation: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        next_observation = self.transition(observation, action)
        return next_observation, self.reward(next_observation)


def fit_world_model(data: TensorDictBase, hidden: int, train_steps: int, seed: int) -> TensorDictModule:
    """Fits the transition and the reward head on every transition of ``data`` ``[N]``, from scratch.

    The transition is the package's residual MLP (:class:`ResidualMLP`, fitted by
    :func:`train_model` on the one-step loss); the reward head learns ``r(s_t)`` from the pairs
    ``(s_t, r_t)``. Returns the frozen ``TensorDictModule`` that reads ``"observation"`` and
    ``"action"`` and writes the next ``"observation"`` and ``"reward"``.
    """
    generators = [torch.Generator().manual_seed(seed * 3 + offset) for offset in range(3)]
    states, actions = data["observation"], data["action"]
    transition = ResidualMLP(3, 1, NetworkConfig(hidden_size=hidden, num_layers=2), generator=generators[0])
    train_model(
        transition,
        TransitionData(states, actions, data["next", "observation"], data["episode"]),
        TrainingConfig(steps=train_steps, batch_size=256, lr=3e-3),
        generator=generators[1],
        progress=False,
    )
    reward = RewardHead(3, hidden, generators[2])
    reward.fit(states, data["next", "reward"], train_steps, generators[2])
    model = PendulumWorldModel(transition, reward).requires_grad_(False)
    return TensorDictModule(model, in_keys=["observation", "action"], out_keys=["observation", "reward"])


class PendulumModelEnv(ModelBasedEnvBase):
    """The world model as a TorchRL model-based env, what ``DreamerEnv`` is for a latent state.

    ``ModelBasedEnvBase._step`` calls the world model and keeps the ``"observation"`` and
    ``"reward"`` it writes; a reset starts from the observation it is given; it never ends.
    """

    def __init__(self, world_model: TensorDictModule, real_env: EnvBase):
        super().__init__(world_model)
        shape = real_env.observation_spec["observation"].shape
        self.observation_spec = Composite(observation=Unbounded(shape))
        self.state_spec = self.observation_spec.clone()
        self.action_spec = real_env.action_spec.clone()
        self.reward_spec = Unbounded((1,))

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        return tensordict.select("observation").clone()


# -- the planners ----------------------------------------------------------------------------


def make_planner(name: str, model_env: ModelBasedEnvBase, horizon: int, seed: int):
    """GRASP or TorchRL's CEM on ``model_env``, planning by the model's reward over ``horizon`` steps."""
    if name == "CEM":
        return CEMPlanner(model_env, horizon, optim_steps=8, num_candidates=200, top_k=20)
    return GRASPPlanner(
        model_env,
        horizon,
        optim_steps=30,
        lr_actions=0.1,
        lr_states=0.05,
        state_noise_std=0.05,
        sync=GDSync(every=30, steps=10, lr=0.3),
        num_restarts=4,
        reward_key="reward",
        generator=torch.Generator().manual_seed(seed),
    )


class Timed:
    """A policy that adds up the seconds the policy it wraps takes."""

    def __init__(self, policy):
        self.policy, self.seconds = policy, 0.0

    def __call__(self, tensordict: TensorDictBase) -> TensorDictBase:
        began = time.perf_counter()
        out = self.policy(tensordict)
        self.seconds += time.perf_counter() - began
        return out


# -- the loop --------------------------------------------------------------------------------


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@dataclass(frozen=True)
class LoopSettings:
    """One run of the loop; both planners get the same (and so the same random data, models at
    iteration 1 and start states)."""

    iterations: int = 6
    seed_episodes: int = 2
    episodes_per_iteration: int = 2
    episode_steps: int = 200
    action_repeat: int = 2
    horizon: int = 15
    hidden: int = 64
    train_steps: int = 1500
    seed: int = 0

    @property
    def decisions(self) -> int:
        """Planner calls per episode: the env steps over the action repeat."""
        return self.episode_steps // self.action_repeat


def run_episode(env: EnvBase, policy, decisions: int, env_seed: int, index: int) -> TensorDict:
    """One episode of ``decisions`` steps from the start state that ``env_seed`` draws, tagged ``index``."""
    env.set_seed(env_seed)
    with torch.no_grad():
        rollout = env.rollout(decisions, policy)
    rollout["episode"] = torch.full(rollout.batch_size, index)
    return rollout


def random_policy(env: EnvBase, seed: int) -> HeldRandomActionPolicy:
    """Uniform random actions, each held for 1 to 5 steps: the seed episodes' policy, and the baseline."""
    generator = torch.Generator().manual_seed(seed)
    return HeldRandomActionPolicy(env.action_spec, max_hold_steps=5, generator=generator)


def episode_seeds(settings: LoopSettings, iteration: int) -> list[int]:
    """The env seeds (start states) of an iteration's acting episodes: the same for every planner."""
    first = settings.seed + iteration * settings.episodes_per_iteration
    return list(range(first, first + settings.episodes_per_iteration))


@torch.no_grad()
def model_errors(world_model: TensorDictModule, episodes: TensorDictBase) -> tuple[float, float]:
    """RMS one-step errors of the model on ``episodes``: of the next observation, and of the reward head."""
    model = world_model.module
    observation, reward = episodes["observation"], episodes["next", "reward"]
    predicted, _ = model(observation, episodes["action"])
    return (
        float((predicted - episodes["next", "observation"]).square().mean().sqrt()),
        float((model.reward(observation) - reward).square().mean().sqrt()),
    )


def planet_loop(name: str, settings: LoopSettings) -> list[dict]:
    """Random episodes, then ``settings.iterations`` times: fit the model on all data, act, add the episodes.

    Returns one row per iteration: the acting episodes' returns, the seconds spent planning and
    fitting, and the model's one-step errors on the new episodes (which it was not fitted on).
    """
    env = make_real_env(settings.action_repeat)
    seed_policy = random_policy(env, settings.seed)
    episodes = [
        run_episode(env, seed_policy, settings.decisions, settings.seed + 10_000 + i, i)
        for i in range(settings.seed_episodes)
    ]
    rows = []
    for iteration in range(settings.iterations):
        began = time.perf_counter()
        seed = settings.seed + iteration
        world_model = fit_world_model(torch.cat(episodes), settings.hidden, settings.train_steps, seed)
        training_seconds = time.perf_counter() - began
        model_env = PendulumModelEnv(world_model, env)
        transitions = sum(len(e) for e in episodes)
        acted, planning_seconds = [], 0.0
        for env_seed in episode_seeds(settings, iteration):
            # A fresh planner per episode: GRASP's warm start must not carry over from the last one.
            planner = Timed(make_planner(name, model_env, settings.horizon, seed))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(env_seed)  # TorchRL's CEMPlanner samples from the global RNG
                acted.append(run_episode(env, planner, settings.decisions, env_seed, len(episodes)))
            episodes.append(acted[-1])
            planning_seconds += planner.seconds
        returns = [float(e["next", "reward"].sum()) for e in acted]
        observation_error, reward_error = model_errors(world_model, torch.cat(acted))
        rows.append(
            {
                "returns": returns,
                "planning_seconds": planning_seconds,
                "training_seconds": training_seconds,
                "observation_error": observation_error,
                "reward_error": reward_error,
            }
        )
        steps = len(acted) * settings.decisions
        print(
            f"{name} iteration {iteration + 1}/{settings.iterations}: return {mean(returns):.1f} "
            f"(episodes: {', '.join(f'{r:.1f}' for r in returns)}), planning {planning_seconds:.1f} s "
            f"({planning_seconds / steps:.3f} s per step); model fitted on {transitions} transitions in "
            f"{training_seconds:.1f} s, one-step RMS error on these episodes: observation "
            f"{observation_error:.3f}, reward {reward_error:.2f}",
            flush=True,
        )
    return rows


def random_returns(settings: LoopSettings) -> list[float]:
    """Per iteration, the mean return of random actions from the acting episodes' start states."""
    env = make_real_env(settings.action_repeat)
    policy = random_policy(env, settings.seed + 1)
    returns = []
    for iteration in range(settings.iterations):
        seeds = episode_seeds(settings, iteration)
        episodes = [run_episode(env, policy, settings.decisions, seed, 0) for seed in seeds]
        returns.append(mean([float(e["next", "reward"].sum()) for e in episodes]))
    return returns


def print_table(results: dict[str, list[dict]], random: list[float]) -> None:
    """Per iteration: the mean return of the acting episodes and the planning seconds, per planner."""
    print("\nmean return of the acting episodes (random: random actions from the same start states)")
    print(f"{'iteration':>9}{'random':>9}" + "".join(f"{name:>9}{name + ' s':>9}" for name in results))
    labels = [str(iteration) for iteration in range(1, len(random) + 1)] + ["all"]
    for index, label in enumerate(labels):
        line = f"{label:>9}{random[index] if label != 'all' else mean(random):>9.1f}"
        for rows in results.values():
            chosen = rows[index : index + 1] if label != "all" else rows
            returns = [r for row in chosen for r in row["returns"]]
            line += f"{mean(returns):>9.1f}{sum(row['planning_seconds'] for row in chosen):>9.1f}"
        print(line)


def plot(results: dict[str, list[dict]], random: list[float], path: Path) -> None:
    """The mean return per iteration, a line per planner; each acting episode as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    iterations = list(range(1, len(random) + 1))
    for name, rows in results.items():
        (line,) = axes.plot(iterations, [mean(row["returns"]) for row in rows], marker="o", label=name)
        for iteration, row in zip(iterations, rows):
            dots = [iteration] * len(row["returns"])
            axes.scatter(dots, row["returns"], s=12, alpha=0.5, color=line.get_color())
    axes.plot(iterations, random, color="grey", linestyle="--", label="random actions, same starts")
    axes.set(
        xlabel="iteration (model refitted on all data, then acting episodes)",
        ylabel="return",
        title="PlaNet-style loop on Pendulum-v1",
        xticks=iterations,
    )
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


HELP = {
    "iterations": "model fits, each followed by acting episodes",
    "seed_episodes": "episodes of random actions before the first fit",
    "episodes_per_iteration": "acting episodes per iteration (the data budget)",
    "episode_steps": "env steps per episode (Pendulum-v1 truncates at 200)",
    "action_repeat": "env steps per action",
    "horizon": "planning horizon, in actions",
    "hidden": "width of the model's MLPs",
    "train_steps": "Adam steps per fit, from scratch",
    "seed": "seeds the data, the models, the planners and the start states",
}
QUICK = {"iterations": 2, "seed_episodes": 1, "episodes_per_iteration": 1, "episode_steps": 60, "horizon": 10}
QUICK.update(hidden=32, train_steps=300)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for field in fields(LoopSettings):
        flag = "--" + field.name.replace("_", "-")
        parser.add_argument(flag, type=int, default=field.default, help=HELP[field.name])
    parser.add_argument("--planners", nargs="+", choices=PLANNERS, default=list(PLANNERS))
    parser.add_argument("--out", type=Path, default=Path("."), help="where planet_loop.png goes")
    parser.add_argument("--quick", action="store_true", help="2 short iterations, a small model: a smoke run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = LoopSettings(**{field.name: getattr(args, field.name) for field in fields(LoopSettings)})
    if args.quick:
        settings = replace(settings, **QUICK)
    began = time.perf_counter()
    results = {name: planet_loop(name, settings) for name in args.planners}
    random = random_returns(settings)
    print_table(results, random)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(results, random, args.out / "planet_loop.png")
    print(f"plot: {args.out / 'planet_loop.png'} ({time.perf_counter() - began:.0f} s in all)")
    return results


if __name__ == "__main__":
    main()
