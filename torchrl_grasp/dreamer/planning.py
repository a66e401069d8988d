"""Planning in a pixel world model's latent space: from the real env's images to planners and back.

- :func:`pixel_env`: the real point-mass env with ``"pixels"`` and ``"goal_pixels"`` in its
  tensordicts (a TorchRL ``UnaryTransform``); the agent below sees only those.
- :class:`LatentPlanning`: the model envs planners plan on (by goal latent, by reward), and the
  planners' input built from images.
- :class:`LatentMPC`: a TorchRL policy for the real env: filters the latent from the images
  and the actions taken, and asks any planner (this package's, or TorchRL's ``CEMPlanner``)
  for the next action.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictModuleBase
from torch import Tensor
from torchrl.data import Composite, Unbounded
from torchrl.envs import Compose, StepCounter, TensorDictPrimer, Transform, TransformedEnv, UnaryTransform
from torchrl.envs.model_based.dreamer import DreamerEnv

from torchrl_grasp.dreamer.latent import LatentFilter
from torchrl_grasp.dreamer.readout import PositionReadout, PositionStep
from torchrl_grasp.dreamer.rssm import PriorMeanStep
from torchrl_grasp.dreamer.training import PixelWorldModel
from torchrl_grasp.envs import make_env
from torchrl_grasp.policies import RecedingHorizonPolicy
from torchrl_grasp.world_models.env import TransitionModelEnv
from torchrl_grasp.world_models.step import WorldModelStep


def pixel_env(pixel_model: PixelWorldModel, **kwargs) -> TransformedEnv:
    """The model's real env (``make_env`` with its ``env_id`` and ``env_kwargs``) plus its images.

    ``"pixels"`` and ``"goal_pixels"`` ``[3, 64, 64]`` are the renderings of ``"observation"``
    and ``"goal"``; a ``StepCounter`` adds ``"step_count"``. ``kwargs`` go to
    :func:`~torchrl_grasp.envs.make_env`. A :class:`LatentMPC` policy also needs its primer
    appended (``env.append_transform(policy.make_tensordict_primer())``).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from torchrl_grasp.dreamer import PixelModelConfig, RSSMSize, load_or_train_pixel_model
        >>> tiny = PixelModelConfig(size=RSSMSize(4, 8, 8, 2, 2), episodes=16, episode_steps=12, train_steps=2, batch_size=2, window=4)
        >>> pixel_model = load_or_train_pixel_model(tiny, cache_directory=Path(tempfile.mkdtemp()), progress=False)
        >>> env = pixel_env(pixel_model, success_threshold=0.1)
        >>> td = env.reset(options={"start": [-0.5, 0.0], "goal": [0.5, 0.0]})
        >>> td["pixels"].shape, td["goal_pixels"].shape, int(td["step_count"])
        (torch.Size([3, 64, 64]), torch.Size([3, 64, 64]), 0)
    """
    config = pixel_model.config
    env = make_env(config.env_id, **{**dict(config.env_kwargs), **kwargs})
    render = config.renderer()
    return TransformedEnv(
        env, UnaryTransform(["observation", "goal"], ["pixels", "goal_pixels"], fn=render)
    ).append_transform(StepCounter())


class LatentPlanning:
    """The latent-space view of a pixel world model that planners need.

    Args:
        pixel_model (PixelWorldModel): the trained model.

    Keyword Args:
        goal_keys (sequence of str): the latent keys a latent goal constrains. Defaults to
            ``("state", "belief")``: the whole latent.
        settle_steps (int): filter steps that turn a goal image into a latent
            (see :meth:`LatentFilter.encode`). Defaults to ``3``.
        readout (PositionReadout, optional): plan to the goal image's *position* instead of its
            latent: the model env gains a ``"position"`` state (the readout of each imagined
            latent, :class:`~torchrl_grasp.dreamer.readout.PositionStep`), and a goal is
            ``{"position": [x, y]}``, read off the goal image
            (:meth:`~torchrl_grasp.dreamer.PointMassPixels.locate`, exact on rendered images).
            Defaults to ``None``: the latent goal.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from torchrl_grasp.dreamer import PixelModelConfig, RSSMSize, load_or_train_pixel_model
        >>> tiny = PixelModelConfig(size=RSSMSize(4, 8, 8, 2, 2), episodes=16, episode_steps=12, train_steps=2, batch_size=2, window=4)
        >>> pixel_model = load_or_train_pixel_model(tiny, cache_directory=Path(tempfile.mkdtemp()), progress=False)
        >>> planning = LatentPlanning(pixel_model, goal_keys=["state"])
        >>> images = pixel_model.renderer(torch.tensor([[-0.5, 0.0], [0.5, 0.0]]))
        >>> problem = planning.planner_input(planning.latent_filter.observe(images[0]), planning.goal(images[1]))
        >>> sorted(map(str, problem.keys(True, True)))
        ["('goal', 'state')", 'belief', 'state']
        >>> planning.predicted_positions(problem, torch.zeros(5, 2)).shape  # where the model imagines the point, start and 5 steps
        torch.Size([6, 2])

        With a readout, the goal is where the goal image shows the point:

        >>> from torchrl_grasp.dreamer.readout import PositionReadout
        >>> by_position = LatentPlanning(pixel_model, readout=PositionReadout(pixel_model.model.size, hidden=16))
        >>> problem = by_position.planner_input(by_position.latent_filter.observe(images[0]), by_position.goal(images[1]))
        >>> sorted(map(str, problem.keys(True, True))), problem["goal", "position"].round(decimals=3)
        (["('goal', 'position')", 'belief', 'position', 'state'], tensor([0.5000, -0.0000]))
        >>> sorted(map(str, by_position.goal_env().state_spec.keys()))
        ['belief', 'goal', 'position', 'state']
    """

    def __init__(
        self,
        pixel_model: PixelWorldModel,
        *,
        goal_keys: Sequence[str] = ("state", "belief"),
        settle_steps: int = 3,
        readout: PositionReadout | None = None,
    ):
        self.pixel_model = pixel_model
        self.model = pixel_model.model
        self.latent_filter = LatentFilter(self.model)
        self.goal_keys = tuple(goal_keys)
        self.settle_steps = settle_steps
        self.readout = readout
        self.action_spec = self.model.action_spec
        self.step = WorldModelStep(self.model.transition_module(), ["state", "belief"], "action")
        self._goal: tuple[Tensor, TensorDict] | None = None  # (goal images, their goal): a memo

    def goal_env(self) -> TransitionModelEnv:
        """The model env for goal images: the latent transition (and the readout's ``"position"``
        with a readout); reward minus the distance to ``"goal"``."""
        if self.readout is None:
            return TransitionModelEnv(
                self.model.transition_module(), self.model.latent_spec(), self.action_spec, goal_key="goal"
            )
        keys = ["state", "belief", "position"]
        step = TensorDictModule(
            PositionStep(PriorMeanStep(self.model.prior), self.readout), in_keys=[*keys, "action"], out_keys=keys
        )
        spec = self.model.latent_spec()
        spec["position"] = Unbounded(2)
        return TransitionModelEnv(step, spec, self.action_spec, goal_key="goal")

    def reward_env(self) -> DreamerEnv:
        """TorchRL's ``DreamerEnv`` with the learned reward (see :meth:`RSSMWorldModel.dreamer_env`)."""
        return self.model.dreamer_env()

    def goal(self, goal_pixels: Tensor) -> TensorDict:
        """The goal of goal images ``[*B, 3, 64, 64]``: their latent restricted to ``goal_keys``,
        or with a readout the point's position in them, ``{"position": [*B, 2]}``.

        The last images' goal is kept, so a policy that sees the same goal at every step encodes
        it once per goal, not once per step.
        """
        if self._goal is None or not torch.equal(self._goal[0], goal_pixels):
            if self.readout is None:
                goal = self.latent_filter.encode(goal_pixels, self.settle_steps).select(*self.goal_keys)
            else:
                located = self.pixel_model.renderer.locate(goal_pixels)
                goal = TensorDict(position=located, batch_size=located.shape[:-1])
            self._goal = (goal_pixels.clone(), goal)
        return self._goal[1]

    def planner_input(self, latent: TensorDictBase, goal: TensorDictBase | None = None) -> TensorDict:
        """``{state, belief}`` of ``latent`` (and its readout's ``"position"``), and ``"goal"`` (a :meth:`goal`) when given."""
        out = latent.select("state", "belief").clone()
        if self.readout is not None:
            with torch.no_grad():
                out.set("position", self.readout(out["state"], out["belief"]))
        if goal is not None:
            out.set("goal", goal)
        return out

    @torch.no_grad()
    def predicted_positions(self, latent: TensorDictBase, actions: Tensor) -> Tensor:
        """Where the model imagines the point ``[*B, T + 1, 2]`` along its rollout of ``actions`` ``[*B, T, 2]`` from ``latent``.

        Each latent is decoded and the point located in the image (:meth:`~torchrl_grasp.dreamer.PointMassPixels.locate`).
        """
        batch = latent.batch_size
        start = [
            latent["state"].reshape(-1, self.model.size.state_dim),
            latent["belief"].reshape(-1, self.model.size.belief_dim),
        ]
        states = self.step.rollout(start, actions.reshape(-1, *actions.shape[-2:])).states
        readings = self.pixel_model.renderer.locate(self.model.decode({"state": states[0], "belief": states[1]}))
        return readings.reshape(*batch, *readings.shape[1:])


