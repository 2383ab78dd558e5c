"""Paths through a latent space: the code a seed draws from the prior, and the points between two codes."""
from __future__ import annotations

import torch

from ..errors import GenloomError

METHODS = ("slerp", "lerp")


def seed_code(seed: int, latent_dim: int) -> torch.Tensor:
    """The prior's draw (latent_dim,) for `seed`: the code `sample` would decode first with that seed."""
    return torch.randn(latent_dim, generator=torch.Generator().manual_seed(seed))


def path_between(start: torch.Tensor, end: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    """`steps` codes (steps, latent_dim) from `start` to `end`, both included. slerp follows the great circle:
    a straight line (lerp) between two draws of a Gaussian prior passes through its low-norm middle, where
    codes are rarely drawn."""
    if method not in METHODS:
        raise GenloomError(f"unknown interpolation method {method!r}; choose {' or '.join(METHODS)}")
    if steps < 2:
        raise GenloomError(f"steps must be at least 2 (both ends); got {steps}")
    weights = torch.linspace(0, 1, steps, dtype=start.dtype)[:, None]
    cosine = (start @ end / (start.norm() * end.norm())).clamp(-1, 1)
    angle = torch.acos(cosine)
    if method == "lerp" or angle < 1e-4:  # (near) parallel codes: the circle is the line
        return (1 - weights) * start + weights * end
    return (torch.sin((1 - weights) * angle) * start + torch.sin(weights * angle) * end) / torch.sin(angle)
