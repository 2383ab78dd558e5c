"""Character-level tiny Shakespeare in the settings a user meets: genloom's default text model (and each
optimizer) against nanoGPT's CPU "baby GPT" configuration, every row in its own process pinned to its own core.

Settings: (a) 1 thread on an idle machine, (b) 2 threads on an idle machine, (c) 1 thread each, two rows
training at the same time on the two cores (genloom's row beside the nanoGPT-config row). Each setting runs
twice. genloom's rows get the reference's whole fit as their `--minutes` (the same wall-clock budget: data,
validation and writing included, which --minutes bounds); in (c) the idle reference's times CONTENTION, and
they are read at the end of the reference beside them. Times on the curves are training seconds (validation
excluded) for every row; every row is validated on the same number of held-out tokens.
Generation is timed after training, in one process per repetition that loads every row's model and times
them in turn (the best of five each), pinned as the setting is and, in (c), beside a process that keeps the
other core busy: rows timed in separate processes minutes apart differed by half on this machine.

Targets, in every setting: the default reaches 1.88 in at most half the reference's time to it (its whole run
when it never gets there), and 1.70 or less within the reference's time; the optimizer adds at most 15% to a
step; MFU at 1 thread at least 50%; generation with the cache at least 5x the reference's without one.

Usage: .venv/bin/python benchmarks/text_threads.py            (about 45 minutes on 2 cores)
       .venv/bin/python benchmarks/text_threads.py --quick    (a smoke run of the script itself)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import genloom as gl
from text import (EVAL, REFERENCE_MODEL, REFERENCE_TRAIN, STRETCH_LOSS, TARGET_LOSS, flops_per_token,
                  generation_speed, peak_matmul_flops, RESULTS, time_to_reach, train, write_results)

from genloom.data.text_layout import TextLayout
from genloom.defaults import defaults_for, family_config
from genloom.families import build_family
from genloom.train.config import TrainConfig
from genloom.train.muon import orthogonalised
from genloom.train.optimizers import build_optimizer

def same_held_out_tokens() -> dict:
    """Validation batches for genloom's rows that hold as many held-out tokens as the reference's evaluation
    (20 batches of 12 x 64): every row is scored on the same amount of text, and none spends its budget on more."""
    ours = defaults_for("autoregressive", "text").train["batch_size"] * family_config("autoregressive", "text", {}).block_size
    theirs = EVAL["eval_batches"] * REFERENCE_TRAIN["batch_size"] * REFERENCE_MODEL["block_size"]
    return {"eval_batches": max(1, round(theirs / ours))}


HELD_OUT = same_held_out_tokens()
ROWS = {"nanoGPT baby config": (REFERENCE_MODEL, REFERENCE_TRAIN),
        "genloom default (Muon)": ({}, HELD_OUT),
        "genloom default, AdamW": ({}, {**HELD_OUT, "optimizer": "adamw"})}
REFERENCE, DEFAULT, ADAMW = ROWS
SETTINGS = (("(a) 1 thread, idle", 1, False), ("(b) 2 threads, idle", 2, False),
            ("(c) 1 thread each, two rows at once", 1, True))
CONTENTION = 1.1  # a row beside another runs about this much slower (the reference: 1.10-1.15x, measured here)
GENERATION_REPEATS = 5
SHORT_BUDGET_MINUTES = 2.0  # about the rows' budget: the default model for it


# -- one row, in a process of its own ---------------------------------------------------------------------------
def optimizer_share(model: gl.Model, optimizer: str) -> float:
    """The optimizer's step time over a forward and backward pass of the row's model on one batch."""
    net = build_family("autoregressive", model.codec.layout, model.config)
    config = model.record["train"]
    batch = torch.randint(model.codec.layout.vocab_size, (config["batch_size"], model.config.block_size + 1))
    step = build_optimizer(net, list(net.parameters()), TrainConfig(optimizer=optimizer))

    def forward_backward() -> None:
        net.zero_grad()
        next(net.losses(batch, None))[1].backward()
    forward_backward()
    for _ in range(3):
        step.step()
    start = time.perf_counter()
    for _ in range(5):
        forward_backward()
    passes = (time.perf_counter() - start) / 5
    start = time.perf_counter()
    for _ in range(10):
        step.step()
    return (time.perf_counter() - start) / 10 / passes


def run_row(name: str, threads: int, seconds: float | None, peak: float, out: Path, reference_steps: int) -> dict:
    torch.set_num_threads(threads)
    model_options, train_options = ROWS[name]
    budget = {"steps": reference_steps} if seconds is None else {"minutes": seconds / 60}
    folder = Path(tempfile.mkdtemp(dir=out))
    run = train(name, model_options, {**train_options, **budget, "threads": threads}, folder)
    model = run["model"]
    tokens_per_step = model.record["train"]["batch_size"] * model.config.block_size
    return {"name": name, "curve": run["curve"], "steps": run["steps"], "seconds": run["seconds"],
            "fit_seconds": model.record["fit_seconds"], "run_dir": str(folder / name), "blocks": model.config.n_layer,
            "steps_per_s": run["steps"] / run["seconds"], "tokens_per_s": run["tokens_per_second"],
            "mfu": run["tokens_per_second"] * flops_per_token(model) / peak,
            "optimizer_share": optimizer_share(model, model.record["train"]["optimizer"]),
            "tokens_per_step": tokens_per_step}


def generation_speeds(run_dirs: list[str], threads: int) -> list[dict]:
    """Tokens/s of each run's model (one sequence with and without the cache, 32 with it), the models timed in
    turn GENERATION_REPEATS times and the best of each kept, so that every row meets the same machine."""
    torch.set_num_threads(threads)
    models = [gl.load(run_dir) for run_dir in run_dirs]
    kinds = {"gen_single_cache": (256, True, 1), "gen_single_no_cache": (256, False, 1),
             "gen_batch32_cache": (128, True, 32)}
    timings = [{kind: [] for kind in kinds} for _ in models]
    for _ in range(GENERATION_REPEATS):
        for model, timing in zip(models, timings):
            for kind, (tokens, use_cache, batch) in kinds.items():
                timing[kind].append(generation_speed(model, tokens, use_cache, batch=batch, repeats=1))
    return [{kind: max(values) for kind, values in timing.items()} for timing in timings]


def newton_schulz_cost(threads: int) -> dict:
    """A Muon step's Newton-Schulz iterations on the matrices of the default model for a budget as short as the
    rows' (two blocks), in bfloat16 (as torch.optim.Muon runs them) and in float32 (as ours does on the CPU), in
    ms."""
    torch.set_num_threads(threads)
    config = family_config("autoregressive", "text", {}, minutes=SHORT_BUDGET_MINUTES)
    net = build_family("autoregressive", TextLayout((), vocab_size=65), config)
    matrices = [p.detach() for p in net.hidden_matrices()]
    costs = {"matrices": len(matrices)}
    for dtype in (torch.bfloat16, torch.float32):
        orthogonalised(matrices[0], dtype)
        start = time.perf_counter()
        for _ in range(5):
            for matrix in matrices:
                orthogonalised(matrix, dtype)
        costs[str(dtype).split(".")[-1]] = (time.perf_counter() - start) / 5 * 1e3
    return costs


# -- the settings -----------------------------------------------------------------------------------------------
def start_row(name: str, cores: str, threads: int, seconds: float | None, peak: float, out: Path,
              reference_steps: int) -> tuple[subprocess.Popen, Path]:
    """A row in a process of its own, pinned to `cores`; the reference trains its steps, the others `seconds`."""
    result = out / f"{abs(hash((name, cores, time.time())))}.json"
    command = ["taskset", "-c", cores, sys.executable, __file__, "--row", name, "--threads", str(threads),
               "--peak", str(peak), "--result", str(result), "--out", str(out), "--reference-steps",
               str(reference_steps)]
    if seconds is not None:
        command += ["--seconds", str(seconds)]
    return subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": str(threads)}), result


def finish(started: list[tuple[subprocess.Popen, Path]]) -> list[dict]:
    rows = []
    for process, result in started:
        if process.wait() != 0:
            raise SystemExit(f"a benchmark row failed (exit {process.returncode})")
        rows.append(json.loads(result.read_text()))
    return rows


BUSY_LOOP = "import torch\ntorch.set_num_threads(1)\na = torch.randn(256, 256)\nwhile True:\n    a @ a"


def time_generation(rows: list[dict], cores: str, threads: int, contended: bool) -> None:
    """Add each row's generation speeds, timed in one process pinned to `cores` (in (c): core 1, beside a
    process multiplying matrices on core 0)."""
    result = Path(tempfile.mkdtemp()) / "generation.json"
    busy = None
    if contended:
        cores = "1"
        busy = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", BUSY_LOOP],
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        worker = subprocess.run(["taskset", "-c", cores, sys.executable, __file__, "--generation",
                                 *(row["run_dir"] for row in rows), "--threads", str(threads),
                                 "--result", str(result)], env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    finally:
        if busy is not None:
            busy.kill()
    if worker.returncode != 0:
        raise SystemExit(f"timing generation failed (exit {worker.returncode})")
    for row, speeds in zip(rows, json.loads(result.read_text())):
        row.update(speeds)



def setting(label: str, threads: int, contended: bool, peak: float, out: Path, reference_steps: int,
            idle_reference_fit: float | None = None) -> list[dict]:
    """One repetition of a setting: the reference, then the two genloom rows with its whole fit as their
    budget; contended, each genloom row beside a reference of its own (one per core, started together) with the
    idle reference's fit times CONTENTION as its budget, read at the end of the reference beside it. Then the
    rows' generation speeds."""
    cores = "0" if threads == 1 else "0,1"
    if not contended:
        reference, = finish([start_row(REFERENCE, cores, threads, None, peak, out, reference_steps)])
        rows = [reference, *(finish([start_row(name, cores, threads, reference["fit_seconds"], peak, out,
                                                reference_steps)])[0] for name in (DEFAULT, ADAMW))]
    else:
        rows = []
        for name in (DEFAULT, ADAMW):
            pair = finish([start_row(REFERENCE, "0", 1, None, peak, out, reference_steps),
                           start_row(name, "1", 1, idle_reference_fit * CONTENTION, peak, out, reference_steps)])
            rows += pair if not rows else pair[1:]  # the first pair's reference stands for both
            rows[-1]["beside_reference_seconds"] = pair[0]["seconds"]
    time_generation(rows, cores, threads, contended)
    for row in rows:
        row["setting"] = label
    return rows


