"""How wide the table transformer must be on a large table: Adult at the default budget (auto's choice there is
the transformer), trained 128 and 64 wide over several seeds, each run in a process of its own pinned to one core
(two at once on this 2-core machine); quality, pair trends, detection AUC and train-on-synthetic utility on the
held-out fifth, fit and sample seconds.

Usage: .venv/bin/python benchmarks/table_width.py [--widths 128 64] [--seeds 0 1] [--cores 0 1]
       [--out benchmarks/results/table_width.md]
       .venv/bin/python benchmarks/table_width.py --one WIDTH SEED    (a single run, printed as a JSON line)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import genloom as gl
from genloom.data.tables import column_kinds
from genloom.metrics.tabular import table_scores
from genloom.train.batches import held_out_indices
from shared_parts import log

SCORES = ("quality", "column_shapes", "column_pair_trends", "detection_auc", "utility_synthetic", "utility_real")


def one_run(width: int, seed: int) -> dict:
    """Fit Adult's training four fifths at the default budget, sample as many rows, score them on the rest."""
    torch.set_num_threads(1)
    frame = gl.load_data("adult").values
    train_rows, test_rows = held_out_indices(len(frame), 0.2)
    train, test = (frame.iloc[rows].reset_index(drop=True) for rows in (train_rows, test_rows))
    started = time.perf_counter()
    model = gl.Model("autoregressive", n_embd=width).fit(train, seed=seed, progress=False)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    synthetic = model.sample(len(train), seed=seed, progress=False)
    sample_seconds = time.perf_counter() - started
    scores, _ = table_scores(synthetic, train, test, column_kinds(train), "income", seed=seed)
    return {"width": width, "seed": seed, "steps": model.record["steps_trained"], "fit_seconds": fit_seconds,
            "sample_seconds": sample_seconds, **{name: scores[name] for name in SCORES}}


def run_all(widths: list[int], seeds: list[int], cores: list[int]) -> list[dict]:
    """Every (width, seed) in a process of its own, as many at once as there are cores, each pinned to one."""
    queue = [(width, seed) for seed in seeds for width in widths]
    running: dict[int, tuple[subprocess.Popen, tuple[int, int]]] = {}
    results = []
    while queue or running:
        for core in cores:
            if core not in running and queue:
                width, seed = queue.pop(0)
                command = ["taskset", "-c", str(core), sys.executable, __file__, "--one", str(width), str(seed)]
                running[core] = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                                                 env={**os.environ, "OMP_NUM_THREADS": "1"}), (width, seed)
                log(f"core {core}: width {width}, seed {seed}")
        time.sleep(2)
        for core, (process, job) in list(running.items()):
            if process.poll() is not None:
                out = process.stdout.read().strip().splitlines()
                if process.returncode or not out:
                    raise SystemExit(f"width {job[0]}, seed {job[1]} failed (exit {process.returncode})")
                results.append(json.loads(out[-1]))
                log(f"done: {results[-1]}")
                del running[core]
    return results


def report(results: list[dict]) -> list[str]:
    widths = sorted({row["width"] for row in results}, reverse=True)
    lines = ["| width | seed | steps | fit s | sample s | quality | pair trends | detection AUC | utility (real) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in sorted(results, key=lambda row: (-row["width"], row["seed"])):
        lines.append(f"| {row['width']} | {row['seed']} | {row['steps']} | {row['fit_seconds']:.0f} | "
                     f"{row['sample_seconds']:.1f} | {row['quality']:.3f} | {row['column_pair_trends']:.3f} | "
                     f"{row['detection_auc']:.3f} | {row['utility_synthetic']:.3f} ({row['utility_real']:.3f}) |")
    shared = sorted(set.intersection(*({row["seed"] for row in results if row["width"] == width}
                                        for width in widths)))
    lines += ["", f"Means over the seeds every width ran ({', '.join(map(str, shared))}):", "",
              "| width | mean quality | mean detection AUC | mean utility | mean fit s |",
              "| --- | --- | --- | --- | --- |"]
    for width in widths:
        rows = [row for row in results if row["width"] == width and row["seed"] in shared]
        mean = {name: statistics.mean(row[name] for row in rows)
                for name in ("quality", "detection_auc", "utility_synthetic", "fit_seconds")}
        lines.append(f"| {width} | {mean['quality']:.3f} | {mean['detection_auc']:.3f} | "
                     f"{mean['utility_synthetic']:.3f} | {mean['fit_seconds']:.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--cores", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--one", type=int, nargs=2, metavar=("WIDTH", "SEED"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "table_width.md")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(*args.one)), flush=True)
        return
    results = run_all(args.widths, args.seeds, args.cores)
    header = ["# The table transformer's width on Adult", "",
              f"`.venv/bin/python benchmarks/table_width.py --widths {' '.join(map(str, args.widths))} --seeds "
              f"{' '.join(map(str, args.seeds))}`, {time.strftime('%Y-%m-%d %H:%M')}: each run one process on one "
              "core, two at once; the default budget (2,000 steps of 500 rows); scored on the held-out fifth.", ""]
    args.out.write_text("\n".join(header + report(results)) + "\n")
    (args.out.with_suffix(".json")).write_text(json.dumps(results, indent=1) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
