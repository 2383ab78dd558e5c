"""Synthetic tables on this CPU: genloom's families against SDV's CTGANSynthesizer and TVAESynthesizer (sdv
from PyPI, default settings: 300 epochs each), in one process, on the same split and scored by the same code.

Data: the Adult census table (../shared/data/adult.csv, target income), and scikit-learn's breast-cancer
and wine tables (target: the class), each split 80/20 with a fixed seed. Every model fits on the 80% and
samples as many rows; genloom.metrics.tabular.table_scores scores the rows against the held-out 20%:
SDMetrics quality (column shapes and pair trends), detection AUC (0.5 best), ML utility (ROC AUC of trees
trained on the synthetic rows, tested on the held-out real ones; "real" trains on the real 80%), DCR ratio
(median distance of synthetic rows to the training rows over the held-out rows' own; >= 1 is private) and
exact copies of training rows (against the share of held-out rows that repeat a training row).

Budget: CTGAN fits first; every genloom family then gets BUDGET_FRACTION of CTGAN's fit time, counted
over the whole fit (codec included), so the fit-time target is a ratio measured in this run.
Targets: genloom's best family beats the better SDV synthesizer on quality by at least 0.03 and on utility,
fits in at most half of CTGAN's time, and copies no more training rows than held-out rows repeat.

Usage: .venv/bin/python benchmarks/tabular.py                                   (about an hour on 2 cores)
       .venv/bin/python benchmarks/tabular.py --datasets wine --families vae --out /tmp/bench
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
import torch

import genloom as gl
from genloom.data.tables import column_kinds
from genloom.metrics.tabular import sdmetrics_metadata, table_scores
from genloom.train.batches import held_out_indices

RESULTS = Path(__file__).parent / "results"
DATASETS = {"adult": ("income", lambda: gl.load_data("adult").values),  # ../shared/data/adult.csv, shipped
            "breast_cancer": ("target", lambda: gl.load_data("breast_cancer").values),
            "wine": ("target", lambda: gl.load_data("wine").values)}
FAMILIES = ("wgan-gp", "vae", "diffusion", "autoregressive")
PEERS = ("SDV CTGAN", "SDV TVAE")
BUDGET_FRACTION, SEED, TEST_FRACTION = 0.35, 0, 0.2
QUALITY_MARGIN, FIT_TIME_RATIO = 0.03, 0.5
COLUMNS = ("quality", "column_shapes", "column_pair_trends", "detection_auc", "utility_synthetic", "dcr_ratio",
           "exact_copies")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fit_peer(name: str, train: pd.DataFrame, kinds: dict[str, str]):
    """SDV's synthesizer at its defaults, told the same column kinds genloom infers; (sample, seconds)."""
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, TVAESynthesizer

    metadata = Metadata.load_from_dict({"tables": {"table": sdmetrics_metadata(kinds)}})
    synthesizer = {"SDV CTGAN": CTGANSynthesizer, "SDV TVAE": TVAESynthesizer}[name](metadata)
    started = time.perf_counter()
    synthesizer.fit({"table": train})
    return (lambda n: synthesizer.sample(n)["table"]), time.perf_counter() - started


def fit_genloom(family: str, train: pd.DataFrame, seconds: float, runs: Path):
    model = gl.Model(family)
    started = time.perf_counter()
    # every training row trains, as SDV's do: nothing held out for validation
    model.fit(train, minutes=seconds / 60, out=runs / family, progress=False, seed=SEED, val_fraction=0.0)
    return (lambda n: model.sample(n, seed=SEED)), time.perf_counter() - started, model.record["steps_trained"]


