"""Optimisers: AdamW with weight-decay groups, or Muon for the hidden matrices with AdamW for the rest.

Muon (Jordan et al. 2024, train/muon.py) orthogonalises each weight matrix's momentum before the step; on
the character-level benchmark (benchmarks/text.py) the default model reaches a loss of 1.88 in 0.55x-0.72x
the time it needs with AdamW (two runs), Newton-Schulz iterations included. It is meant for the linear
layers inside a network only: embeddings, a (tied) output head, gains and biases stay with AdamW.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import GenloomError
from ..families.base import Family
from .config import TrainConfig
from .muon import Muon


def _decay_groups(params: list[nn.Parameter]) -> list[dict]:
    """Weight decay on matrices only, never on biases, norms or gains (as GPT-2 and nanoGPT)."""
    groups = [{"params": [p for p in params if p.dim() >= 2]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def hidden_matrices(family: Family) -> set[int]:
    """Ids of the weights Muon trains: those the family names as hidden (a transformer's blocks); a family
    that names none (a GAN's, a U-Net's) is refused."""
    named = family.hidden_matrices()
    if not named:
        raise GenloomError(f"optimizer 'muon' needs a network that names its hidden matrices (the transformer); "
                           f"family '{family.name}' has none: use --optimizer adamw")
    return {id(p) for p in named}


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


def set_base_rates(optimizer: torch.optim.Optimizer | Chained, config: TrainConfig) -> None:
    """Each group's `initial_lr`, which the schedule scales: Muon's from muon_lr, the others' from lr. Set
    again after a checkpoint is loaded (its groups replace ours), so that a resumed run takes a new rate."""
    for part in optimizer.parts.values() if isinstance(optimizer, Chained) else [optimizer]:
        rate = config.muon_lr if isinstance(part, Muon) else config.lr
        for group in part.param_groups:
            group["initial_lr"] = rate


def build_optimizer(family: Family, params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer | Chained:
    """The optimiser `config.optimizer` names ("adamw" or "muon") for `params` of `family`."""
    adamw_options = {"lr": config.lr, "betas": (config.adam_beta1, config.adam_beta2),
                     "weight_decay": config.weight_decay}
    if config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(_decay_groups(params), **adamw_options)
    else:
        hidden = hidden_matrices(family)
        matrices = [p for p in params if id(p) in hidden]
        rest = [p for p in params if id(p) not in hidden]
        parts = {"adamw": torch.optim.AdamW(_decay_groups(rest), **adamw_options) if rest else None,
                 "muon": Muon(matrices, lr=config.muon_lr) if matrices else None}  # LoRA: no Muon matrices train
        parts = {name: part for name, part in parts.items() if part is not None}
        optimizer = Chained(**parts) if len(parts) > 1 else next(iter(parts.values()))
    set_base_rates(optimizer, config)
    return optimizer
