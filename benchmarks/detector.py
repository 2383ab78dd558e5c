"""The synthetic-content detector on MNIST: its held-out ROC AUC against each image family.

How well genloom's detector (a small CNN, genloom.train_detector) tells real digits from each image family's
samples, and whether a stronger generator (lower FID) is harder to detect.

Each family of benchmarks/images28.py (and wgan-gp) trains for the same fixed number of --steps (steps, not
minutes: the machine is shared, and a step count gives the same models on a busy machine) on the 60,000 training
digits, on one thread; --samples samples of each are drawn (diffusion and latent diffusion: DPM-Solver++ with
--sampler-steps steps). FID is measured on those samples against the 10,000 test digits, in the features of
genloom's conv classifier trained --classifier-steps steps (as benchmarks/images.py does; these FIDs compare
among themselves, not with images28.md's, whose classifier trained 3000 steps). Then one detector per family
(real training digits against that family's samples) and one over all families together, each trained
--detector-steps CNN updates on 75% of its examples and measured by ROC AUC on the other 25% (held-out real
digits against held-out samples). A weak detector (--weak-steps updates) is measured too: where the full
detector finds every family (AUC 1.0), the weak one still ranks them.

Usage (one core, about 25 minutes on a free one):
  taskset -c 1 .venv/bin/python benchmarks/detector.py
  taskset -c 1 .venv/bin/python benchmarks/detector.py --quick --out /tmp/detector.md     (a smoke run, ~1 min)
"""
from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy and torch read them

import argparse  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

import genloom as gl  # noqa: E402
from images import Scorer, cpu_name  # noqa: E402
from shared_parts import log, results_arguments, write_section  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "detector.md"
FAMILIES = ("vae", "gan", "wgan-gp", "diffusion", "latent-diffusion", "vq-vae", "stylegan")
SAMPLING = {"diffusion": {"sampler": "dpm-solver"}, "latent-diffusion": {"sampler": "dpm-solver"}}
SEED = 0
ALL = "all families"
PERFECT = 0.99995  # an AUC of 1.0000 to four places


def train_and_sample(name: str, train: gl.Dataset, steps: int, samples: int, sampler_steps: int,
                     runs: Path, device: str, threads: int) -> dict:
    log(f"{name}: training {steps} steps")
    model = gl.Model(name).fit(train, steps=steps, out=runs / name, progress=False, device=device, threads=threads)
    options = {**SAMPLING[name], "steps": sampler_steps} if name in SAMPLING else {}
    log(f"{name}: sampling {samples}")
    start = time.perf_counter()
    images = model.sample(samples, seed=SEED, progress=False, **options)
    return {"family": name, "images": images, "train_seconds": model.record["train_seconds"],
            "sample_seconds": time.perf_counter() - start}


def where(device: str, threads: int) -> str:
    machine = f"{cpu_name()}, {'one thread' if threads == 1 else f'{threads} threads'}"
    return f"{torch.cuda.get_device_name()} (training and sampling) and {machine}" if device.startswith("cuda") else machine


def detect(train: gl.Dataset, fakes: dict[str, np.ndarray], samples: int, steps: int) -> tuple[dict, float]:
    start = time.perf_counter()
    detector = gl.train_detector(train, fakes, samples=samples, steps=steps, seed=SEED, progress=False)
    return detector.aucs, time.perf_counter() - start


def verdict(rows: list[dict], key: str) -> tuple[float, str]:
    """Spearman's rank correlation of FID with the detector's AUC over the families, and what it says; families
    found every time (AUC 1.0 to four places) tie, and where they are most, the ranking rests on the others."""
    fids, aucs = [row["fid"] for row in rows], [row[key] for row in rows]
    perfect = [row["family"] for row in rows if row[key] >= PERFECT]
    if len(perfect) >= len(rows) - 1:
        return float("nan"), (f"cannot be told: {len(perfect)} of the {len(rows)} families are found every time "
                              f"(AUC 1.0000)")
    rho = float(spearmanr(fids, aucs).statistic)
    says = ("holds: the lower a family's FID, the lower (on the whole) its detection AUC" if rho >= 0.5 else
            "does not hold: it goes the other way (lower FID, higher detection AUC)" if rho <= -0.5 else
            "does not hold clearly: FID and detection AUC are hardly related here")
    if len(perfect) > len(rows) / 2:
        others = [row["family"] for row in rows if row[key] < PERFECT]
        says += (f"; but {len(perfect)} of the {len(rows)} families are found every time (AUC 1.0000), so it rests "
                 f"on {', '.join(others)} alone")
    return rho, says