def run_dataset(name: str, families: list[str], peers: list[str], runs: Path, reused: list[dict]) -> list[dict]:
    """Fit and score each model on one data set; `reused` peer rows (from an earlier run) are kept as they are."""
    target, read = DATASETS[name]
    frame = read()
    train_rows, test_rows = held_out_indices(len(frame), TEST_FRACTION)
    train, test = (frame.iloc[rows].reset_index(drop=True) for rows in (train_rows, test_rows))
    kinds = column_kinds(train)
    log(f"{name}: {len(train):,} training rows, {len(test):,} held out, kinds {kinds}")
    rows = [row for row in reused if row["data"] == name]
    ctgan_seconds = next((row["fit_seconds"] for row in rows if row["model"] == "SDV CTGAN"), None)
    peers = [peer for peer in peers if peer not in {row["model"] for row in rows}]
    for model in [*peers, *families]:
        if model in PEERS:
            sample, fit_seconds = fit_peer(model, train, kinds)
            steps = None
            if model == "SDV CTGAN":
                ctgan_seconds = fit_seconds
        else:
            if ctgan_seconds is None:
                raise SystemExit("genloom's budget is a share of CTGAN's fit time: include the SDV CTGAN peer")
            sample, fit_seconds, steps = fit_genloom(model, train, BUDGET_FRACTION * ctgan_seconds, runs / name)
        started = time.perf_counter()
        synthetic = sample(len(train))
        sample_seconds = time.perf_counter() - started
        scores, _ = table_scores(synthetic, train, test, kinds, target, seed=SEED)
        row = {"data": name, "model": model, "fit_seconds": fit_seconds, "sample_seconds": sample_seconds,
               "steps": steps, **scores}
        log(f"{name} {model}: fit {fit_seconds:.1f} s, quality {scores['quality']:.3f}, "
            f"utility {scores['utility_synthetic']:.3f} (real {scores['utility_real']:.3f})")
        rows.append(row)
    return rows


def verdicts(rows: list[dict]) -> dict[str, dict]:
    """The targets, per data set."""
    checks = {}
    for data in dict.fromkeys(row["data"] for row in rows):
        ours = [r for r in rows if r["data"] == data and r["model"] not in PEERS]
        peers = [r for r in rows if r["data"] == data and r["model"] in PEERS]
        ctgan = next((r for r in peers if r["model"] == "SDV CTGAN"), None)
        if not ours or not peers or ctgan is None:
            continue
        best, best_peer = max(ours, key=lambda r: r["quality"]), max(peers, key=lambda r: r["quality"])
        checks[data] = {
            "best genloom family": best["model"], "better SDV synthesizer": best_peer["model"],
            "quality margin": best["quality"] - best_peer["quality"],
            "quality target met": best["quality"] - best_peer["quality"] >= QUALITY_MARGIN,
            "utility target met": best["utility_synthetic"] > max(r["utility_synthetic"] for r in peers),
            "fit time ratio to CTGAN": best["fit_seconds"] / ctgan["fit_seconds"],
            "fit time target met": best["fit_seconds"] <= FIT_TIME_RATIO * ctgan["fit_seconds"],
            "copies target met": best["exact_copies"] <= best["exact_copies_held_out"]}
    return checks


def table(rows: list[dict]) -> list[str]:
    lines = ["| data | model | fit s | sample s | quality | shapes | pair trends | detection AUC | utility "
             "(real) | DCR ratio | exact copies (held-out) |", "|" + " --- |" * 11]
    for r in rows:
        lines.append(f"| {r['data']} | {r['model']}{' (reused)' if r.get('reused') else ''} | {r['fit_seconds']:.1f} | {r['sample_seconds']:.2f} | "
                     f"{r['quality']:.3f} | {r['column_shapes']:.3f} | {r['column_pair_trends']:.3f} | "
                     f"{r['detection_auc']:.3f} | {r['utility_synthetic']:.3f} ({r['utility_real']:.3f}) | "
                     f"{r['dcr_ratio']:.2f} | {r['exact_copies']:.4f} ({r['exact_copies_held_out']:.4f}) |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--out", type=Path, default=RESULTS / "tabular")
    parser.add_argument("--reuse", type=Path, metavar="JSON",
                        help="take the SDV rows (and CTGAN's fit time, the budget) from an earlier run's JSON")
    args = parser.parse_args()
    reused = []
    if args.reuse:
        reused = [{**row, "reused": True} for row in json.loads(args.reuse.read_text(encoding="utf-8"))["rows"]
                  if row["model"] in PEERS]
    warnings.simplefilter("ignore")  # SDV and SDMetrics warn about their own deprecations
    torch.manual_seed(SEED)
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for name in args.datasets:
            rows += run_dataset(name, args.families, args.peers, Path(runs), reused)
    checks = verdicts(rows)
    settings = {"cpu threads": torch.get_num_threads(), "python": platform.python_version(),
                "torch": torch.__version__, "genloom": gl.__version__, "budget": f"{BUDGET_FRACTION} x CTGAN's fit",
                "split": f"{1 - TEST_FRACTION:.0%} train / {TEST_FRACTION:.0%} held out, seed {SEED}"}
    lines = ["# Synthetic tables: genloom vs SDV", "", *table(rows), "",
             *[f"- {data}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in check.items()) for data, check in checks.items()],
             "", "Settings: " + ", ".join(f"{k} {v}" for k, v in settings.items())]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps({"rows": rows, "checks": checks, "settings": settings},
                                                        indent=1), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
