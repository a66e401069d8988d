"""A linear recurrence solved in parallel over time: the scan behind the parallel rollout and its adjoint."""

from __future__ import annotations

import torch
from torch import Tensor


def affine_scan(matrices: Tensor, offsets: Tensor, initial: Tensor) -> Tensor:
    r"""All of :math:`x_t = A_t x_{t-1} + c_t`, :math:`t = 1 .. T`, from :math:`x_0`, in
    :math:`\lceil \log_2 T \rceil` batched steps instead of :math:`T` serial ones.

    ``matrices`` ``[N, T, D, D]`` holds :math:`A_t`, ``offsets`` ``[N, T, D]`` :math:`c_t`,
    ``initial`` ``[N, D]`` :math:`x_0`; returns :math:`x_1 .. x_T`, ``[N, T, D]``. A prefix scan
    (Hillis and Steele) over the affine maps :math:`x \mapsto A_t x + c_t`: each round composes
    every map with the one ``stride`` steps before it, so after round ``k`` map ``t`` carries
    :math:`x_{t - 2^k}` to :math:`x_t`. It costs :math:`O(T \log T)` matrix products, all batched.

    Examples:
        >>> A = torch.tensor([[[[2.0]], [[3.0]], [[0.5]]]])  # x_t = A_t x_{t-1} + c_t, one feature
        >>> c = torch.tensor([[[1.0], [0.0], [4.0]]])
        >>> affine_scan(A, c, torch.tensor([[1.0]]))[0, :, 0]  # 2 * 1 + 1, 3 * 3 + 0, 0.5 * 9 + 4
        tensor([3.0000, 9.0000, 8.5000])
    """
    matrices, offsets = matrices.clone(), offsets.clone()
    steps, stride = matrices.shape[1], 1
    while stride < steps:
        later, earlier = matrices[:, stride:], matrices[:, :-stride]
        composed_offsets = (later @ offsets[:, :-stride].unsqueeze(-1)).squeeze(-1) + offsets[:, stride:]
        composed = later @ earlier
        offsets = torch.cat([offsets[:, :stride], composed_offsets], dim=1)
        matrices = torch.cat([matrices[:, :stride], composed], dim=1)
        stride *= 2
    return (matrices @ initial[:, None, :, None]).squeeze(-1) + offsets
