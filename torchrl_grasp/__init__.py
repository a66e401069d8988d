"""GRASP: parallel stochastic gradient-based planning for learned world models, in TorchRL."""

from torchrl_grasp.ops import collocation_loss, collocation_loss_reference

__all__ = ["collocation_loss", "collocation_loss_reference"]
__version__ = "0.1.0"
