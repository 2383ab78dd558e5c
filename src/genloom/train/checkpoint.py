"""Checkpoints: safetensors for weights, a weights-only torch file for resume; both written atomically."""
from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from ..errors import GenloomError
from ..files import atomic_path


def save_weights(module: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Weights only, as safetensors (no pickled code), written atomically."""
    with atomic_path(path) as tmp:
        save_model(module, str(tmp), metadata=metadata)


def load_weights(module: nn.Module, path: Path) -> dict[str, str]:
    """Load safetensors weights into `module`, failing in one line if they do not fit it; the file's metadata."""
    try:
        load_model(module, str(path), strict=True, device=str(next(module.parameters()).device))
        with safe_open(str(path), "pt") as saved:
            return saved.metadata() or {}
    except (SafetensorError, RuntimeError, OSError) as error:
        reason = " ".join(str(error).split())[:300]
        raise GenloomError(f"{path} does not fit this model ({reason}); was the run changed by hand?") from None


def save_state(state: dict[str, Any], path: Path) -> None:
    """The whole resume state in one file, so a crash can never pair new weights with an old optimiser."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path) -> dict[str, Any]:
    """Read a resume state with weights_only=True: a stranger's file cannot run code here. Torch's own message
    for a refused file suggests turning that off; ours does not."""
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of files it then refuses
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError):
        raise GenloomError(f"{path} is not a safe, whole checkpoint: it holds code or is damaged, so it will not be "
                           "loaded; train the run again into a new output folder (CLI: --out)") from None
