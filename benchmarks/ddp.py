"""Scaling: training steps/s and examples/s in 1 and more processes (`genloom train --nproc N`, torchrun's
launcher, gloo on CPU and NCCL on GPUs), sharded sampling (`genloom sample --shard I/K`, K processes at once
against one), and the peak memory of writing 10,000,000 Adult rows.

Each setting runs the real command line in fresh processes, repeated; a run's steps/s is taken from its own
metrics.jsonl (the elapsed training time between the warm-up step and the last), so imports and data loading
do not count. On a 2-core CPU machine one process trains on 2 threads and two on 1 each: the same cores.

Usage: .venv/bin/python benchmarks/ddp.py [--device cuda] [--section NAME]   (some 10 minutes on 2 cores)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shared_parts import log, results_arguments, write_section

RESULTS = Path(__file__).parent / "results" / "ddp.md"
GENLOOM = [sys.executable, "-m", "genloom"]
WARM_UP = 5  # steps left out of the rate: the first steps build caches and allocate
TRAININGS = {  # name: (data and family arguments, global batch, examples counted per step)
    "text GPT (default model, tiny Shakespeare)": (["shakespeare", "--family", "autoregressive"], 64, "windows"),
    "table VAE (Adult)": (["adult", "--family", "vae"], 500, "rows"),
    "image diffusion (MNIST 28x28)": (["mnist", "--family", "diffusion"], 64, "images"),
}


def run(arguments: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(arguments, capture_output=True, text=True, **kwargs)
    if done.returncode:
        raise SystemExit(f"{' '.join(arguments)} failed:\n{done.stderr[-2000:]}")
    return done


def training_rate(data: list[str], batch: int, processes: int, steps: int, device: str) -> float:
    """Steps per second of one training run, from its metrics (after WARM_UP steps)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        command = [*GENLOOM, "train", *data, "--steps", str(steps), "--batch-size", str(batch), "--log-every", "1",
                   "--eval-every", str(10 * steps), "--sample-every", str(10 * steps), "--quiet", "--device", device,
                   "--out", str(out)]
        run(command + (["--nproc", str(processes)] if processes > 1 else []))
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        elapsed = {r["step"]: r["elapsed"] for r in records if "loss" in r and "elapsed" in r}
    return (steps - WARM_UP) / (elapsed[steps] - elapsed[WARM_UP])


def sampling_seconds(run_dir: Path, n: int, shards: int) -> float:
    """Wall seconds to write n rows in `shards` processes at once (each its shard), imports included."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        workers = [subprocess.Popen([*GENLOOM, "sample", str(run_dir), "-n", str(n), "--quiet",
                                     *(["--shard", f"{index}/{shards}"] if shards > 1 else []),
                                     "-o", f"{folder}/part-{index}.csv"],
                                    env={**os.environ, "OMP_NUM_THREADS": str(max(1, os.cpu_count() // shards))},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                   for index in range(shards)]
        for worker in workers:
            if worker.wait():
                raise SystemExit(worker.stderr.read())
        return time.perf_counter() - started


def peak_memory_of_sampling(run_dir: Path, n: int) -> tuple[float, float, float]:
    """(seconds, peak resident MB, file GB) of `genloom sample -n n` into a CSV, in a child process."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        child = subprocess.Popen([*GENLOOM, "sample", str(run_dir), "-n", str(n), "--quiet", "-o",
                                  f"{folder}/rows.csv"], stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest of all children
        seconds = time.perf_counter() - started
        if status:
            raise SystemExit(f"sampling {n:,} rows failed (status {status})")
        size = Path(f"{folder}/rows.csv").stat().st_size / 1e9
    return seconds, usage.ru_maxrss / 1024, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    results_arguments(parser, RESULTS, "fewer steps, 100,000 rows instead of 10,000,000")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", choices=["training", "sampling"], help="one part only")
    args = parser.parse_args()
    steps = 15 if args.quick else 40
    lines = [f"Run {time.strftime('%Y-%m-%d %H:%M')} on {args.device} ({os.cpu_count()} cores visible); "
             f"{steps} steps a run, the first {WARM_UP} left out; each setting {args.repeats} times.", ""]
    if args.only != "sampling":
        lines += ["| training | processes | steps/s (each repeat) | examples/s | speed-up |", "|---|---|---|---|---|"]
        for name, (data, batch, unit) in TRAININGS.items():
            base = None
            for processes in args.processes:
                rates = [training_rate(data, batch, processes, steps, args.device) for _ in range(args.repeats)]
                mean = sum(rates) / len(rates)
                base = base or mean
                log(f"{name}, {processes} process(es): {rates}")
                lines.append(f"| {name}, global batch {batch} | {processes} | "
                             f"{', '.join(f'{r:.2f}' for r in rates)} | {mean * batch:,.0f} {unit} | {mean / base:.2f}x |")
        lines.append("")
    if args.only != "training":
        with tempfile.TemporaryDirectory() as folder:
            table_run = Path(folder) / "adult-vae"
            run([*GENLOOM, "train", "adult", "--family", "vae", "--steps", "200", "--quiet", "--out", str(table_run)])
            n = 20_000 if args.quick else 200_000
            lines += [f"| sampling {n:,} Adult rows (VAE) to CSV | processes at once | wall seconds (each repeat) | "
                      "rows/s | speed-up |", "|---|---|---|---|---|"]
            base = None
            for shards in args.processes:
                times = [sampling_seconds(table_run, n, shards) for _ in range(args.repeats)]
                mean = sum(times) / len(times)
                base = base or mean
                log(f"sampling in {shards} shard(s): {times}")
                lines.append(f"| | {shards} | {', '.join(f'{t:.1f}' for t in times)} | {n / mean:,.0f} | "
                             f"{base / mean:.2f}x |")
            big = 100_000 if args.quick else 10_000_000
            small = big // 100
            for rows in (small, big):  # memory flat in n: the peak for 100x the rows
                seconds, peak, size = peak_memory_of_sampling(table_run, rows)
                log(f"{rows:,} rows: {seconds:.0f} s, peak {peak:.0f} MB, {size:.2f} GB")
                lines += ["", f"Writing {rows:,} Adult rows in one process (`genloom sample -n {rows}`, a "
                          f"{size:.2f} GB CSV): {seconds:,.0f} s, peak resident memory {peak:,.0f} MB."]
    write_section(args.out, args.section, "Scaling: processes, shards and memory", lines)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
