"""LoRA adapter folders: adapter.json (the base run, rank, alpha, targets) and adapter.safetensors (only the
adapters' tensors). The base run is stored relative to the adapter, so a folder of runs can be moved."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import GenloomError
from ..files import atomic_path, write_json
from ..nets.lora import add_lora, lora_state_dict
from .folder import LoadedRun, load_run_folder
from .record import ADAPTER_CONFIG, ADAPTER_WEIGHTS, adapted_record, read_adapter_record

def write_adapter(path: Path, base: Path, weights: dict[str, torch.Tensor], settings: dict[str, Any]) -> dict[str, Any]:
    """The adapter's tensors and its record, which is returned; `settings` holds rank, alpha, targets and the
    data it trained on."""
    with atomic_path(path / ADAPTER_WEIGHTS) as tmp:
        save_file(weights, str(tmp))
    record = {"base": os.path.relpath(base.resolve(), path.resolve()), **settings}
    write_json(path / ADAPTER_CONFIG, record)
    return record


def read_adapter(path: Path, device: str = "cpu") -> LoadedRun:
    """The base run named in adapter.json, with the adapter's LoRA layers added and loaded."""
    record, base = read_adapter_record(path)
    adapter = record["adapter"]
    try:
        weights = load_file(path / ADAPTER_WEIGHTS)
        rank, alpha, targets = int(adapter["rank"]), float(adapter["alpha"]), tuple(adapter["targets"])
    except (OSError, SafetensorError, KeyError, TypeError, ValueError) as error:
        raise GenloomError(f"{path} is not a readable LoRA adapter ({type(error).__name__}: {error})") from None
    run = load_run_folder(base, device)
    for net in (run.net, run.ema_net):
        add_lora(net, rank, alpha, targets)
        expected = {name: tuple(t.shape) for name, t in lora_state_dict(net).items()}
        found = {name: tuple(t.shape) for name, t in weights.items()}
        if found != expected:
            differing = sorted(set(found) ^ set(expected) or {n for n in found if found[n] != expected[n]})
            raise GenloomError(f"{path}: the adapter's tensors do not fit its base run with rank {rank} "
                               f"({', '.join(differing[:3])}); train the adapter again")
        net.load_state_dict(weights, strict=False)
    run.record = adapted_record(run.record, adapter)
    run.path = path
    return run
