"""Muon (Jordan et al. 2024): momentum whose update is orthogonalised by a Newton-Schulz iteration, for the
weight matrices inside a network.

Written here rather than taken from torch.optim.Muon, whose update it equals (to the last bit when both run in
bfloat16; within bfloat16's precision, a few per cent of the update, in float32; tests/train/test_muon.py):
torch runs the iteration in bfloat16 on every device, and a CPU without native bfloat16 (no AVX512-BF16 or
AMX) emulates it, which on the text benchmark's model cost about 470 ms a step against 27 ms in float32
(measured here with ONEDNN_MAX_CPU_ISA=AVX2, which hides AVX512-BF16 from oneDNN), turning Muon from the
fastest optimizer into the slowest one; where the CPU has it, bfloat16 takes 10 ms and float32 20 ms
(benchmarks/results/text_threads.md). Here the iteration runs in float32 on every CPU, so a run gives the same
result on each, and in bfloat16 on a GPU. The momentum state has torch's name, so
checkpoints move between the two.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import nn

# torch.optim.Muon's (and Keller Jordan's) quintic coefficients and steps
COEFFICIENTS, STEPS, EPS = (3.4445, -4.7750, 2.0315), 5, 1e-7


def orthogonalised(update: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The Newton-Schulz approximation of U V^T for update = U S V^T, computed in `dtype`; for a stack of
    matrices of one shape (..., rows, columns), each matrix's, in one batched product per multiplication."""
    a, b, c = COEFFICIENTS
    x = update.to(dtype).reshape(-1, *update.shape[-2:])
    tall = update.size(-2) > update.size(-1)
    if tall:
        x = x.mT
    x = x / torch.linalg.matrix_norm(x, keepdim=True).clamp(min=EPS)
    for _ in range(STEPS):
        gram = torch.bmm(x, x.mT)
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return (x.mT if tall else x).reshape(update.shape)


class Muon(torch.optim.Optimizer):
    """SGD with Nesterov momentum whose update of each matrix is orthogonalised; the step of a tall matrix is
    scaled by sqrt(rows / columns) ("original" in torch's terms), so that every shape moves alike. No weight
    decay by default, as in Keller Jordan's speed runs."""

    def __init__(self, params: Iterable[nn.Parameter], lr: float = 0.02, momentum: float = 0.95,
                 weight_decay: float = 0.0, dtype: torch.dtype | None = None):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "dtype": dtype})
        for group in self.param_groups:
            if any(p.dim() != 2 for p in group["params"]):
                raise ValueError("Muon trains weight matrices only")

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for group in self.param_groups:
            alike: dict[tuple, list[nn.Parameter]] = {}
            for param in group["params"]:
                if param.grad is not None:
                    alike.setdefault((param.shape, param.device), []).append(param)
            for params in alike.values():
                self._step_alike(params, group)

    def _step_alike(self, params: list[nn.Parameter], group: dict) -> None:
        """Step matrices of one shape with their iterations batched: a small matrix's products leave a second
        thread idle, a stack of them does not (the two-block text model's Muon step on 2 threads: 8.0 ms where
        one matrix at a time took 9.4-9.5, medians of turns; on one thread 14.4-14.6 ms against 14.3-14.4)."""
        updates = []
        for param in params:
            buffer = self.state[param].setdefault("momentum_buffer", torch.zeros_like(param.grad))
            buffer.lerp_(param.grad, 1 - group["momentum"])
            updates.append(param.grad.lerp(buffer, group["momentum"]))
        dtype = group["dtype"] or (torch.bfloat16 if params[0].is_cuda else torch.float32)
        rows, columns = params[0].shape
        for param, update in zip(params, orthogonalised(torch.stack(updates), dtype)):
            param.mul_(1 - group["lr"] * group["weight_decay"])
            param.add_(update, alpha=-group["lr"] * math.sqrt(max(1, rows / columns)))
