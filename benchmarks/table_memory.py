"""A table of 1,000,000 rows x 20 columns (10 numbers, 10 categories) fits and samples within this machine's
memory: encode, a short fit, 1,000,000 sampled rows. Prints the peak resident memory after each stage.

Usage: .venv/bin/python benchmarks/table_memory.py [--rows 1000000] [--family vae]
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

import genloom as gl


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def synthetic_table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {f"number_{i}": rng.normal(i, 1 + i, rows) for i in range(10)}
    columns |= {f"category_{i}": rng.choice([f"c{j}" for j in range(3 + 5 * i)], rows) for i in range(10)}
    return pd.DataFrame(columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--family", default="vae")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    started = time.perf_counter()
    frame = synthetic_table(args.rows)
    print(f"table {frame.shape[0]:,} x {frame.shape[1]}: {frame.memory_usage(deep=True).sum() / 2**30:.2f} GiB "
          f"in pandas; peak so far {peak_gib():.2f} GiB")
    model = gl.Model(args.family).fit(frame, steps=args.steps, progress=False)
    print(f"fitted ({args.steps} steps) at {time.perf_counter() - started:.0f} s; peak {peak_gib():.2f} GiB")
    rows = model.sample(args.rows, seed=0)
    print(f"sampled {len(rows):,} rows at {time.perf_counter() - started:.0f} s; peak {peak_gib():.2f} GiB")


if __name__ == "__main__":
    main()
