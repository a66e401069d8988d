"""From images to latents: the filter that Dreamer's real-world actor runs, and goal images as latent goals."""

from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from torch import Tensor

from torchrl_grasp.dreamer.rssm import RSSMWorldModel


class LatentFilter:
    """Turns observed images (and the actions between them) into latents ``{state, belief}``.

    One step is TorchRL's Dreamer step: the prior advances the belief with the previous latent
    and action, the posterior reads the encoded image; the state is the posterior's **mean**
    (Dreamer samples it), so the same images always give the same latent. The first image of an
    episode is read from the zero latent after a zero action, as the model was trained.

    A goal given as an image becomes a latent goal by :meth:`encode`: the latent the filter
    holds after watching the point rest ``settle_steps`` steps at the goal. Planners then reach
    for that latent with the world model's own imagined steps.

    Args:
        model (RSSMWorldModel): the trained world model.

    Examples:
        >>> import torch
        >>> from torchrl.data import Bounded
        >>> model = RSSMWorldModel(Bounded(-1.0, 1.0, (2,)))
        >>> latent_filter = LatentFilter(model)
        >>> images = torch.rand(4, 3, 64, 64)
        >>> first = latent_filter.observe(images)
        >>> first["state"].shape, first["belief"].shape
        (torch.Size([4, 16]), torch.Size([4, 64]))
        >>> goal = latent_filter.encode(images[0], settle_steps=3)
        >>> goal.batch_size, torch.equal(goal["state"], latent_filter.encode(images[0], settle_steps=3)["state"])
        (torch.Size([]), True)
    """

    def __init__(self, model: RSSMWorldModel):
        self.model = model

    @torch.no_grad()
    def embed(self, pixels: Tensor) -> Tensor:
        """The encoder's embedding ``[*B, E]`` of images ``[*B, 3, 64, 64]``, in one batched call."""
        if pixels.shape[-3:] != (3, 64, 64):
            raise ValueError(f"pixels must be [..., 3, 64, 64], got {tuple(pixels.shape)}.")
        return self.model.encoder(pixels)

    @torch.no_grad()
    def observe(
        self, pixels: Tensor, action: Tensor | None = None, latent: TensorDictBase | None = None
    ) -> TensorDict:
        """One filter step: the latent ``[*B]`` after ``action`` from ``latent`` (zeros if ``None``) and seeing ``pixels``."""
        return self._advance(self.embed(pixels), action, latent)

    @torch.no_grad()
    def encode(self, pixels: Tensor, settle_steps: int = 3) -> TensorDict:
        """The latent ``[*B]`` of images ``[*B, 3, 64, 64]``: the filter after ``settle_steps`` zero actions seeing them."""
        if settle_steps < 1:
            raise ValueError(f"settle_steps must be at least 1, got {settle_steps}.")
        embedding, latent = self.embed(pixels), None
        for _ in range(settle_steps):
            latent = self._advance(embedding, None, latent)
        return latent

    @torch.no_grad()
    def filter(self, pixels: Tensor, actions: Tensor) -> TensorDict:
        """Latents ``[*B, T]`` of a sequence: ``pixels[..., t, :, :, :]`` seen after ``actions[..., t, :]``.

        ``actions[..., 0, :]`` is the action before the first image (zero at an episode's start).
        The images are encoded in one call; only the recurrent step runs per time step.
        """
        embeddings = self.embed(pixels)
        latent, latents = None, []
        for t in range(embeddings.shape[-2]):
            latent = self._advance(embeddings.select(-2, t), actions.select(-2, t), latent)
            latents.append(latent)
        return torch.stack(latents, dim=-1)

    def _advance(self, embedding: Tensor, action: Tensor | None, latent: TensorDictBase | None) -> TensorDict:
        """The prior advances the belief from ``latent`` with ``action``; the posterior's mean reads ``embedding``."""
        batch = embedding.shape[:-1]
        latent = self.model.initial_latent(batch) if latent is None else latent
        if action is None:
            action = torch.zeros(*batch, *self.model.action_spec.shape, device=embedding.device)
        rows = batch.numel()  # the prior's GRUCell takes a 1-D batch
        _, _, _, belief = self.model.prior(
            latent["state"].reshape(rows, -1), latent["belief"].reshape(rows, -1), action.reshape(rows, -1)
        )
        state, _, _ = self.model.posterior(belief, embedding.reshape(rows, -1))
        return TensorDict(state=state.reshape(*batch, -1), belief=belief.reshape(*batch, -1), batch_size=batch)
