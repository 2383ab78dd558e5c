"""Drawing many samples from a family: batches each on its own CPU generator (the same samples on every device;
any batch drawn without those before it, for shards), a call after each network pass for progress bars, and a
check that the samples fit in memory."""
from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Sequence, TypeVar

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


def batch_generator(seed: int, batch: int) -> torch.Generator:
    """The generator of the `batch`-th SAMPLE_BATCH of a sampling: the seed itself for the first (what a plain
    torch.Generator(seed) gives), a SeedSequence of (seed, batch) for the others."""
    if batch == 0:
        return torch.Generator().manual_seed(seed)
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed % 2**64, batch]).generate_state(1)[0]))


def draw(net: Family, n: int, seed: int, ids: np.ndarray | None = None, options: Any = None,
         given: Sequence[int] = (), on_pass: Callable[[], None] = lambda: None, first: int = 0,
         workers: int = 1) -> torch.Tensor:
    """n encoded samples of `net` (in eval mode, without gradients), on the CPU; `ids` the class of each
    sample, or one class for all. `first`, a multiple of SAMPLE_BATCH, is the index of the first sample among
    those the seed makes: draw(n, seed, first=k) is draw(k + n, seed)[k:]. On a CPU, a family that allows it
    draws up to `workers` batches at once, each on one thread: the same samples, sooner."""
    label_ids = label_tensor(net, ids, n) if ids is not None else None
    device = next(net.parameters()).device
    stopped = threading.Event()  # set when one batch fails or the caller is interrupted: the others stop too
    on_pass = one_at_a_time(on_pass, stopped)

    def batch(start: int) -> torch.Tensor:
        size = min(SAMPLE_BATCH, n - start)
        labels = label_ids[start:start + size].to(device) if label_ids is not None else None
        generator = batch_generator(seed, (first + start) // SAMPLE_BATCH)
        with torch.inference_mode():  # no autograd bookkeeping: a fifth faster when tokens come one at a time
            return net.sample(size, labels, generator, options, given, on_pass).cpu()

    side_by_side = workers if net.samples_side_by_side and device.type == "cpu" else 1
    was_training = net.training
    net.eval()
    try:
        return torch.cat(on_threads(batch, range(0, n, SAMPLE_BATCH), side_by_side, stopped))
    finally:
        net.train(was_training)


Result = TypeVar("Result")


def on_threads(work: Callable[[int], Result], items: Sequence[int], workers: int,
               stopped: threading.Event | None = None) -> list[Result]:
    """work(item) for each item, in order, on up to `workers` threads of one core each. A batch of a small model
    on every core spends its time in small matrix products that threads split poorly: 10,000 Adult rows from the
    default table transformer took 4.4-4.8 s on one thread, 2.9-3.6 s on two, and 2.3-2.8 s as two batches side
    by side on a thread each (2026-12-07). torch's thread count is global (a thread takes it at its first
    operation) and is put back afterwards, so this runs on the main thread only: elsewhere (a server's workers)
    other threads starting meanwhile would keep one thread for good. Leaving early (a failure, Ctrl-C) cancels
    the items not begun and sets `stopped`, which the work in progress may read to stop at once."""
    workers = min(workers, len(items)) if threading.current_thread() is threading.main_thread() else 1
    if workers <= 1:
        return [work(item) for item in items]
    threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="genloom-draw", initializer=torch.set_num_threads,
                              initargs=(1,))
    try:
        return list(pool.map(work, items))
    except BaseException:
        if stopped is not None:
            stopped.set()
        raise
    finally:
        try:
            pool.shutdown(cancel_futures=True)
        finally:  # even if a second Ctrl-C cuts the wait short
            torch.set_num_threads(threads)


class Stopped(Exception):
    """Raised in a batch still running after the sampling it belongs to has failed or been interrupted."""


def one_at_a_time(call: Callable[[], None], stopped: threading.Event) -> Callable[[], None]:
    """`call` behind a lock, for callers on several threads (a progress bar's count); once `stopped` is set, a
    batch that calls it stops."""
    lock = threading.Lock()

    def locked() -> None:
        if stopped.is_set():
            raise Stopped
        with lock:
            call()
    return locked


def draw_chunks(net: Family, rows: range, seed: int, ids: np.ndarray | None, options: Any, chunk: int,
                on_pass: Callable[[], None] = lambda: None, workers: int = 1) -> Iterator[tuple[int, torch.Tensor]]:
    """The samples `rows` (a range starting at a multiple of SAMPLE_BATCH) of those `seed` makes, `chunk` (a
    multiple of SAMPLE_BATCH) at a time with the index of each chunk's first, so that any number fits in memory;
    `ids` one class for all, or one for each of the rows; `workers` as draw takes them."""
    if ids is not None:
        label_tensor(net, ids, 1 if len(ids) == 1 else len(rows))  # refused before the first chunk
    for start in range(rows.start, rows.stop, chunk):
        size = min(chunk, rows.stop - start)
        offset = start - rows.start
        chunk_ids = ids if ids is None or len(ids) == 1 else ids[offset:offset + size]
        yield start, draw(net, size, seed, chunk_ids, options, (), on_pass, first=start, workers=workers)


def shard_rows(n: int, shard: tuple[int, int] | None) -> range:
    """The samples of shard (i, k) of n: the i-th of k runs of whole SAMPLE_BATCHes, as even as they come
    (all n without a shard). The shards of one seed together are the unsharded samples."""
    if shard is None:
        return range(n)
    index, count = shard
    batches = math.ceil(n / SAMPLE_BATCH)
    return range(min(n, index * batches // count * SAMPLE_BATCH), min(n, (index + 1) * batches // count * SAMPLE_BATCH))


def check_shard(shard: Any) -> tuple[int, int] | None:
    """A shard (i, k): the i-th of k, counted from 0; None for the whole."""
    if shard is None:
        return None
    try:
        index, count = (int(part) for part in shard)
        ok = (index, count) == tuple(shard) and count >= 1 and 0 <= index < count
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise GenloomError(f"shard must be (i, k) with k >= 1 and i from 0 to k-1 (the i-th of k parts); got "
                           f"{shard!r} (CLI: --shard I/K, e.g. 0/4)")
    return index, count


def label_tensor(net: Family, ids: np.ndarray, n: int) -> torch.Tensor:
    """Class ids for n samples: one id for all of them, or one each; only a conditional family takes them (or the
    encoded condition columns of each, for a family given rows)."""
    if not (net.conditional or net.given_rows):
        raise GenloomError(f"this {net.name} is not conditional, so it cannot take labels; train it with "
                           "conditional=True (CLI: --conditional) on labelled data")
    if len(ids) == 1:
        ids = np.repeat(ids, n, axis=0)
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
