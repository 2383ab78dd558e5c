"""Synthetic tables over many tables, seeds and budgets: genloom's family="auto" and each family against SDV's
CTGAN, TVAE and GaussianCopula (sdv from PyPI at their defaults), every model in a process of its own pinned to
one core (one thread), two at a time on this 2-core machine.

Tables (each with a declared target, split 80/20 with a fixed seed): Adult, the built-in breast_cancer and wine,
../shared/data/tables/ (penguins, tips, mpg, diamonds, taxis), the SDMetrics demo table (student placements)
and the ODDS tables of ../shared/data/anomaly/ read as classification tables (target: anomaly yes/no).
For every table and seed SDV's synthesizers fit first; genloom's models then get two budgets, 0.25x and 1x the
mean CTGAN fit time of that table, passed as minutes= (which bounds genloom's whole fit call). Every model
samples as many rows as it trained on; genloom.metrics.tabular.table_scores scores them against the held-out
20%: SDMetrics quality and pair trends, detection AUC, ML utility (the real 80% as the ceiling), DCR ratio.

Summary: the mean rank of every model over all tables and budgets (SDV's rows stand in both budgets), and the
wins/ties/losses of auto against each peer, a difference within the seed spread (the larger of the two
models' standard deviations over seeds) counting as a tie.
Targets: auto has the best mean rank on utility and on quality at both budgets; it is never below the best SDV
synthesizer by more than the seed spread on any table; its fit time stays within 5% of the budget.

Finished jobs are kept in --cache (JSON lines), so a stopped run resumes where it was and a subset can be
run now and the rest later. Usage:
  .venv/bin/python benchmarks/tabular_many.py                      (all of it: about a day on 2 cores)
  .venv/bin/python benchmarks/tabular_many.py --tables wine penguins --seeds 0 --families vae
  .venv/bin/python benchmarks/tabular_many.py --families vae vae:batch_size=500,patience=0   (an ablation)
  .venv/bin/python benchmarks/tabular_many.py --tables cardio thyroid --families auto --cores 1 \
      --report benchmarks/results/tabular_more.md   (auto and the peers only, on one core, the rest kept free)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import Queue

import numpy as np
import pandas as pd

RESULTS = Path(__file__).parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PEERS = ("SDV CTGAN", "SDV TVAE", "SDV GaussianCopula")
FAMILIES = ("vae", "wgan-gp", "diffusion", "autoregressive")
AUTO = "auto"
BUDGETS = (0.25, 1.0)  # shares of the table's mean CTGAN fit time
TEST_FRACTION = 0.2
BUDGET_TOLERANCE = 0.05
ODDS = ("breastw", "pima", "cardio", "thyroid", "satellite", "mammography", "pendigits", "shuttle")
METRICS = ("utility_synthetic", "quality", "column_pair_trends", "detection_auc", "dcr_ratio")


# -- the tables ------------------------------------------------------------------------------------------------
def odds_table(name: str) -> pd.DataFrame:
    arrays = np.load(SHARED / "anomaly" / f"{name}.npz")
    frame = pd.DataFrame(arrays["x"], columns=[f"x{i}" for i in range(arrays["x"].shape[1])])
    frame["anomaly"] = np.where(arrays["y"] == 1, "yes", "no")
    return frame


def demo_table() -> pd.DataFrame:
    import sdmetrics

    real, _, _ = sdmetrics.load_demo(modality="single_table")
    return real["student_placements"].drop(columns=["student_id"])


def builtin(name: str) -> pd.DataFrame:
    import genloom as gl

    return gl.load_data(name).values


TABLES = {
    "adult": ("income", lambda: builtin("adult")),
    "breast_cancer": ("target", lambda: builtin("breast_cancer")),
    "wine": ("target", lambda: builtin("wine")),
    "penguins": ("species", lambda: pd.read_csv(SHARED / "tables" / "penguins.csv")),
    "tips": ("time", lambda: pd.read_csv(SHARED / "tables" / "tips.csv")),
    "mpg": ("origin", lambda: pd.read_csv(SHARED / "tables" / "mpg.csv").drop(columns=["name"])),
    "diamonds": ("cut", lambda: pd.read_csv(SHARED / "tables" / "diamonds.csv")),
    "taxis": ("payment", lambda: pd.read_csv(SHARED / "tables" / "taxis.csv").dropna(subset=["payment"])),
    "student_placements": ("placed", demo_table),
    **{name: ("anomaly", lambda name=name: odds_table(name)) for name in ODDS},
}


def split(name: str) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    from genloom.train.batches import held_out_indices

    target, read = TABLES[name]
    frame = read()
    train_rows, test_rows = held_out_indices(len(frame), TEST_FRACTION)  # a fixed seed (0)
    return (*(frame.iloc[rows].reset_index(drop=True) for rows in (train_rows, test_rows)), target)


# -- one job, in a process of its own ---------------------------------------------------------------------------
def fit_peer(name: str, train: pd.DataFrame, kinds: dict[str, str], seed: int):
    """SDV's synthesizer at its defaults, told the column kinds genloom infers; (sample, seconds)."""
    import torch
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer

    from genloom.metrics.tabular import sdmetrics_metadata

    metadata = Metadata.load_from_dict({"tables": {"table": sdmetrics_metadata(kinds)}})
    synthesizer = {"SDV CTGAN": CTGANSynthesizer, "SDV TVAE": TVAESynthesizer,
                   "SDV GaussianCopula": GaussianCopulaSynthesizer}[name](metadata)
    np.random.seed(seed)
    torch.manual_seed(seed)
    started = time.perf_counter()
    synthesizer.fit({"table": train})
    return (lambda n: synthesizer.sample(n)["table"]), time.perf_counter() - started, {}


