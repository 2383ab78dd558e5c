"""LoRA (Hu et al. 2021): train a low-rank update B·A beside frozen linear layers; save only A and B.

Written here rather than taken from peft: it is thirty lines, works on every genloom backbone by layer
name, and keeps the adapter file format ours (safetensors + JSON)."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

DEFAULT_TARGETS = ("c_attn", "c_proj", "c_fc")


class LoRALinear(nn.Module):
    """y = W x + (alpha / rank) · B A x, with W frozen; B starts at zero so training starts from W."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale

    def merged(self) -> nn.Linear:
        """A plain linear layer with the update folded into its weight."""
        linear = copy.deepcopy(self.base)
        linear.weight.data = applied_weight(self)[0].detach().clone()
        return linear.requires_grad_(True)


def applied_weight(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weight (out, in) and bias a linear layer applies: a LoRA layer's W + (alpha / rank) · B A, computed
    now (it does not follow later updates), or a plain layer's own parameters."""
    if isinstance(layer, LoRALinear):
        return layer.base.weight + (layer.lora_b @ layer.lora_a) * layer.scale, layer.base.bias
    return layer.weight, layer.bias


def has_lora_targets(module: nn.Module, targets: tuple[str, ...] = DEFAULT_TARGETS) -> bool:
    """Whether `module` has a linear layer that add_lora would wrap."""
    return any(name in targets and isinstance(child, nn.Linear)
               for parent in module.modules() for name, child in parent.named_children())


def add_lora(module: nn.Module, rank: int, alpha: float, targets: tuple[str, ...] = DEFAULT_TARGETS) -> int:
    """Freeze `module` and wrap its linear layers named in `targets`; return how many were wrapped."""
    module.requires_grad_(False)
    wrapped = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if name in targets and isinstance(child, nn.Linear):
                setattr(parent, name, LoRALinear(child, rank, alpha))
                wrapped += 1
    return wrapped


def lora_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter's tensors."""
    return {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()
            if name.rsplit(".", 1)[-1] in ("lora_a", "lora_b")}


def merge_lora(module: nn.Module) -> nn.Module:
    """A copy of `module` with every LoRA layer folded back into a plain linear layer."""
    merged = copy.deepcopy(module)
    for parent in list(merged.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                setattr(parent, name, child.merged())
    return merged
