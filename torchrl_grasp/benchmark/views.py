"""What the planners of a benchmark tier see of the real env, and where their model says a plan ends.

A state tier's planners see the real state and goal (``"observation"``, ``"goal"``) and plan on
a learned state model. The pixel tier's planners see only images: the start image and the goal
image become latents of a Dreamer world model, and they plan in its latent space. Either way
the plan is executed and judged in the real env; a view only says what goes in and how to read
the model's prediction as a position.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import NestedKey, TensorDictBase
from torch import Tensor
from torchrl.envs.model_based import ModelBasedEnvBase

from torchrl_grasp.dreamer.planning import LatentPlanning
from torchrl_grasp.dreamer.readout import FittedReadout
from torchrl_grasp.dreamer.training import PixelWorldModel
from torchrl_grasp.world_models.learned import DISAGREEMENT_KEY, LearnedWorldModel
from torchrl_grasp.world_models.step import WorldModelStep


class StateView:
    """Planners see the real state and goal and plan on a learned state model.

    By default (this package's envs) the state is ``"observation"`` and the goal ``"goal"``,
    both positions. For a gymnasium goal env (:class:`~torchrl_grasp.envs.goal_env.EnvLayout`)
    the state is several entries and the goal constrains one of them, the position
    (``position_key``, the achieved goal), at ``("goal", position_key)``.

    Args:
        env (ModelBasedEnvBase): the model env, its state at ``state_keys``.

    Keyword Args:
        description (str): what the tier prints about its model. Defaults to ``""``.
        state_keys (sequence of str): the state entries. Defaults to ``("observation",)``.
        position_key (str): the entry the goal is compared to. Defaults to the first state key.
        goal_key (NestedKey): where the goal is. Defaults to ``"goal"`` with one state key, else
            ``("goal", position_key)``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl.data import Bounded, Unbounded
        >>> from torchrl_grasp import TransitionModelEnv
        >>> class PointMass(torch.nn.Module):
        ...     def forward(self, state, action):
        ...         return state + 0.1 * action
        >>> view = StateView(TransitionModelEnv(PointMass(), Unbounded(2), Bounded(-1.0, 1.0, (2,))))
        >>> problem = view.planner_input(TensorDict(observation=torch.zeros(2), goal=torch.ones(2), is_success=torch.tensor(False)))
        >>> sorted(problem.keys()), view.predicted_final(problem, torch.ones(3, 2))
        (['goal', 'observation'], tensor([0.3000, 0.3000]))
        >>> view.position(problem), view.goal(problem)
        (tensor([0., 0.]), tensor([1., 1.]))
    """

    success_radius_in_model_units = True  # the state is the real state: a radius means the same in both

    def __init__(
        self,
        env: ModelBasedEnvBase,
        *,
        description: str = "",
        state_keys: Sequence[str] = ("observation",),
        position_key: str | None = None,
        goal_key: NestedKey | None = None,
    ):
        self.env, self.description = env, description
        self.state_keys = list(state_keys)
        self.position_key = position_key or self.state_keys[0]
        if goal_key is None:
            goal_key = "goal" if len(self.state_keys) == 1 else ("goal", self.position_key)
        self.goal_key = goal_key
        writes = getattr(env.world_model, "out_keys", [])
        self.penalty_key = DISAGREEMENT_KEY if DISAGREEMENT_KEY in writes else None
        self.step = WorldModelStep(env.world_model, self.state_keys, "action", penalty_key=self.penalty_key)

    @classmethod
    def of(cls, learned: LearnedWorldModel) -> StateView:
        """The view of a learned state model, described by its cache path and validation report."""
        source = "loaded from" if learned.from_cache else "trained to"
        layout = learned.config.layout
        return cls(
            learned.env,
            description=f"world model {source} {learned.path}\n{learned.report}",
            state_keys=learned.config.state_keys,
            position_key=None if layout is None else layout.position_key,
        )

    def to(self, device: torch.device | str) -> StateView:
        """This view with its model env on ``device`` (moved in place): the planners plan there and
        read the real env's state from the CPU; :meth:`predicted_final` answers on the CPU."""
        self.env = self.env.to(device)
        return self

    def planner_input(
        self, tensordict: TensorDictBase, action: Tensor | None = None, previous: TensorDictBase | None = None
    ) -> TensorDictBase:
        """The real state and goal, on the model's device: the state needs no history (``action``
        and ``previous`` are ignored)."""
        return tensordict.select(*self.state_keys, self.goal_key).to(self.env.device)

    def position(self, tensordict: TensorDictBase) -> Tensor:
        """The real env's position (what the goal is compared to) in ``tensordict``."""
        return tensordict[self.position_key]

    def flat_state(self, tensordict: TensorDictBase) -> Tensor:
        """The state entries concatenated, as a learned model's flat state (``TransitionData``)."""
        return torch.cat([tensordict[key] for key in self.state_keys], dim=-1)

    def goal(self, tensordict: TensorDictBase) -> Tensor:
        """The goal position in ``tensordict``."""
        return tensordict[self.goal_key]

    @torch.no_grad()
    def predicted_final(self, planner_input: TensorDictBase, actions: Tensor) -> Tensor:
        """The model's final position ``[D]`` after ``actions`` ``[T, A]``, in the real env's
        coordinates, on the CPU."""
        start = [planner_input[key][None] for key in self.state_keys]
        trajectory = self.step.rollout(start, actions[None].to(self.env.device)).states
        return trajectory[self.state_keys.index(self.position_key)][0, -1].cpu()

    @torch.no_grad()
    def predicted_penalty(self, planner_input: TensorDictBase, actions: Tensor) -> float | None:
        """The ensemble's disagreement summed along the model's rollout of ``actions`` ``[T, A]``:
        how unsure the model is of the plan; ``None`` for a model that writes none (one network)."""
        if self.penalty_key is None:
            return None
        start = [planner_input[key][None] for key in self.state_keys]
        actions = actions[None].to(self.env.device)
        return float(self.step.rollout(start, actions, with_penalty=True).penalties.sum())


class PixelView:
    """Planners see the latents of the rendered start and goal images and plan in the latent space.

    The planners' model env is :meth:`~torchrl_grasp.dreamer.planning.LatentPlanning.goal_env`;
    a plan's end is read as a position off the model's decoded image of it, for the report only.

    Args:
        pixel_model (PixelWorldModel): the tier's model.
        readout (FittedReadout, optional): plan to the goal image's position, read off each
            imagined latent by this readout, instead of to its latent. Defaults to ``None``.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from torchrl_grasp.dreamer import PixelModelConfig, RSSMSize, load_or_train_pixel_model
        >>> tiny = PixelModelConfig(size=RSSMSize(4, 8, 8, 2, 2), episodes=16, episode_steps=12, train_steps=2, batch_size=2, window=4)
        >>> view = PixelView(load_or_train_pixel_model(tiny, cache_directory=Path(tempfile.mkdtemp()), progress=False))
        >>> problem = view.planner_input(TensorDict(observation=torch.tensor([-0.5, 0.0]), goal=torch.tensor([0.5, 0.0])))
        >>> sorted(map(str, problem.keys(True, True)))  # latents only: no position reaches the planners
        ["('goal', 'belief')", "('goal', 'state')", 'belief', 'state']
        >>> view.predicted_final(problem, torch.zeros(4, 2)).shape  # where the model imagines the plan's end
        torch.Size([2])
    """

    def __init__(self, pixel_model: PixelWorldModel, readout: FittedReadout | None = None):
        self.planning = LatentPlanning(pixel_model, readout=None if readout is None else readout.readout)
        self.render = pixel_model.renderer
        self.env: ModelBasedEnvBase = self.planning.goal_env()
        # A latent distance is not a position; the readout's distance to the goal position is.
        self.success_radius_in_model_units = readout is not None
        self.description = (
            f"pixel world model {'loaded from' if pixel_model.from_cache else 'trained to'} {pixel_model.path}\n"
            f"{pixel_model.report}"
        )
        if readout is not None:
            self.description += (
                f"\nthe goal is the goal image's position; {readout} "
                f"({'loaded from' if readout.from_cache else 'fitted to'} {readout.path})"
            )

    def to(self, device: torch.device | str) -> PixelView:
        """This view, which plans on the CPU only (its latent filter runs there): ``device`` must be the CPU."""
        if torch.device(device).type != "cpu":
            raise ValueError(f"The pixel tier plans on the CPU only (its latent filter runs there), not on {device}.")
        return self

    def planner_input(
        self, tensordict: TensorDictBase, action: Tensor | None = None, previous: TensorDictBase | None = None
    ) -> TensorDictBase:
        """The latent of the real env's image and the goal image's latent.

        The latent is filtered recurrently, as :class:`~torchrl_grasp.dreamer.LatentMPC` does: from
        the ``previous`` planner input and the ``action`` taken since (from the zero latent at an
        episode's start, ``previous=None``). The goal image is encoded once per goal
        (:meth:`~torchrl_grasp.dreamer.planning.LatentPlanning.goal` keeps it).
        """
        latent = None if previous is None else previous.select("state", "belief")
        latent = self.planning.latent_filter.observe(self.render(tensordict["observation"]), action, latent)
        return self.planning.planner_input(latent, self.planning.goal(self.render(tensordict["goal"])))

    def position(self, tensordict: TensorDictBase) -> Tensor:
        """The real env's position in ``tensordict`` (the real state; the planners never see it)."""
        return tensordict["observation"]

    def flat_state(self, tensordict: TensorDictBase) -> None:
        """``None``: a pixel model is not refitted on flat states."""
        return None

    def goal(self, tensordict: TensorDictBase) -> Tensor:
        """The real goal position in ``tensordict``."""
        return tensordict["goal"]

    def predicted_final(self, planner_input: TensorDictBase, actions: Tensor) -> Tensor:
        """The position ``[2]`` in the decoded latent the model reaches after ``actions`` ``[T, A]``."""
        return self.planning.predicted_positions(planner_input.select("state", "belief"), actions)[-1]

    def predicted_penalty(self, planner_input: TensorDictBase, actions: Tensor) -> None:
        """``None``: the pixel model is one network, with no disagreement to sum."""
        return None
