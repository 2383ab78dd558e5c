"""Drawing many samples from a family: batches on one CPU generator (the same samples on every device), a
call after each network pass for progress bars, and a check that the samples fit in memory."""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import GenloomError
from .base import Family

SAMPLE_BATCH = 500      # examples per call of Family.sample
MEMORY_FACTOR = 4       # copies of the encoded samples alive at once: batches, their concatenation, the decoded


def progress_bar(net: Family, n: int, options: Any, enabled: bool) -> tqdm:
    """A bar of the network passes that drawing n samples takes; it shows itself only after two seconds."""
    return tqdm(total=math.ceil(n / SAMPLE_BATCH) * net.sampling_passes(options), desc="sampling", unit="pass",
                delay=2, disable=not enabled, leave=False)


def draw(net: Family, n: int, generator: torch.Generator, ids: np.ndarray | None = None, options: Any = None,
         given: Sequence[int] = (), on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
    """n encoded samples of `net` (in eval mode, without gradients), on the CPU; `ids` the class of each
    sample, or one class for all."""
    label_ids = label_tensor(net, ids, n) if ids is not None else None
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    chunks = []
    with torch.inference_mode():  # no autograd bookkeeping: a fifth faster when tokens come one at a time
        for start in range(0, n, SAMPLE_BATCH):
            size = min(SAMPLE_BATCH, n - start)
            labels = label_ids[start:start + size].to(device) if label_ids is not None else None
            chunks.append(net.sample(size, labels, generator, options, given, on_pass).cpu())
    net.train(was_training)
    return torch.cat(chunks)


def draw_chunks(net: Family, n: int, generator: torch.Generator, ids: np.ndarray | None, options: Any,
                chunk: int, on_pass: Callable[[], None] = lambda: None) -> Iterator[torch.Tensor]:
    """The n samples of `draw`, `chunk` at a time (the same samples when chunk is a multiple of SAMPLE_BATCH),
    so that any n fits in memory; one class for all is repeated per chunk only."""
    if ids is not None:
        label_tensor(net, ids, 1 if len(ids) == 1 else n)  # refused before the first chunk
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        chunk_ids = ids if ids is None or len(ids) == 1 else ids[start:start + size]
        yield draw(net, size, generator, chunk_ids, options, (), on_pass)


def label_tensor(net: Family, ids: np.ndarray, n: int) -> torch.Tensor:
    """Class ids for n samples: one id for all of them, or one each; only a conditional family takes them."""
    if not net.conditional:
        raise GenloomError(f"this {net.name} is not conditional, so it cannot take labels; train it with "
                           "conditional=True (CLI: --conditional) on labelled data")
    if len(ids) == 1:
        ids = np.repeat(ids, n)
    if len(ids) != n:
        raise GenloomError(f"{len(ids)} labels for {n} examples; give one label, or one per example")
    return torch.from_numpy(ids)


def latent_tensor(latents: Any, latent_shape: tuple[int, ...]) -> torch.Tensor:
    """Latent codes (N, *latent_shape) as a float tensor, or a one-line error saying what shape they must have."""
    try:
        z = torch.as_tensor(np.asarray(latents, dtype=np.float32))
    except (TypeError, ValueError):
        z = None
    if z is None or z.dim() < 1 or tuple(z.shape[1:]) != tuple(latent_shape) or not torch.isfinite(z).all():
        shape = tuple(z.shape) if z is not None else type(latents).__name__
        wanted = ", ".join(["N", *map(str, latent_shape)])
        raise GenloomError(f"latent codes must be finite numbers of shape ({wanted}); got {shape}")
    return z


def check_memory(net: Family, n: int, instead: str) -> None:
    """Refuse n samples that would not fit in the memory this machine has free, saying how much they take."""
    needed, free = n * net.sample_bytes() * MEMORY_FACTOR, free_memory()
    if needed > free:
        raise GenloomError(f"{n:,} samples would take about {needed / 1e9:,.1f} GB of memory and "
                           f"{free / 1e9:,.1f} GB are free; ask for fewer, or {instead}")


def free_memory() -> float:
    """Bytes of memory available now, page cache included (Linux's MemAvailable); infinite where the system
    does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            available = next(line for line in meminfo if line.startswith("MemAvailable:"))
        return int(available.split()[1]) * 1024
    except (OSError, StopIteration, ValueError, IndexError):
        return math.inf
