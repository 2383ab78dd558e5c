"""Few-step diffusion sampling against 1,000 ancestral steps, on one trained model, judged by two extractors.

One diffusion model (pixel diffusion on 8x8 digits, or latent diffusion on MNIST 28x28) is trained once; the
same model then samples with DDPM over all 1,000 steps, with DDIM and DPM-Solver++ in 20 and 50 steps, and
with DPM-Solver++'s SDE form in 20.
Each sample set is scored by FID/KID against the held-out test images in the features of two classifiers
trained on the train split's labels: genloom's conv net (trained with a one-cycle schedule to >= 99% test
accuracy on MNIST) and a pixel MLP with no convolutional prior. An extractor too weak to tell good digits
from blurred ones ranked 20 DPM-Solver++ steps above 1,000 DDPM steps (issue 18); the two must agree.

Target (issue 18): DPM-Solver++ and DDIM in 20 steps within 1.15x of the 1,000-step FID of the same model
(and, since the deterministic samplers do not reach it, DPM-Solver++'s SDE form, which adds noise each step).

Usage: taskset -c 1 .venv/bin/python benchmarks/few_step.py --data mnist --family latent-diffusion --minutes 15
       taskset -c 1 .venv/bin/python benchmarks/few_step.py --data digits --family diffusion --minutes 10
       .venv/bin/python benchmarks/few_step.py --quick --out /tmp/few_step.md
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import genloom as gl
from images import EXTRACTORS, GRID_COLUMNS, Scorer, cpu_name, plot_grid, split
from shared_parts import all_numbers, log, results_arguments, write_section

RESULTS = Path(__file__).parent / "results"
REFERENCE = "DDPM 1000"
SAMPLERS = {REFERENCE: {"sampler": "ddpm", "steps": 1000},
            "DPM-Solver++ 20": {"sampler": "dpm-solver", "steps": 20},
            "DDIM 20": {"sampler": "ddim", "steps": 20, "eta": 0.0},
            "DPM-Solver++ SDE 20": {"sampler": "dpm-solver-sde", "steps": 20},
            "DPM-Solver++ 50": {"sampler": "dpm-solver", "steps": 50},
            "DDIM 50": {"sampler": "ddim", "steps": 50, "eta": 0.0}}
FEW_STEP_TOLERANCE, SEED = 1.15, 0


def data_sets(name: str) -> tuple[gl.Dataset, gl.Dataset]:
    """Train and held-out test images: MNIST's own split, or the 8x8 digits' seeded 80/20 split."""
    return (gl.load_data("mnist"), gl.load_data("mnist-test")) if name == "mnist" else split(gl.load_data("digits"))


def trained_model(args: argparse.Namespace, train: gl.Dataset) -> gl.Model:
    if args.run is not None:
        log(f"loading {args.run}")
        model = gl.Model.load(args.run)
        made = model.sample(1, progress=False).shape[1:]
        if made != train.values.shape[1:]:
            raise SystemExit(f"--run {args.run} makes images of shape {made}, --data {args.data}'s are "
                             f"{train.values.shape[1:]}: give the --data the run was trained on")
        return model
    out = Path(tempfile.mkdtemp(prefix="genloom-bench-few-step-")) / args.family
    log(f"{args.family}: training {args.minutes:g} minutes on one thread; the run goes to {out}")
    return gl.Model(args.family).fit(train, minutes=args.minutes, out=out, progress=False, device="cpu", threads=1)


def sampler_row(model: gl.Model, scorer: Scorer, label: str, options: dict, samples: int, seeds: list[int]) -> dict:
    """One sampler's scores, the mean over the seeds (with their sd and each seed's own), and its time per set."""
    per_seed, seconds = [], []
    for seed in seeds:
        log(f"{label}: sampling {samples}, seed {seed}")
        start = time.perf_counter()
        images = model.sample(samples, seed=seed, progress=False, **options)
        seconds.append(time.perf_counter() - start)
        per_seed.append(scorer.score(images))
        log(f"{label}: {seconds[-1]:.1f} s, " + ", ".join(f"FID ({name}) {per_seed[-1][scorer.keys(name)[0]]:.2f}"
                                                          for name in scorer.nets))
        if seed == seeds[0]:
            grid = images[:GRID_COLUMNS]
    mean = {key: float(np.mean([score[key] for score in per_seed])) for key in per_seed[0]}
    spread = {f"{key}_sd": float(np.std([score[key] for score in per_seed], ddof=1)) if len(seeds) > 1 else 0.0
              for key in per_seed[0] if key.startswith("fid")}
    return {"sampler": label, "sample_seconds": float(np.mean(seconds)), "grid": grid, **mean, **spread,
            "per_seed": per_seed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("mnist", "digits"), default="mnist")
    parser.add_argument("--family", choices=("diffusion", "latent-diffusion"), default="latent-diffusion")
    parser.add_argument("--minutes", type=float, default=15.0, help="training minutes (one thread)")
    parser.add_argument("--run", type=Path, help="score this trained run instead of training one")
    parser.add_argument("--samples", type=int, default=1000, help="samples per sampler")
    parser.add_argument("--classifier-steps", type=int, default=3000, help="training steps of each extractor")
    parser.add_argument("--seeds", type=int, nargs="+", default=[SEED], help="sample seeds per sampler: one "
                        "seed's FID can move by half between seeds, so compare means over several")
    results_arguments(parser, RESULTS / "few_step.md", "6 s of training, 50 samples, 20-step extractors")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.samples, args.classifier_steps = 0.1, 50, 20
    torch.set_num_threads(1)
    train, test = data_sets(args.data)
    log(f"extractors: training {args.classifier_steps} steps each")
    scorer = Scorer(train, test, args.classifier_steps, extractors=tuple(EXTRACTORS))
    log(f"extractors' test accuracy: {scorer.describe()}")
    model = trained_model(args, train)
    rows = [sampler_row(model, scorer, label, options, args.samples, args.seeds) for label, options in SAMPLERS.items()]
    real = train.values[np.random.default_rng(SEED).permutation(len(train))[:args.samples]]
    floor = scorer.score(real)
    checks = verdicts(rows, scorer)
    title = f"{model.record['family']} on {args.data}"
    body = [f"## {title}", "",
            f"Run {time.strftime('%Y-%m-%d %H:%M')} on {cpu_name()}, {os.cpu_count()} CPUs, one thread; "
            f"torch {torch.__version__}; {model.record['steps_trained']} training steps in "
            f"{model.record['train_seconds']:.0f} s; {args.samples} samples per sampler and seed, seeds "
            f"{', '.join(map(str, args.seeds))} (FID: mean ± sd over them); FID/KID "
            f"against {len(test):,} held-out test images. Extractors trained {args.classifier_steps} steps on the "
            f"train split's labels; test accuracy: {scorer.describe()}.", "",
            *table(rows, floor, scorer, args.samples), "",
            *[f"- {name}: {'met' if check['met'] else 'NOT met'} ({check['detail']})"
              for name, check in checks.items()],
            "", *all_numbers([{k: v for k, v in row.items() if k != "grid"} for row in rows] + [{"floor": floor}])]
    text = "\n".join(body)
    print(text)
    write_section(args.out, args.section, "Few-step diffusion sampling against 1,000 DDPM steps", body)
    grid_path = args.out.with_name(f"{args.out.stem}-{args.section}.png")
    plot_grid([("real (test)", test.values[:: max(1, len(test) // GRID_COLUMNS)][:GRID_COLUMNS])]
              + [(row["sampler"], row["grid"]) for row in rows], grid_path)


def table(rows: list[dict], floor: dict, scorer: Scorer, samples: int) -> list[str]:
    """One row per sampler: its time, and per extractor its FID (and its ratio to DDPM 1000's) and KID."""
    reference = next(row for row in rows if row["sampler"] == REFERENCE)
    columns = ["sampler", f"sampling s ({samples})"] + [f"{kind} ({name})" for name in scorer.nets
                                                         for kind in ("FID", "FID / DDPM 1000", "KID")]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in [*rows, {"sampler": "real train vs test (floor)", **floor}]:
        cells = [row["sampler"], f"{row['sample_seconds']:.1f}" if "sample_seconds" in row else ""]
        for name in scorer.nets:
            fid, kid, kid_std = scorer.keys(name)
            ratio = f"{row[fid] / reference[fid]:.2f}" if "sample_seconds" in row else ""
            spread = f" ± {row[fid + '_sd']:.2f}" if len(row.get("per_seed", [])) > 1 else ""
            cells += [f"{row[fid]:.2f}{spread}", ratio, f"{row[kid]:.4g} ± {row[kid_std]:.2g}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def verdicts(rows: list[dict], scorer: Scorer) -> dict[str, dict]:
    """The 20-step samplers within FEW_STEP_TOLERANCE of DDPM 1000's FID under every extractor, and whether
    the extractors agree on which of DPM-Solver++ 20 and DDPM 1000 is better (the full orders as detail)."""
    by_sampler = {row["sampler"]: row for row in rows}
    fids = {name: scorer.keys(name)[0] for name in scorer.nets}
    checks = {}
    for label in ("DPM-Solver++ 20", "DDIM 20", "DPM-Solver++ SDE 20"):
        ratios = {name: by_sampler[label][fid] / by_sampler[REFERENCE][fid] for name, fid in fids.items()}
        checks[f"{label} FID within {FEW_STEP_TOLERANCE}x of {REFERENCE}'s"] = {
            "met": all(r <= FEW_STEP_TOLERANCE for r in ratios.values()),
            "detail": ", ".join(f"{name} {r:.2f}x" for name, r in ratios.items())}
    rankings = {name: [row["sampler"] for row in sorted(rows, key=lambda row: row[fid])] for name, fid in fids.items()}
    better = {name: by_sampler["DPM-Solver++ 20"][fid] < by_sampler[REFERENCE][fid] for name, fid in fids.items()}
    checks[f"the extractors agree whether DPM-Solver++ 20 beats {REFERENCE}"] = {
        "met": len(set(better.values())) == 1,
        "detail": "; ".join(f"{name}: {' < '.join(order)}" for name, order in rankings.items())}
    return checks


if __name__ == "__main__":
    main()