def value_at(curve: list, seconds: float) -> float:
    """The best validation loss within `seconds` of training, from the curve."""
    return min((loss for elapsed, loss in curve if elapsed <= seconds), default=math.inf)


def summarise(rows: list[dict]) -> tuple[list[dict], dict]:
    table, verdicts = [], {}
    for repetition, chunk in enumerate([rows[i:i + 3] for i in range(0, len(rows), 3)]):
        reference = chunk[0]
        ref_reach = time_to_reach(reference["curve"], TARGET_LOSS) or reference["seconds"]
        adamw_step = 1 / next(r for r in chunk if r["name"] == ADAMW)["steps_per_s"]
        for row in chunk:
            reach = time_to_reach(row["curve"], TARGET_LOSS)
            table.append({
                "setting": row["setting"], "run": repetition % 2 + 1, "model": row["name"], "blocks": row["blocks"],
                "steps": row["steps"],
                "fit_s": round(row["fit_seconds"], 1), "train_s": round(row["seconds"], 1),
                "time_to_1.88_s": round(reach, 1) if reach else None,
                "best_val_loss": round(value_at(row["curve"], row.get("beside_reference_seconds", math.inf)), 4),
                "steps_per_s": round(row["steps_per_s"], 2), "tokens_per_s": round(row["tokens_per_s"]),
                "mfu": round(row["mfu"], 3), "optimizer_share": round(row["optimizer_share"], 3),
                "step_vs_adamw": round(1 / row["steps_per_s"] / adamw_step, 3),
                "gen_cache_single": round(row["gen_single_cache"]), "gen_cache_batch32": round(row["gen_batch32_cache"]),
                "gen_no_cache_single": round(row["gen_single_no_cache"])})
        ours = next(r for r in chunk if r["name"] == DEFAULT)
        ours_reach = time_to_reach(ours["curve"], TARGET_LOSS)
        key = f"{chunk[0]['setting']}, run {repetition % 2 + 1}"
        # within the reference's wall-clock (its budget); beside a reference, up to that reference's end
        at_end = value_at(ours["curve"], ours.get("beside_reference_seconds", math.inf))
        verdicts[key] = {
            f"1.88 in <= half the reference's time ({ref_reach / 2:.1f} s)": (ours_reach is not None and
                                                                             ours_reach <= ref_reach / 2, ours_reach),
            f"{STRETCH_LOSS} or less within the reference's time": (at_end <= STRETCH_LOSS, at_end),
            "the optimizer adds <= 15% to a step (its step over a forward and backward pass)": (
                ours["optimizer_share"] <= 0.15, round(ours["optimizer_share"], 3)),
            "generation with the cache >= 5x the reference without": (
                ours["gen_single_cache"] >= 5 * reference["gen_single_no_cache"],
                round(ours["gen_single_cache"] / reference["gen_single_no_cache"], 2))}
        if "1 thread" in key:
            verdicts[key]["MFU at 1 thread >= 50%"] = (ours["mfu"] >= 0.5, round(ours["mfu"], 3))
    return table, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps only, to check the script")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--peak", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--reference-steps", type=int, default=REFERENCE_TRAIN["steps"], help=argparse.SUPPRESS)
    parser.add_argument("--generation", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--only-c", action="store_true", help="rerun setting (c) only, keeping the last run's (a) "
                        "and (b) rows from results/text_threads.json")
    args = parser.parse_args()
    if args.row:  # a worker: one row, pinned by its parent
        row = run_row(args.row, args.threads, args.seconds, args.peak, args.out, args.reference_steps)
        args.result.write_text(json.dumps(row))
        return
    if args.generation:  # a worker: the generation speeds of the runs given
        args.result.write_text(json.dumps(generation_speeds(args.generation, args.threads)))
        return
    reference_steps = 30 if args.quick else REFERENCE_TRAIN["steps"]
    out = Path(tempfile.mkdtemp(prefix="genloom-bench-threads-"))
    peaks, costs = {}, {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        peaks[threads] = peak_matmul_flops()
        costs[threads] = newton_schulz_cost(threads)
    rows = []
    if args.only_c:  # the other settings' rows of the last run kept; (c) runs anew
        rows = [row for row in json.loads((RESULTS / "text_threads.json").read_text())["rows"]
                if not row["setting"].startswith("(c)")]
    for label, threads, contended in SETTINGS:
        if args.only_c and not contended:
            continue
        # beside the reference, a genloom row's budget comes from the 1-thread idle reference's fit
        idle = min(row["fit_seconds"] for row in rows if row["name"] == REFERENCE and row["setting"] == SETTINGS[0][0]) \
            if contended else None
        for _ in range(2):
            rows += setting(label, threads, contended, peaks[threads], out, reference_steps, idle)
    table, verdicts = summarise(rows)
    report(table, verdicts, peaks, costs, rows, args.quick)


def report(table: list[dict], verdicts: dict, peaks: dict, costs: dict, rows: list[dict], quick: bool) -> None:
    columns = list(table[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join("" if row[c] is None else str(row[c]) for c in columns) + " |" for row in table]
    checks = [f"- {setting}: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'} ({figure})"
                                          for name, (ok, figure) in checks.items())
              for setting, checks in verdicts.items()]
    text = "\n".join([
        "# Text benchmark in three settings: 1 thread, 2 threads, two jobs at once", "",
        f"Run {time.strftime('%Y-%m-%d %H:%M')}; torch {torch.__version__}; every row in its own process, pinned "
        "with taskset; genloom's rows have the reference's whole fit (data, validation and writing included) "
        f"as their --minutes, in (c) the idle reference's times {CONTENTION}, read at the end of the reference "
        "beside them (best_val_loss up to it); times are training seconds (validation excluded); every row is "
        f"validated on about {EVAL['eval_batches'] * REFERENCE_TRAIN['batch_size'] * REFERENCE_MODEL['block_size']:,} "
        "held-out tokens every 50 steps. " + ("QUICK SMOKE RUN." if quick else ""),
        f"Measured peak float32 matmul: {peaks[1] / 1e9:.1f} GFLOP/s at 1 thread, {peaks[2] / 1e9:.1f} at 2 (MFU "
        "of each row against its thread count's).",
        f"Newton-Schulz iterations of one Muon step on the default model's {costs[1]['matrices']} matrices: " +
        "; ".join(f"{threads} thread(s): bfloat16 {c['bfloat16']:.1f} ms, float32 {c['float32']:.1f} ms"
                  for threads, c in costs.items()) + " (bfloat16 is what torch.optim.Muon runs: fast where the CPU has AVX512-BF16 or AMX, emulated at "
        "many times the cost elsewhere; genloom's Muon runs float32 on every CPU, the same result on each).",
        "optimizer_share: the optimizer's step over one forward and backward pass of the same batch, timed in the "
        "row's process (the target's measure); step_vs_adamw: the whole row's seconds per step over the AdamW "
        "row's, which also carries the run-to-run spread of separate processes (the two AdamW repetitions of a "
        "setting differ by up to 7%); generation in tokens per second, the rows of a repetition timed in turn in one "
        "process (pinned as the setting; in (c) beside a busy core), best of five after a warm-up.", "",
        *lines, "", *checks, ""])
    write_results("text_threads", text, {"table": table, "verdicts": verdicts, "peaks": peaks,
                                         "newton_schulz_ms": costs, "rows": rows}, quick)


if __name__ == "__main__":
    main()