class LatentMPC(TensorDictModuleBase):
    """A real-env policy: filter the latent from ``"pixels"``, plan in it, write ``"action"``.

    Each call reads the image the env just produced and updates the latent with the action taken
    last, both carried in the TensorDict under ``latent_key`` (``"state"``, ``"belief"``,
    ``"action"``): it writes the next values under ``("next", latent_key, ...)``, as TorchRL's
    recurrent modules do, so one policy serves a batch of envs and any number of episodes. Append
    :meth:`make_tensordict_primer` to the env: its resets zero the carried latent and action, which
    is where the model's training starts every episode. Then it builds the planner's input (with
    the latent goal of ``"goal_pixels"`` when ``by_goal``) and asks the planner for the action.

    The planner is any TensorDict module on :meth:`LatentPlanning.goal_env` or
    :meth:`LatentPlanning.reward_env` that reads ``state``/``belief`` (and ``goal``) and writes
    ``action``: this package's planners, a :class:`~torchrl_grasp.RecedingHorizonPolicy` around one
    (its plan is carried in the TensorDict too, and its primer comes with this one's), or TorchRL's
    ``CEMPlanner``.

    Args:
        planning (LatentPlanning): the model's latent view.
        planner (TensorDictModuleBase): reads ``state``/``belief`` (and ``goal``), writes ``action``.

    Keyword Args:
        by_goal (bool): plan to ``"goal_pixels"`` (else by reward). Defaults to ``True``.
        latent_key (str): where the filter's latent and last action live. Defaults to ``"latent"``.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from torchrl_grasp.dreamer import PixelModelConfig, RSSMSize, load_or_train_pixel_model
        >>> tiny = PixelModelConfig(size=RSSMSize(4, 8, 8, 2, 2), episodes=16, episode_steps=12, train_steps=2, batch_size=2, window=4)
        >>> pixel_model = load_or_train_pixel_model(tiny, cache_directory=Path(tempfile.mkdtemp()), progress=False)
        >>> from torchrl_grasp import GRASPPlanner, RecedingHorizonPolicy
        >>> planning = LatentPlanning(pixel_model)
        >>> grasp = GRASPPlanner(planning.goal_env(), 5, optim_steps=3)
        >>> policy = LatentMPC(planning, RecedingHorizonPolicy(grasp, replan_every=2))
        >>> env = pixel_env(pixel_model).append_transform(policy.make_tensordict_primer())
        >>> rollout = env.rollout(4, policy, tensordict=env.reset(options={"start": [-0.5, 0.0], "goal": [0.5, 0.0]}))
        >>> rollout["action"].shape, rollout["planning", "replanned"].tolist()
        (torch.Size([4, 2]), [True, False, True, False])
        >>> "observation" in policy.in_keys  # it never reads the position
        False
    """

    def __init__(
        self,
        planning: LatentPlanning,
        planner: TensorDictModuleBase,
        *,
        by_goal: bool = True,
        latent_key: str = "latent",
    ):
        super().__init__()
        self.planning, self.planner, self.by_goal = planning, planner, by_goal
        self.latent_keys = {name: (latent_key, name) for name in ("state", "belief", "action")}
        # What an inner receding-horizon policy carries from step to step, passed through.
        self.carried = [planner.state_key] if isinstance(planner, RecedingHorizonPolicy) else []
        self.in_keys = [
            "pixels",
            *(["goal_pixels"] if by_goal else []),
            *self.latent_keys.values(),
            *(planner.state.values() if self.carried else []),
        ]
        self.out_keys = ["action", *(("next", *key) for key in self.latent_keys.values())]

    def make_tensordict_primer(self) -> Transform:
        """The env transform that declares (and on reset zeroes) the latent and action carried,
        with the inner policy's primer when it has one."""
        size, action_spec = self.planning.model.size, self.planning.action_spec
        spec = Composite(
            {
                self.latent_keys["state"]: Unbounded((size.state_dim,)),
                self.latent_keys["belief"]: Unbounded((size.belief_dim,)),
                self.latent_keys["action"]: Unbounded(action_spec.shape, dtype=action_spec.dtype),
            }
        )
        primer = TensorDictPrimer(spec, default_value=0, expand_specs=True)
        inner = getattr(self.planner, "make_tensordict_primer", None)
        return Compose(primer, inner()) if inner is not None else primer

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        missing = [key for key in self.latent_keys.values() if key not in tensordict.keys(True, True)]
        if missing:
            raise KeyError(
                f"LatentMPC carries its latent in the TensorDict, which lacks {missing}: append "
                "policy.make_tensordict_primer() to the env (env.append_transform(...))."
            )
        previous = TensorDict(
            state=tensordict.get(self.latent_keys["state"]),
            belief=tensordict.get(self.latent_keys["belief"]),
            batch_size=tensordict.batch_size,
        )
        last_action = tensordict.get(self.latent_keys["action"])
        latent = self.planning.latent_filter.observe(tensordict["pixels"], last_action, previous)
        goal = self.planning.goal(tensordict["goal_pixels"]) if self.by_goal else None
        problem = self.planning.planner_input(latent, goal)
        if self.carried:
            problem.update(tensordict.select(*self.carried, "is_init", strict=False))
        out = self.planner(problem)
        action = out.get("action")
        tensordict.set("action", action)
        for key in self.carried:
            tensordict.set(key, out.get(key))
            tensordict.set(("next", key), out.get(("next", key)))
        tensordict.set(("next", *self.latent_keys["state"]), latent["state"])
        tensordict.set(("next", *self.latent_keys["belief"]), latent["belief"])
        tensordict.set(("next", *self.latent_keys["action"]), action.detach())
        return tensordict