def variant(model: str) -> tuple[str, dict]:
    """A model name and its settings: "vae" is the family at its defaults, "vae:batch_size=500,numbers=quantile"
    an ablation of them (training settings, the codec's "numbers", or the family's options)."""
    family, _, settings = model.partition(":")
    return family, {k: parsed(v) for k, v in (item.split("=") for item in settings.split(",") if item)}


def parsed(value: str):
    """A number, true/false or null as JSON reads it; anything else as the text it is."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def fit_genloom(model_name: str, train: pd.DataFrame, seconds: float, seed: int, out: Path):
    from dataclasses import fields

    import genloom as gl
    from genloom.train.config import TrainConfig

    family, settings = variant(model_name)
    training = {k: v for k, v in settings.items() if k in {f.name for f in fields(TrainConfig)}}
    codec = {k: v for k, v in settings.items() if k == "numbers"}
    model = gl.Model(family, **{k: v for k, v in settings.items() if k not in training and k not in codec})
    started = time.perf_counter()
    model.fit(train, minutes=seconds / 60, out=out, progress=False, seed=seed, codec_options=codec, **training)
    fit_seconds = time.perf_counter() - started
    return ((lambda n: model.sample(n, seed=seed, progress=False)), fit_seconds,
            {"steps": model.record["steps_trained"], "family": model.record["family"]})


def run_job(job: dict) -> dict:
    import torch

    from genloom.data.tables import column_kinds
    from genloom.metrics.tabular import table_scores

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # SDV and SDMetrics warn about their own deprecations
    train, test, target = split(job["table"])
    kinds = column_kinds(train)
    if job["model"] in PEERS:
        sample, fit_seconds, extra = fit_peer(job["model"], train, kinds, job["seed"])
    else:  # a job run again (its cached result removed) starts a new run
        shutil.rmtree(job["out"], ignore_errors=True)
        sample, fit_seconds, extra = fit_genloom(job["model"], train, job["budget_seconds"], job["seed"],
                                                 Path(job["out"]))
    started = time.perf_counter()
    synthetic = sample(len(train))
    sample_seconds = time.perf_counter() - started
    scores, _ = table_scores(synthetic, train, test, kinds, target, seed=job["seed"])
    return {**job, **extra, "fit_seconds": fit_seconds, "sample_seconds": sample_seconds,
            "rows": len(train), "columns": train.shape[1],
            **{k: float(v) for k, v in scores.items() if isinstance(v, (int, float))}}


# -- running the jobs two at a time -------------------------------------------------------------------------
def key(job: dict) -> tuple:
    return job["table"], job["model"], job["seed"], job.get("budget")


def run_all(jobs: list[dict], cache: Path, out: Path, use_cores: list[int]) -> list[dict]:
    """Run the jobs not in `cache`, each pinned to a free core of `use_cores`; every result is appended to
    `cache` as it comes."""
    cores: Queue = Queue()
    for core in use_cores:
        cores.put(core)

    def launch(job: dict) -> dict:
        core = cores.get()
        try:
            result_file = out / f"result-{abs(hash(key(job)))}-{time.time_ns()}.json"
            command = ["taskset", "-c", str(core), sys.executable, __file__, "--job", json.dumps(job),
                       "--result", str(result_file)]
            process = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                                     text=True)
            if process.returncode != 0:  # kept too: a budget refused as too short is a result
                failed = {**job, "failed": (process.stderr.strip().splitlines() or ["?"])[-1]}
                with open(cache, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(failed) + "\n")
                log(f"FAILED {key(job)}: {failed['failed']}")
                return failed
            result = json.loads(result_file.read_text())
            with open(cache, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(result) + "\n")
            log(f"{key(job)}: fit {result['fit_seconds']:.1f} s, utility {result['utility_synthetic']:.3f}, "
                f"quality {result['quality']:.3f}")
            return result
        finally:
            cores.put(core)

    with ThreadPoolExecutor(cores.qsize()) as pool:
        return [result for result in pool.map(launch, jobs) if "failed" not in result]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def read_cache(cache: Path) -> list[dict]:
    return [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines()] if cache.exists() else []


def ctgan_seconds(results: list[dict], table: str) -> float:
    return statistics.mean(r["fit_seconds"] for r in results if r["table"] == table and r["model"] == "SDV CTGAN")


# -- the summary ------------------------------------------------------------------------------------------------
def cells(results: list[dict], budgets: tuple[float, ...]) -> dict[tuple, dict]:
    """(table, budget, model) -> each metric's mean and standard deviation over seeds; SDV's rows in every budget."""
    grouped: dict[tuple, list[dict]] = {}
    for r in results:
        for budget in budgets if r["model"] in PEERS else (r["budget"],):
            grouped.setdefault((r["table"], budget, r["model"]), []).append(r)
    summary = {}
    for cell, rows in grouped.items():
        summary[cell] = {"seeds": len(rows), "fit_seconds": statistics.mean(r["fit_seconds"] for r in rows),
                         "sample_seconds": statistics.mean(r["sample_seconds"] for r in rows),
                         "budget_seconds": rows[0].get("budget_seconds"),
                         "family": rows[0].get("family", rows[0]["model"])}
        for metric in METRICS + ("utility_real",):
            values = [r[metric] for r in rows if metric in r]
            summary[cell][metric] = statistics.mean(values) if values else None
            summary[cell][metric + "_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return summary


def mean_ranks(summary: dict, metric: str, budget: float) -> dict[str, float]:
    """Mean rank (1 = best) of each model over the tables, higher `metric` better."""
    ranks: dict[str, list[float]] = {}
    for table in sorted({t for t, b, _ in summary if b == budget}):
        entries = {m: s[metric] for (t, b, m), s in summary.items() if t == table and b == budget}
        order = pd.Series(entries).rank(ascending=False, method="average")
        for model, rank in order.items():
            ranks.setdefault(model, []).append(float(rank))
    return {model: statistics.mean(values) for model, values in sorted(ranks.items())}


def wins_ties_losses(summary: dict, metric: str, peer: str) -> tuple[int, int, int]:
    wins = ties = losses = 0
    for (table, budget, model), ours in summary.items():
        theirs = summary.get((table, budget, peer))
        if model != AUTO or theirs is None:
            continue
        band = max(ours[metric + "_sd"], theirs[metric + "_sd"])
        difference = ours[metric] - theirs[metric]
        wins, ties, losses = (wins + (difference > band), ties + (abs(difference) <= band),
                              losses + (difference < -band))
    return wins, ties, losses


def report(results: list[dict], budgets: tuple[float, ...], seeds: list[int], failures: list[dict],
           cores: list[int]) -> str:
    summary = cells(results, budgets)
    lines = ["# Synthetic tables over many tables, seeds and budgets", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M')}; python {platform.python_version()}; one thread per model, "
             f"{len(cores)} model(s) at a time, each pinned to its own core; seeds {seeds}; budgets "
             f"{', '.join(f'{b}x' for b in budgets)} the table's mean SDV CTGAN fit time (genloom's minutes=, the "
             "whole fit call). Means over seeds, the standard deviation after +-.", "",
             "| table | rows | budget | model | fit s | sample s | utility (real) | quality | pair trends | "
             "detection AUC | DCR ratio |", "|" + " --- |" * 11]
    rows_of = {r["table"]: r["rows"] for r in results}
    for (table, budget, model), s in sorted(summary.items(), key=lambda item: (item[0][0], item[0][1],
                                                                               item[0][2] not in PEERS, item[0][2])):
        name = model if model != AUTO else f"auto ({s['family']})"
        budget_text = "" if s["budget_seconds"] is None else f" of {s['budget_seconds']:.1f}"
        lines.append(
            f"| {table} | {rows_of[table]:,} | {budget}x | {name} | {s['fit_seconds']:.1f}{budget_text} | "
            f"{s['sample_seconds']:.2f} | {s['utility_synthetic']:.3f}+-{s['utility_synthetic_sd']:.3f} "
            f"({s['utility_real']:.3f}) | {s['quality']:.3f}+-{s['quality_sd']:.3f} | {s['column_pair_trends']:.3f} | "
            f"{s['detection_auc']:.3f} | {s['dcr_ratio']:.2f} |")
    lines += ["", "## Mean rank over tables (1 = best)", "", "| budget | metric | " + " | ".join(
        sorted({m for _, _, m in summary})) + " |", "|" + " --- |" * (2 + len({m for _, _, m in summary}))]
    targets = []
    for budget in budgets:
        for metric in ("utility_synthetic", "quality"):
            ranks = mean_ranks(summary, metric, budget)
            lines.append(f"| {budget}x | {metric} | " + " | ".join(f"{ranks.get(m, float('nan')):.2f}"
                                                                 for m in sorted({m for _, _, m in summary})) + " |")
            if AUTO in ranks:
                best = min(ranks.values())
                targets.append(f"auto has the best mean rank on {metric} at {budget}x: "
                               f"{'met' if ranks[AUTO] <= best else 'NOT met'} (auto {ranks[AUTO]:.2f}, best "
                               f"{min(ranks, key=ranks.get)} {best:.2f})")
    lines += ["", "## auto against each peer: wins / ties / losses (tie: within the seed spread)", ""]
    for peer in PEERS:
        for metric in ("utility_synthetic", "quality"):
            lines.append(f"- {peer}, {metric}: " + " / ".join(map(str, wins_ties_losses(summary, metric, peer))))
    below = []
    for (table, budget, model), ours in summary.items():
        if model != AUTO:
            continue
        peers = [summary[(table, budget, p)] for p in PEERS if (table, budget, p) in summary]
        for metric in ("utility_synthetic", "quality"):
            best = max(peers, key=lambda s: s[metric], default=None)
            if best is not None and ours[metric] < best[metric] - max(ours[metric + "_sd"], best[metric + "_sd"]):
                below.append(f"{table} {budget}x {metric} {ours[metric]:.3f} < {best[metric]:.3f}")
    targets.append("auto never below the best SDV synthesizer by more than the seed spread: "
                   + ("met" if not below else "NOT met (" + "; ".join(below) + ")"))
    over = [f"{r['table']} {r['budget']}x seed {r['seed']}: {r['fit_seconds']:.1f} s of {r['budget_seconds']:.1f}"
            for r in results if r["model"] == AUTO and r["fit_seconds"] > (1 + BUDGET_TOLERANCE) * r["budget_seconds"]]
    worst = max((r["fit_seconds"] / r["budget_seconds"] for r in results if r["model"] == AUTO), default=float("nan"))
    targets.append(f"auto's fit time within {BUDGET_TOLERANCE:.0%} of the budget: "
                   + ("met" if not over else "NOT met (" + "; ".join(over) + ")") + f"; largest ratio {worst:.3f}")
    refused = {}
    for r in failures:
        refused.setdefault((r["table"], r["model"], r["budget"]), []).append(r["seed"])
    lines += ["", "## Targets", "", *[f"- {t}" for t in targets], "",
              f"## Runs that did not finish ({len(failures)}; left out of the means and ranks above)", "",
              *[f"- {t} {m} {b}x, seeds {seeds_}: " + next(r["failed"] for r in failures if
                                                          (r["table"], r["model"], r["budget"]) == (t, m, b))[:160]
                for (t, m, b), seeds_ in sorted(refused.items())], ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--families", nargs="+", default=[AUTO, *FAMILIES])
    parser.add_argument("--budgets", nargs="+", type=float, default=list(BUDGETS))
    parser.add_argument("--cache", type=Path, default=RESULTS / "tabular_many.jsonl")
    parser.add_argument("--out", type=Path, default=Path("/tmp/genloom-bench-tables"))
    parser.add_argument("--cores", nargs="+", type=int, default=[0, 1], help="the cores to run jobs on, one each")
    parser.add_argument("--report", type=Path, default=RESULTS / "tabular_many.md",
                        help="where the table and summary of the asked tables go")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        args.result.write_text(json.dumps(run_job(json.loads(args.job))))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    done = {key(r) for r in read_cache(args.cache)}
    peer_jobs = [{"table": t, "model": p, "seed": s} for t in args.tables for s in args.seeds for p in PEERS]
    run_all([job for job in peer_jobs if key(job) not in done], args.cache, args.out, args.cores)
    results = read_cache(args.cache)
    family_jobs = []
    for table in args.tables:
        for budget in args.budgets:
            seconds = budget * ctgan_seconds(results, table)
            for seed in args.seeds:
                for family in args.families:
                    job = {"table": table, "model": family, "seed": seed, "budget": budget,
                           "budget_seconds": seconds, "out": str(args.out / f"{table}-{family}-{budget}-{seed}")}
                    if key(job) not in done:
                        family_jobs.append(job)
    run_all(family_jobs, args.cache, args.out, args.cores)
    results = [r for r in read_cache(args.cache) if r["table"] in args.tables and r["seed"] in args.seeds
               and (r["model"] in PEERS or (r["model"] in args.families and r["budget"] in args.budgets))]
    failures = [r for r in results if "failed" in r]
    text = report([r for r in results if "failed" not in r], tuple(args.budgets), args.seeds, failures, args.cores)
    print(text)
    args.report.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