def correlation(rho: float) -> str:
    return "" if math.isnan(rho) else f"rho {rho:.2f}; "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    results_arguments(parser, RESULTS, "40 steps per family, 200 samples, 100 detector steps")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--steps", type=int, default=100, help="training steps of each family")
    parser.add_argument("--samples", type=int, default=1000, help="samples of each family")
    parser.add_argument("--sampler-steps", type=int, default=10, help="DPM-Solver++ steps of the diffusion families")
    parser.add_argument("--detector-steps", type=int, default=300, help="CNN updates of each detector")
    parser.add_argument("--weak-steps", type=int, default=10, help="CNN updates of the weak detector")
    parser.add_argument("--classifier-steps", type=int, default=300, help="training steps of the FID feature net")
    parser.add_argument("--device", default="cpu", help="where the families train and sample (default: cpu); the "
                        "detectors and the FID features are computed on the CPU")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.samples, args.detector_steps, args.classifier_steps = 40, 200, 100, 50
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    train, test = gl.load_data("mnist"), gl.load_data("mnist-test")
    log(f"FID features: training the classifier {args.classifier_steps} steps")
    scorer = Scorer(train, test, args.classifier_steps)
    runs = Path(tempfile.mkdtemp(prefix="genloom-bench-detector-"))
    made = [train_and_sample(name, train, args.steps, args.samples, args.sampler_steps, runs, args.device,
                             args.threads) for name in args.families]
    real = train.values[np.random.default_rng(SEED).permutation(len(train))[:args.samples]]
    floor = scorer.score(real)["fid"]
    rows = []
    for row in made:
        log(f"{row['family']}: FID and detectors")
        fakes = {row["family"]: row["images"]}
        aucs, seconds = detect(train, fakes, args.samples, args.detector_steps)
        weak, _ = detect(train, fakes, args.samples, args.weak_steps)
        rows.append({**row, "fid": scorer.score(row["images"])["fid"], "auc": aucs[row["family"]],
                     "weak_auc": weak[row["family"]], "detector_seconds": seconds})
    log("all families: one detector")
    everything = {row["family"]: row["images"] for row in made}
    together, together_seconds = detect(train, everything, args.samples, args.detector_steps)
    weak_together, _ = detect(train, everything, args.samples, args.weak_steps)
    rho, says = verdict(rows, "auc")
    weak_rho, weak_says = verdict(rows, "weak_auc")
    total = time.perf_counter() - started
    body = [
        f"Run {time.strftime('%Y-%m-%d %H:%M')} on {where(args.device, args.threads)}; torch {torch.__version__}; "
        f"{total / 60:.1f} minutes in all. Each family trained {args.steps} steps on the 60,000 MNIST training "
        f"digits (default options), {args.samples} samples each (diffusion families: DPM-Solver++ "
        f"{args.sampler_steps} steps), seed {SEED}.",
        f"FID against the 10,000 test digits in the features of genloom's conv classifier trained "
        f"{args.classifier_steps} steps (test accuracy: {scorer.describe()}); {args.samples} real training digits "
        f"score {floor:.2f} (the floor).",
        f"Detector: genloom.train_detector, a small CNN, {args.detector_steps} updates of 64 examples (weak: "
        f"{args.weak_steps}); real training digits (as many as samples) against the samples, 25% of each held "
        "out; ROC AUC on the held-out ones (0.5: cannot tell them apart, 1.0: always can).", "",
        "| family | FID | detector AUC | weak detector AUC | AUC in the all-families detector | train s | "
        "sample s | detector s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *[f"| {r['family']} | {r['fid']:.2f} | {r['auc']:.4f} | {r['weak_auc']:.4f} | "
          f"{together[r['family']]:.4f} (weak {weak_together[r['family']]:.4f}) | {r['train_seconds']:.0f} | "
          f"{r['sample_seconds']:.1f} | {r['detector_seconds']:.1f} |" for r in sorted(rows, key=lambda r: r["fid"])],
        f"| {ALL} (one detector) |  | {together['all']:.4f} | {weak_together['all']:.4f} |  |  |  | "
        f"{together_seconds:.1f} |", "",
        "Does a stronger generator (lower FID) get a lower detection AUC? Spearman's rank correlation of FID "
        "with AUC over the families:",
        f"- detector ({args.detector_steps} updates): {correlation(rho)}the claim {says}.",
        f"- weak detector ({args.weak_steps} updates): {correlation(weak_rho)}the claim {weak_says}.",
    ]
    text = "\n".join(body)
    print(text)
    write_section(args.out, args.section, "Synthetic-content detector: MNIST, each image family", body)
    log(f"wrote section {args.section} of {args.out}")


if __name__ == "__main__":
    main()
