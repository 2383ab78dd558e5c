"""Exponential moving average of a module's weights, used for sampling."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of `module` that trails its weights; the decay ramps up over the first steps."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for average, current in zip(self.module.parameters(), module.parameters()):
            average.lerp_(current.detach(), 1 - decay)
        for average, current in zip(self.module.buffers(), module.buffers()):
            average.copy_(current)
