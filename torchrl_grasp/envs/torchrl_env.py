"""The TorchRL form of this package's environments: :func:`make_env`."""

from __future__ import annotations

import gymnasium
import torch
from gymnasium.vector import AutoresetMode
from torchrl.data import Composite, Unbounded
from torchrl.envs import EnvBase, GymWrapper, default_info_dict_reader

SUCCESS_KEY = "is_success"


def make_env(
    env_id: str, *, num_envs: int | None = None, device: torch.device | str = "cpu", **kwargs
) -> EnvBase:
    """A TorchRL env for a gymnasium goal-reaching env id, with the state, goal and success in the tensordict.

    The env's tensordicts carry ``"observation"`` (the state) and ``"goal"``, both float32 and
    of the same shape, and ``"is_success"`` (bool, one per env: ``batch_size``), read from the
    gymnasium info at reset and at every step; ``"reward"``, ``"done"``, ``"terminated"`` and
    ``"truncated"`` as usual. Actions are float32 in ``[-1, 1]``.

    Start and goal: TorchRL forwards ``reset``'s keyword arguments to gymnasium's ``reset``, so
    ``env.reset(options={"start": start, "goal": goal})`` sets them exactly (numpy arrays or
    lists; ``[D]``, or ``[num_envs, D]`` for a batched point-mass env). Resets that TorchRL
    triggers itself (``rollout``, collectors) draw random pairs.

    ``num_envs`` runs the env id's numpy ``vector_entry_point`` (WallDoor, ObstacleNav) or, for
    ids without one, gymnasium's ``SyncVectorEnv`` (whose sub-envs all receive the same reset
    options). Either way with ``autoreset_mode=DISABLED``: TorchRL resets finished sub-envs
    itself (``options={"reset_mask": ...}``), so ``("next", "observation")`` is the true last
    observation of an episode.

    Args:
        env_id (str): a registered gymnasium id, e.g. ``"WallDoor-v0"``.

    Keyword Args:
        num_envs (int, optional): batch of sub-envs; ``None`` for a single env. Defaults to ``None``.
        device (torch.device or str): device of the output tensordicts. Defaults to ``"cpu"``.
        **kwargs: constructor keywords of the gymnasium env (``door_width=0.1``, ``render_mode=...``).

    Returns:
        A :class:`~torchrl.envs.GymWrapper` of batch size ``[]`` or ``[num_envs]``.

    Examples:
        >>> import torch
        >>> from torchrl.envs.utils import check_env_specs
        >>> env = make_env("WallDoor-v0", door_width=0.3)
        >>> check_env_specs(env)
        >>> td = env.reset(options={"start": [-0.5, 0.5], "goal": [0.48, 0.5]})
        >>> td["observation"], td["goal"].dtype
        (tensor([-0.5000,  0.5000]), torch.float32)
        >>> push_right = lambda td: td.set("action", torch.tensor([1.0, 0.0]))
        >>> rollout = env.rollout(30, push_right, tensordict=td, auto_reset=False)
        >>> rollout.shape, bool(rollout["next", "is_success"][-1])  # straight through the door
        (torch.Size([19]), True)
    """
    if num_envs is None:
        gym_env = gymnasium.make(env_id, **kwargs)
    elif gymnasium.spec(env_id).vector_entry_point is not None:
        gym_env = gymnasium.make_vec(
            env_id,
            num_envs,
            vectorization_mode="vector_entry_point",
            autoreset_mode=AutoresetMode.DISABLED,
            **kwargs,
        )
    else:
        gym_env = sync_vector_env(env_id, num_envs, **kwargs)
    env = GymWrapper(gym_env, device=device)
    read_success(env)
    return env


def sync_vector_env(env_id: str, num_envs: int, wrappers=(), **kwargs) -> gymnasium.vector.VectorEnv:
    """gymnasium's ``SyncVectorEnv`` of ``num_envs`` copies (each wrapped by ``wrappers``, in order)
    with autoreset off: TorchRL resets finished sub-envs itself, so ``("next", ...)`` is an
    episode's true last observation."""
    return gymnasium.make_vec(
        env_id,
        num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.DISABLED},
        wrappers=list(wrappers),
        **kwargs,
    )


def read_success(env: GymWrapper) -> None:
    """Makes ``env`` read ``info["is_success"]`` (a ``numpy.bool_`` per sub-env) into ``"is_success"``
    at reset and at every step, a bool of the env's batch shape."""
    success_spec = Composite(
        {SUCCESS_KEY: Unbounded(shape=env.batch_size, dtype=torch.bool, device=env.device)},
        shape=env.batch_size,
    )
    env.set_info_dict_reader(default_info_dict_reader([SUCCESS_KEY], spec=success_spec))
