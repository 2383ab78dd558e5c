"""Paths through a latent space: the code a seed draws from the prior, and the points between two codes."""
from __future__ import annotations

import torch

from ..errors import GenloomError

METHODS = ("slerp", "lerp")


def seed_code(seed: int, shape: int | tuple[int, ...]) -> torch.Tensor:
    """The prior's draw of one code of `shape` for `seed`: the code `sample(1, seed)` decodes. (Only that one:
    torch draws a batch's Gaussians 16 at a time, so the first of n > 1 codes differs unless a code's size is a
    multiple of 16.)"""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def path_between(start: torch.Tensor, end: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    """`steps` codes (steps, *start.shape) from `start` to `end`, both included, codes of any shape taken as flat
    vectors. slerp follows the great circle: a straight line (lerp) between two draws of a Gaussian prior
    passes through its low-norm middle, where codes are rarely drawn."""
    if method not in METHODS:
        raise GenloomError(f"unknown interpolation method {method!r}; choose {' or '.join(METHODS)}")
    if steps < 2:
        raise GenloomError(f"steps must be at least 2 (both ends); got {steps}")
    shape, start, end = start.shape, start.flatten(), end.flatten()
    weights = torch.linspace(0, 1, steps, dtype=start.dtype)[:, None]
    cosine = (start @ end / (start.norm() * end.norm())).clamp(-1, 1)
    angle = torch.acos(cosine)
    if method == "lerp" or angle < 1e-4:  # (near) parallel codes: the circle is the line
        path = (1 - weights) * start + weights * end
    else:
        path = (torch.sin((1 - weights) * angle) * start + torch.sin(weights * angle) * end) / torch.sin(angle)
    return path.view(steps, *shape)
