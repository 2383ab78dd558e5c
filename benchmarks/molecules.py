"""MOSES on this CPU: genloom's default molecule model trained for a fixed budget on the built-in `moses` (250,000
of MOSES' 1,584,663 training molecules), then 10,000 samples scored with MOSES' metrics (genloom.metrics.molecules,
checked against the molsets wheel's own code in tests/metrics/test_molecules.py) against 10,000 of MOSES' test
molecules; novelty against all 1,584,663 training molecules.

Peers: MOSES' published figures for its CharRNN (a 3-layer LSTM of 768 units) and VAE (a GRU encoder and
decoder), from the table of the MOSES README (github.com/molecularsets/moses, README.md at commit 0447c9f:
"Metrics"). Those models were trained for up to 80 epochs over all 1.58 M molecules on GPUs and scored on
30,000 samples against all 176,074 test molecules; genloom's row gets minutes on two CPU cores, so the comparison
says how far a short CPU run gets, not which architecture is better. FCD and SNN depend on the reference set's
size: ours is a seeded 10,000 of the test set.

Targets (issue 22): validity >= 0.95, uniqueness@10k >= 0.99, novelty >= 0.80 for the autoregressive default.

Rows: genloom's default sampling for molecules (temperature 1, SMILES' syntax as a grammar, data/smiles_grammar.py,
and epsilon sampling at 0.02, defaults.py); MOSES' own (temperature 1, neither); the grammar alone; and the grammar
at --temperature (default 0.9), the other way to trade the distribution's tail for validity.

Usage (both cores, nothing else running; about 20 minutes of training and 10 of scoring):
  .venv/bin/python benchmarks/molecules.py --keep /tmp/molkeep
  .venv/bin/python benchmarks/molecules.py --run /tmp/molkeep/run       (score a kept run again)
  .venv/bin/python benchmarks/molecules.py --quick --out /tmp/molecules.md     (a smoke run)
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

import genloom as gl
from genloom.metrics.molecules import Molecules, molecule_scores, reference_sample, unique_at
from shared_parts import log, results_arguments, write_section

RESULTS = Path(__file__).parent / "results" / "molecules.md"
METRICS = ("validity", "unique@1000", "unique@10000", "unique", "novelty", "fcd", "snn", "int_div1", "int_div2",
           "filters", "logP_wasserstein", "SA_wasserstein", "QED_wasserstein", "weight_wasserstein")
# MOSES README, commit 0447c9f ("Metrics" table; Test columns): its own models after full training on GPUs
PUBLISHED = {
    "CharRNN": {"validity": 0.9598, "unique@1000": 1.0, "unique@10000": 0.9993, "fcd": 0.3233, "snn": 0.4606,
                "int_div1": 0.8561, "filters": 0.9920},
    "VAE": {"validity": 0.9528, "unique@1000": 1.0, "unique@10000": 0.9992, "fcd": 0.2540, "snn": 0.4684,
            "int_div1": 0.8548, "filters": 0.9925},
}
TARGETS = {"validity": 0.95, "unique@10000": 0.99, "novelty": 0.80}


def samplers(temperature: float) -> dict[str, dict]:
    """Each row's sampling: genloom's default for molecules (SMILES' grammar, epsilon 0.02, temperature 1), as
    MOSES' models draw (neither), the grammar alone, and a lower temperature instead of epsilon."""
    return {"genloom default (grammar, epsilon 0.02)": {},
            "temperature 1, no grammar, no epsilon (MOSES' sampling)": {"grammar": False, "epsilon": 0.0},
            "grammar, no epsilon": {"epsilon": 0.0},
            f"grammar, temperature {temperature:g}, no epsilon": {"temperature": temperature, "epsilon": 0.0}}
FAMILY_KEYS = {"n_layer", "n_head", "n_embd", "dropout", "rope"}  # --options keys for the family; the rest: fit's


def unique_among_valid(model: gl.Model, samples: list[str], sampling: dict, k: int = 10_000) -> float:
    """MOSES' uniqueness@k: distinct molecules among the first k valid ones, drawing more samples until there
    are k (seeds 1, 2, ...)."""
    valid, seed = Molecules.of(samples).smiles, 1
    while len(valid) < k:
        valid += Molecules.of(model.sample(2_000, seed=seed, progress=False, **sampling)).smiles
        seed += 1
    return unique_at(valid, k)


def trained_model(args: argparse.Namespace, options: dict, folder: Path) -> gl.Model:
    """The default model trained on moses for args.minutes, or the run args.run names (trained so before)."""
    if args.run is not None:
        log(f"scoring {args.run}")
        return gl.load(args.run)
    log(f"training the default molecule model on moses for {args.minutes:g} minutes ({args.threads} threads)")
    model = gl.Model("autoregressive", **{k: v for k, v in options.items() if k in FAMILY_KEYS})
    started = time.perf_counter()
    model.fit("moses", minutes=args.minutes, out=folder / "run", progress=False,
              **{k: v for k, v in options.items() if k not in FAMILY_KEYS})
    log(f"trained {model.record['steps_trained']} steps in {time.perf_counter() - started:.0f} s")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    results_arguments(parser, RESULTS, "1 minute of training, 1,000 samples")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget of the whole fit")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--temperature", type=float, default=0.9, help="the last row's sampling temperature")
    parser.add_argument("--options", default="{}", help="JSON: family and training options for the fit")
    parser.add_argument("--keep", type=Path, help="keep the trained run in this folder (default: a temporary one)")
    parser.add_argument("--run", type=Path, help="score this run (one this script trained and kept) instead of "
                        "training one")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.samples = 1.0, 1000
    torch.set_num_threads(args.threads)
    options = json.loads(args.options)

    with tempfile.TemporaryDirectory() as scratch:
        model = trained_model(args, options, args.keep or Path(scratch))
        record = model.record
        log(f"scoring {args.samples:,} samples a row")
        reference = reference_sample(gl.load_data("moses-test").values.tolist(), 0)
        training = set(gl.load_data("moses-full").values)
        rows = {}
        for label, sampling in samplers(args.temperature).items():
            started = time.perf_counter()
            samples = model.sample(args.samples, seed=0, progress=False, **sampling)
            sample_seconds = time.perf_counter() - started
            rows[label], _, _ = molecule_scores(samples, reference, training)
            if "unique@10000" not in rows[label]:  # fewer than 10,000 valid: draw on, as MOSES' 30,000 would
                rows[label]["unique@10000"] = unique_among_valid(model, samples, sampling)
            log(f"{label}: sampled in {sample_seconds:.0f} s; " + ", ".join(
                f"{name} {rows[label].get(name, float('nan')):.3f}" for name in ("validity", "unique@10000",
                                                                                   "novelty", "fcd")))
    rows.update(PUBLISHED)
    body = [f"Run {time.strftime('%Y-%m-%d %H:%M')} on {platform.processor() or platform.machine()}, "
            f"{args.threads} threads: `{shlex.join([Path(sys.executable).name, *sys.argv])}`.", "",
            f"genloom: the default `autoregressive` model{f' with {options}' if options else ''} on `moses` for "
            f"{record['train'].get('minutes') or args.minutes:g} minutes on {record['train'].get('threads')} "
            "threads "
            f"({record['steps_trained']:,} steps of {record['train']['batch_size']} molecules, "
            f"{record['steps_trained'] * record['train']['batch_size'] / 250_000:.2f} passes over the 250,000), "
            f"{args.samples:,} samples. CharRNN and VAE: MOSES' published figures (README at commit 0447c9f), "
            "trained up to 80 epochs over 1.58 M molecules on GPUs and scored on 30,000 samples against the whole "
            "test set; blank where that table gives none.", "",
            "| metric | " + " | ".join(rows) + " | target |", "|---" * (len(rows) + 2) + "|"]
    for name in METRICS:
        cells = [f"{row[name]:.4f}" if name in row else "" for row in rows.values()]
        body.append(f"| {name} | " + " | ".join(cells) + f" | {TARGETS.get(name, '')} |")
    write_section(args.out, args.section, "Molecules: MOSES on a CPU", body)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
