"""Pixel observations of the point-mass tasks: what a Dreamer world model sees of ``WallDoor-v0``."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from torchrl_grasp.envs.point_mass import ARENA_HIGH, ARENA_LOW, PointMassGoalEnv, pixel_centers

WALL_LEVEL = 0.5
BLOB_CORE = 0.3  # locate() weighs the pixels above this fraction of the blob's peak


class PointMassPixels:
    """Renders positions of a point-mass task as float images ``[*B, 3, size, size]`` in ``[0, 1]``.

    The obstacles are grey (``0.5``) on black; the point is a white Gaussian blob of standard
    deviation ``blob_sigma`` (world units), so that the image moves smoothly with the position,
    below a pixel. The blob is drawn on every channel: the more pixel energy the point has, the
    more a reconstruction loss pays the model to encode where it is. There is no goal marker: a goal is given as the
    image of the point at the goal. Batched torch, so a data set of images renders in one call.

    Args:
        task (PointMassGoalEnv): the gymnasium task (its ``blocked`` draws the obstacles).

    Keyword Args:
        size (int): image side, in pixels. Defaults to ``64``.
        blob_sigma (float): the blob's standard deviation in world units (the arena is
            ``[-1, 1]^2``, so a pixel is ``2 / size``). Defaults to ``0.15``.

    Examples:
        >>> import torch
        >>> from torchrl_grasp.envs import WallDoorEnv
        >>> render = PointMassPixels(WallDoorEnv())
        >>> images = render(torch.tensor([[-0.49, 0.01], [0.5, 0.5]]))
        >>> images.shape, images.dtype, bool(0.9 < images.max() <= 1.0)
        (torch.Size([2, 3, 64, 64]), torch.float32, True)
        >>> float(images[0, 1, 50, 32])  # the wall (x = 0, y = -0.6)
        0.5
        >>> row, col = divmod(int(images[0, 0].argmax()), 64)  # the blob's peak: x = -0.49, y = 0.01
        >>> row, col
        (31, 16)
        >>> render.locate(images).round(decimals=3)  # and back: where the point is in each image
        tensor([[-0.4900,  0.0100],
                [ 0.5000,  0.5000]])
    """

    def __init__(self, task: PointMassGoalEnv, *, size: int = 64, blob_sigma: float = 0.15):
        if size < 8 or blob_sigma <= 0:
            raise ValueError(f"size must be >= 8 and blob_sigma positive, got size={size}, blob_sigma={blob_sigma}.")
        centers = pixel_centers(size)
        wall = task.blocked(centers.reshape(-1, 2)).reshape(size, size)
        self.size, self.blob_sigma = size, float(blob_sigma)
        self.centers = torch.as_tensor(centers, dtype=torch.float32)
        self.background = torch.as_tensor(np.where(wall, WALL_LEVEL, 0.0), dtype=torch.float32).expand(3, size, size)

    def __call__(self, positions: Tensor) -> Tensor:
        positions = torch.as_tensor(positions, dtype=torch.float32)
        if positions.shape[-1:] != (2,):
            raise ValueError(f"positions must be [..., 2], got {tuple(positions.shape)}.")
        squared = (self.centers - positions[..., None, None, :]).pow(2).sum(-1)
        blob = torch.exp(-squared / (2 * self.blob_sigma**2))
        return torch.maximum(self.background, blob.unsqueeze(-3))

    def locate(self, images: Tensor, *, iterations: int = 8) -> Tensor:
        """The point's position ``[*B, 2]`` in images ``[*B, 3, size, size]``: the blob that best explains them.

        The image's rise above the obstacles' grey (its channels' mean) is fitted, on the pixels
        free of obstacles, by a blob of this renderer's width at a free position and height:
        ``iterations`` Gauss-Newton steps from the centroid of its brightest pixels. So it reads
        a world model's decoded images as well as rendered ones (a decoder may draw the blob
        dimmer), and neither a wall nor the image's border pulls it, where a centroid would lean
        away by up to three pixels. A latent rollout is turned into positions through the model's
        own decoder, with nothing fitted to the model: where the model imagines the point.
        """
        if images.shape[-3:] != (3, self.size, self.size):
            raise ValueError(f"images must be [..., 3, {self.size}, {self.size}], got {tuple(images.shape)}.")
        free = self.background[0] == 0
        height = (images.mean(-3) - self.background[0]).clamp_min(0.0)[..., free]  # [*B, P]
        centers = self.centers[free]  # [P, 2]
        core = height > BLOB_CORE * height.amax(-1, keepdim=True)
        weight = torch.where(core, height, torch.zeros_like(height))
        position = (weight @ centers) / weight.sum(-1, keepdim=True).clamp_min(1e-12)
        variance = self.blob_sigma**2
        for _ in range(iterations):
            offset = centers - position[..., None, :]  # [*B, P, 2]
            blob = torch.exp(-offset.pow(2).sum(-1) / (2 * variance))
            scale = (blob * height).sum(-1) / blob.pow(2).sum(-1).clamp_min(1e-12)  # the best height
            residual = height - scale[..., None] * blob
            jacobian = (scale[..., None] * blob)[..., None] * offset / variance  # d(scale * blob) / d position
            normal = jacobian.transpose(-1, -2) @ jacobian
            damping = 1e-9 * normal.diagonal(dim1=-2, dim2=-1).sum(-1) + 1e-12  # an image with no blob stays put
            normal = normal + damping[..., None, None] * torch.eye(2)
            step = torch.linalg.solve(normal, (jacobian * residual[..., None]).sum(-2))
            position = (position + step).clamp(ARENA_LOW, ARENA_HIGH)
        return position
