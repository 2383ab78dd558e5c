"""Optimisers: AdamW with weight-decay groups, or Muon for the hidden matrices with AdamW for the rest.

Muon (Jordan et al. 2024, torch.optim.Muon) orthogonalises each weight matrix's momentum before the step; on
the character-level benchmark (benchmarks/text.py) the default model reaches a loss of 1.88 in 0.72x the
time it needs with AdamW, Newton-Schulz iterations included. It is meant for the linear
layers inside a network only: embeddings, a (tied) output head, gains and biases stay with AdamW.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import TrainConfig


def _decay_groups(params: list[nn.Parameter], lr: float) -> list[dict]:
    """Weight decay on matrices only, never on biases, norms or gains (as GPT-2 and nanoGPT)."""
    groups = [{"params": [p for p in params if p.dim() >= 2]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return [dict(group, initial_lr=lr) for group in groups if group["params"]]


def _own_weight(module: nn.Module) -> nn.Parameter | None:
    """The module's own weight parameter; None where a parametrisation (spectral norm) owns it, whose
    `.weight` must not even be read here: reading it runs a power iteration."""
    return dict(module.named_parameters(recurse=False)).get("weight")


def hidden_matrices(module: nn.Module) -> set[int]:
    """Ids of the weights Muon may train: linear layers' matrices that are not also an embedding (a tied
    head) and not spectrally normalised."""
    embeddings = {id(_own_weight(m)) for m in module.modules() if isinstance(m, nn.Embedding)}
    linear = {id(w) for m in module.modules() if isinstance(m, nn.Linear) and (w := _own_weight(m)) is not None}
    return linear - embeddings


class Chained:
    """Several torch optimisers stepped as one, so that the loop, the gradient scaler and checkpoints see a
    single optimiser (torch has no such container)."""

    def __init__(self, **parts: torch.optim.Optimizer):
        self.parts = parts

    @property
    def param_groups(self) -> list[dict]:
        return [group for part in self.parts.values() for group in part.param_groups]

    def step(self) -> None:
        for part in self.parts.values():
            part.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts.values():
            part.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {name: part.state_dict() for name, part in self.parts.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state) != set(self.parts):
            raise ValueError(f"optimiser state for {sorted(state)}, expected {sorted(self.parts)}")
        for name, part in self.parts.items():
            part.load_state_dict(state[name])


def build_optimizer(module: nn.Module, params: list[nn.Parameter],
                    config: TrainConfig) -> torch.optim.Optimizer | Chained:
    """The optimiser `config.optimizer` names ("adamw" or "muon") for `params` of `module`; the schedule
    scales each group's `initial_lr`."""
    adamw_options = {"betas": (config.adam_beta1, config.adam_beta2), "weight_decay": config.weight_decay}
    if config.optimizer == "adamw":
        return torch.optim.AdamW(_decay_groups(params, config.lr), lr=config.lr, **adamw_options)
    hidden = hidden_matrices(module)
    matrices = [p for p in params if id(p) in hidden]
    rest = [p for p in params if id(p) not in hidden]
    adamw = torch.optim.AdamW(_decay_groups(rest, config.lr), lr=config.lr, **adamw_options)
    if not matrices:  # e.g. LoRA adapters: only small factor matrices train
        return adamw
    # No weight decay on Muon's matrices, as in Keller Jordan's speed runs; "original" scales the step of
    # a non-square matrix by sqrt(rows / columns) so that every shape moves alike.
    muon = torch.optim.Muon([{"params": matrices, "initial_lr": config.muon_lr}], lr=config.muon_lr,
                            weight_decay=0.0, adjust_lr_fn="original")
    return Chained(adamw=adamw, muon=muon)
