"""Device choice and mixed precision: bf16 or fp16 autocast on CUDA, full precision on CPU."""
from __future__ import annotations

import contextlib

import torch

from ..errors import GenloomError


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without it is an error, not a silent fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GenloomError("--device cuda was asked for but this machine has no CUDA GPU; use --device cpu or auto")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise GenloomError(f"unknown device '{name}'; use auto, cpu or cuda")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced precision to train in on this device, or None for full precision."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast context for the forward pass (a no-op on CPU)."""
    dtype = autocast_dtype(device)
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
