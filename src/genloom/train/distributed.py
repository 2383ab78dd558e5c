"""Training on several processes launched by torchrun: which process this is, its share of every global batch,
and the few numbers all processes must agree on (the mean loss, the averaged gradients, when to stop).

Gradients are averaged with torch.distributed's all-reduce (gloo on CPU, NCCL on CUDA), the collective
DistributedDataParallel runs, issued once per optimiser step rather than from DDP's wrapper: a family's losses
come from a generator over several sub-networks (a GAN's critic steps, then its generator; a latent family's
two stages), which DDP's one-forward-then-one-backward contract cannot follow. The arithmetic is DDP's: every
process ends each step with the mean gradient of the global batch and therefore the same weights."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping, Sequence

import torch
import torch.distributed as dist

from ..errors import GenloomError

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
LAUNCHED = "GENLOOM_LAUNCHED"  # set for the processes `genloom train --nproc` starts
JOIN_TIMEOUT = timedelta(minutes=10)  # a process that does not reach a collective by then ends the run


@dataclass(frozen=True)
class Processes:
    """This process's place among those training one run (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def writes(self) -> bool:
        """Only the first process writes the run: checkpoints, metrics, samples, the report."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def device(self, asked: torch.device) -> torch.device:
        """Each process on a machine takes its own GPU (cuda:LOCAL_RANK); on the CPU they share the device."""
        if self.distributed and asked.type == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise GenloomError(f"process {self.local_rank} of this machine needs a GPU of its own, but there are "
                                   f"{torch.cuda.device_count()}; launch at most that many (--nproc)")
            return torch.device("cuda", self.local_rank)
        return asked

    def start(self, device: torch.device) -> None:
        """Join the other processes (once per process); a barrier, so all have read their options by then."""
        if not self.distributed or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=JOIN_TIMEOUT,
                                device_id=device if device.type == "cuda" else None)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def share(self, x: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's contiguous slice of a global batch (its size divides evenly: checked at start)."""
        if not self.distributed:
            return x, labels
        part = len(x) // self.size
        rows = slice(self.rank * part, (self.rank + 1) * part)
        return x[rows], labels[rows] if labels is not None else None

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.size:
            raise GenloomError(f"a global batch of {batch_size} does not split evenly over {self.size} processes; "
                               f"use a batch_size that is a multiple of {self.size} (CLI: --batch-size)")

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar over the processes (each one's loss on its share: the global batch's loss)."""
        if not self.distributed:
            return value
        total = value.detach().float().clone()
        dist.all_reduce(total)
        return total / self.size

    def average_gradients(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Replace each gradient by its mean over the processes: one all-reduce of all of them, flattened."""
        if not self.distributed:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([grad.reshape(-1) for grad in grads])
        dist.all_reduce(flat)
        flat /= self.size
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether the flag is set in any process: a budget in time runs out on every clock at once."""
        if not self.distributed:
            return flag
        value = torch.tensor([int(flag)], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def finish(self, together: bool = False) -> None:
        """Leave the process group; `together` (training ended well): once every process has got here, so that
        none tears its side down while a peer is still in the last collective (gloo then aborts the peer:
        "terminate called without an active exception"). A failed process leaves at once."""
        if self.distributed and dist.is_initialized():
            if together:
                dist.barrier()
            dist.destroy_process_group()


def processes_from_environment(environ: Mapping[str, str] = os.environ) -> Processes:
    """The processes torchrun started, from its environment variables; one process when none is set."""
    present = [name for name in TORCHRUN_VARIABLES if name in environ]
    if not present:
        return Processes()
    missing = [name for name in TORCHRUN_VARIABLES if name not in environ]
    if missing:
        raise GenloomError(f"torchrun's environment is half set ({', '.join(present)} without {', '.join(missing)}); "
                           "launch with torchrun or genloom train --nproc N, or unset them")
    try:
        rank, size, local_rank = (int(environ[name]) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
        local_size = int(environ.get("LOCAL_WORLD_SIZE", size))
    except ValueError:
        raise GenloomError("RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE must be whole numbers; launch with "
                           "torchrun or genloom train --nproc N") from None
    if not 0 <= rank < size or not 0 <= local_rank < local_size:
        raise GenloomError(f"RANK {rank} (LOCAL_RANK {local_rank}) is outside WORLD_SIZE {size} (LOCAL_WORLD_SIZE "
                           f"{local_size}); launch with torchrun or genloom train --nproc N")
    return Processes(rank, size, local_rank, local_size)


def launch(count: int, arguments: Sequence[str], device: str) -> int:
    """Run `genloom ARGUMENTS` in `count` processes on this machine, as `torchrun --standalone` would (torch's
    elastic launcher, a rendezvous on a free local port); the exit code: 0, or the first failed process's.
    At most one process per core on the CPU, one per GPU on CUDA."""
    import logging
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from .device import available_cores, resolve_device

    on_gpu = resolve_device(device).type == "cuda"
    most, what = (torch.cuda.device_count(), "GPU(s)") if on_gpu else (available_cores(), "CPU core(s) available")
    if not 1 <= count <= most:
        raise GenloomError(f"--nproc {count}: this machine has {most} {what}; give 1 to {most}")
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # the processes say what failed
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=count, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1)
    os.environ[LAUNCHED] = "1"  # the processes leave their errors to this launcher (report_error)
    try:
        elastic_launch(config, sys.executable)("-m", "genloom", *arguments)
    except ChildFailedError as error:
        _, failure = min(error.failures.items(), key=lambda item: (item[1].exitcode != 2, item[0]))
        if isinstance(failure.message, str) and failure.message:  # one genloom error, not one per process
            print(failure.message, file=sys.stderr)
        return failure.exitcode if failure.exitcode > 0 else 1
    finally:
        del os.environ[LAUNCHED]
    return 0


def report_error(message: str) -> bool:
    """Under a launcher, leave a genloom error in the file it reads, instead of every process printing the same
    line (under plain torchrun the first process prints it); False where this process should print it itself."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path or (os.environ.get("RANK", "0") == "0" and LAUNCHED not in os.environ):
        return False
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"message": message, "timestamp": int(time.time())}, handle)
    return True
