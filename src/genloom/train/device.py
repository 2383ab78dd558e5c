"""Device choice and mixed precision: bf16 or fp16 autocast on CUDA, full precision on CPU."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

from ..errors import GenloomError, warn


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


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, which taskset and containers set), not the
    machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks on this system (macOS)
        return os.cpu_count() or 1


def thread_count(asked: int | None, processes: int = 1) -> int:
    """The threads to train with: as asked (more than the cores is allowed, with a warning), else this process's
    share of the cores (`processes` training on this machine at once)."""
    cores = available_cores()
    if asked is not None and asked * processes > cores:
        each = f" in each of {processes} processes" if processes > 1 else ""
        warn(f"{asked} threads{each} on {cores} available core(s) oversubscribe them: the threads wait on each other")
    return asked or max(1, cores // processes)


@contextlib.contextmanager
def using_threads(count: int) -> Iterator[None]:
    """torch (and the OpenMP it runs, and any process it starts) use `count` threads inside the block."""
    before, variable = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(count)
    os.environ["OMP_NUM_THREADS"] = str(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if variable is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = variable
