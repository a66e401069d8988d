"""The fused stop-gradient collocation loss and its pure-PyTorch reference."""

from torchrl_grasp.ops.collocation import collocation_loss
from torchrl_grasp.ops.reference import collocation_loss_reference

__all__ = ["collocation_loss", "collocation_loss_reference"]
