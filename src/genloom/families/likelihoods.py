"""Reconstruction log-likelihoods, chosen by the layout's data kind."""
from __future__ import annotations

import torch
from torch.special import log_ndtr


def _log_ndtr_difference(upper: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """log(Phi(upper) - Phi(lower)) for upper > lower, stable in both tails."""
    flip = lower > 0  # use the mirrored form 1-Phi when both bounds sit in the upper tail
    a, b = torch.where(flip, -lower, upper), torch.where(flip, -upper, lower)
    log_a, log_b = log_ndtr(a), log_ndtr(b)
    return log_a + torch.log1p(-torch.exp(log_b - log_a).clamp(max=1 - 1e-6))


def discretised_gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor,
                                  levels: int = 256) -> torch.Tensor:
    """Per-example log-probability (nats) of x on a grid of `levels` values in [-1, 1].

    A Gaussian density on 8-bit data would give an unbounded, positive "ELBO"; integrating over
    each pixel's bin (as Ho et al.'s DDPM decoder does) gives a true bound in nats.
    """
    half_bin = 1.0 / (levels - 1)
    inv_scale = torch.exp(-log_scale)
    upper = (x + half_bin - mean) * inv_scale
    lower = (x - half_bin - mean) * inv_scale
    log_prob = torch.where(
        x < -1 + half_bin, log_ndtr(upper),
        torch.where(x > 1 - half_bin, log_ndtr(-lower), _log_ndtr_difference(upper, lower)))
    return log_prob.flatten(1).sum(1)
