"""Exponential moving average of a module's weights, used for sampling."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of `module` that trails its weights. Each weight's decay ramps up over its first updates,
    counted from when it starts training: a latent family's prior starts halfway through a run, and its average
    must not keep the untrained weights it had until then. Weights the module does not train (that prior before
    its stage, the autoencoder after its own) are copied, not averaged, so the copy decodes with the very weights
    the prior learnt on."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.updates = torch.zeros(len(list(module.parameters())), dtype=torch.long)  # per weight, while trained

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        for index, (average, current) in enumerate(zip(self.module.parameters(), module.parameters())):
            if current.requires_grad:
                self.updates[index] += 1
                count = self.updates[index].item()
                average.lerp_(current.detach(), 1 - min(self.decay, (1 + count) / (10 + count)))
            else:
                average.copy_(current)
        for average, current in zip(self.module.buffers(), module.buffers()):
            average.copy_(current)
