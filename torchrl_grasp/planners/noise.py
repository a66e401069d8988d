r"""Coloured (power-law) noise for sampling action sequences that vary smoothly in time.

iCEM (Pinneri et al., CoRL 2020) samples action sequences whose power spectral density falls as
:math:`1/f^\beta` along the time axis: ``beta = 0`` is white noise, ``beta = 2`` is red (Brownian)
noise, whose long, smooth excursions find a door that white noise's jitter averages away. The
draw is Timmer and König's (1995): Gaussian Fourier coefficients scaled by :math:`f^{-\beta/2}`,
transformed back, and normalised to unit variance, so that a coloured sample is a drop-in for a
standard normal one.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def powerlaw_noise(
    shape: tuple[int, ...],
    beta: float,
    *,
    time_dim: int,
    generator: torch.Generator,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    r"""Unit-variance Gaussian noise of ``shape``, coloured along ``time_dim`` with exponent ``beta``.

    ``beta = 0`` draws ``torch.randn(shape)`` itself (the same numbers), so that a search with
    white noise is bit for bit the plain one. Every draw comes from ``generator``.

    Examples:
        >>> generator = torch.Generator().manual_seed(0)
        >>> red = powerlaw_noise((4000, 50), 2.0, time_dim=1, generator=generator)
        >>> white = powerlaw_noise((4000, 50), 0.0, time_dim=1, generator=generator)
        >>> round(red.var().item(), 1), round(white.var().item(), 1)  # both unit variance
        (1.0, 1.0)
        >>> lag_one = lambda x: (x[:, 1:] * x[:, :-1]).mean().item()
        >>> lag_one(red) > 0.9, abs(lag_one(white)) < 0.05  # red noise is smooth in time
        (True, True)
        >>> torch.equal(powerlaw_noise((3, 5), 0.0, time_dim=1, generator=torch.Generator().manual_seed(1)),
        ...             torch.randn((3, 5), generator=torch.Generator().manual_seed(1)))
        True
    """
    if not math.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be a non-negative, finite number, got {beta!r}.")
    if beta == 0:
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    time_dim = time_dim % len(shape)
    steps = shape[time_dim]
    others = (*shape[:time_dim], *shape[time_dim + 1 :])
    frequencies = torch.fft.rfftfreq(steps, device=device, dtype=torch.float64)
    frequencies[0] = 1.0 / steps  # the lowest resolvable frequency stands in for the mean's
    scale = frequencies ** (-beta / 2)
    # The variance of each output sample (Parseval): a complex coefficient k carries 4 s_k^2 / T^2,
    # the real ones (the mean's and, for even T, the Nyquist's, drawn with sqrt(2) below) 2 s_k^2 / T^2.
    power = 4 * scale.square()
    power[0] /= 2
    if steps % 2 == 0:
        power[-1] /= 2
    sigma = power.sum().sqrt() / steps
    real = torch.randn((*others, scale.numel()), generator=generator, device=device, dtype=torch.float64)
    imag = torch.randn((*others, scale.numel()), generator=generator, device=device, dtype=torch.float64)
    imag[..., 0] = 0  # the mean is real
    real[..., 0] *= math.sqrt(2)
    if steps % 2 == 0:
        imag[..., -1] = 0  # so is the Nyquist coefficient
        real[..., -1] *= math.sqrt(2)
    signal = torch.fft.irfft(torch.complex(real * scale, imag * scale), n=steps, dim=-1) / sigma
    return signal.movedim(-1, time_dim).to(dtype or torch.get_default_dtype())
