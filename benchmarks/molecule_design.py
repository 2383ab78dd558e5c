"""Property-guided molecule design on this CPU: genloom's molecule VAE (SELFIES tokens, a GRU decoder that reads
the tokens before each one, a head on the latent that predicts QED) trained for a fixed budget on the first
--molecules of the built-in `moses`, then --designs molecules designed toward a higher QED by `model.optimize("QED")`
(Langevin dynamics on the codes from the prior tilted by the head, each decoded by drawing its tokens), at
temperature 1 and at --temperature, each scored by RDKit.

The other way to design: the default autoregressive model trained on the same molecules for --ar-minutes, tuned
toward QED by PPO (`gl.finetune_reward(model, "QED")`, --ppo-rounds rounds of 64 samples; an invalid string
earns -1), then as many samples drawn from it, the best first.

Reference points, from the same run: the VAE's unguided samples at both temperatures (as many, from its prior: the
same decoding without the head's tilt, `optimize` with a prior weight of 1e9), the autoregressive
model's samples before tuning, and as many training molecules drawn at random (what picking from the data
gives). Reported for each: mean QED of the 10 and of the 100
best, mean QED over all, validity (RDKit reads the SMILES), uniqueness among the valid, novelty (valid, unique and
not a training molecule), and for the designs how well the head's estimate follows RDKit's value (Pearson r).

Target (issue 22): mean QED of the top 10 designed molecules >= 0.90, with validity >= 0.95 of the designs.

With --timings it measures instead what a training step of the VAE costs with each decoder (a batch of 128
moses molecules, forward and backward), at 1 thread, 2 threads and 1 thread beside a busy core.

Usage (one core, nothing else running; about 30 minutes):
  .venv/bin/python benchmarks/molecule_design.py --threads 1
  .venv/bin/python benchmarks/molecule_design.py --quick --out /tmp/design.md     (a smoke run)
  .venv/bin/python benchmarks/molecule_design.py --timings --section decoder_timings    (both cores; a minute)
"""
from __future__ import annotations

import argparse
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import genloom as gl
from genloom.data.molecules import canonical, molecule_property, parsed
from shared_parts import THREAD_SETTINGS, log, results_arguments, seconds_in_each_setting, write_section

RESULTS = Path(__file__).parent / "results" / "molecules.md"
TARGET_TOP10, TARGET_VALIDITY = 0.90, 0.95


def qed_of(smiles: list[str]) -> np.ndarray:
    """RDKit's QED of each string; NaN for one that is not a molecule."""
    qed = molecule_property("QED")
    return np.array([qed(molecule) if (molecule := parsed(text)) is not None else np.nan for text in smiles])


def row(label: str, smiles: list[str], training: set[str]) -> tuple[str, float, float]:
    """A table row for these molecules; also their top-10 mean QED and validity."""
    values = qed_of(smiles)
    valid = ~np.isnan(values)
    forms = {canonical(text) for text, ok in zip(smiles, valid) if ok}
    best = np.sort(values[valid])[::-1]
    top10, validity = float(best[:10].mean()), float(valid.mean())
    cells = [top10, float(best[:100].mean()), float(best.mean()), validity, len(forms) / max(valid.sum(), 1),
             len(forms - training) / max(valid.sum(), 1)]
    log(f"{label}: top-10 QED {top10:.3f}, validity {validity:.3f}")
    return f"| {label} | " + " | ".join(f"{cell:.3f}" for cell in cells) + " |", top10, validity


def seconds_per_step(model: gl.Model, x: torch.Tensor) -> float:
    """Mean seconds of one training step's forward and backward pass, after one that builds any caches."""
    family = model.ema_net.train().requires_grad_(True)

    def step() -> None:
        for _, loss, _ in family.losses(x, None):
            loss.backward()
    step()
    started = time.perf_counter()
    for _ in range(3):
        step()
    return (time.perf_counter() - started) / 3


def time_decoders(out: Path, section: str) -> None:
    """Seconds of a VAE training step with each decoder, in each of THREAD_SETTINGS, on 128 moses molecules."""
    molecules = gl.load_data("moses").values[:2000]
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "moses.smi"
        path.write_text("".join(f"{smiles}\n" for smiles in molecules), encoding="utf-8")
        models = {decoder: gl.Model("vae", decoder=decoder).fit(path, steps=1, progress=False)
                  for decoder in ("autoregressive", "parallel")}
    x = models["parallel"].codec.encode(molecules[:128])
    seconds = seconds_in_each_setting(models, lambda model: seconds_per_step(model, x))
    body = [f"Run {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()}: "
            f"`{shlex.join([Path(sys.executable).name, *sys.argv])}`. Seconds per forward and backward pass of the "
            "molecule VAE (defaults, a batch of 128 SELFIES molecules), and in brackets x the parallel decoder's "
            "in the same setting.", "",
            f"| decoder | {' | '.join(THREAD_SETTINGS)} |", "|---|" + "---|" * len(THREAD_SETTINGS)]
    for decoder in models:
        cells = [f"{seconds[decoder, setting]:.3f} ({seconds[decoder, setting] / seconds['parallel', setting]:.1f}x)"
                 for setting in THREAD_SETTINGS]
        body.append(f"| {decoder} | {' | '.join(cells)} |")
    write_section(out, section, "Molecules: MOSES on a CPU", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    results_arguments(parser, RESULTS, "5,000 molecules, 1 minute, 200 designs")
    parser.set_defaults(section="design")
    parser.add_argument("--molecules", type=int, default=50_000, help="the first N of the built-in moses")
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget of the whole fit")
    parser.add_argument("--designs", type=int, default=1000)
    parser.add_argument("--ar-minutes", type=float, default=10.0, help="the autoregressive model's training budget")
    parser.add_argument("--ppo-rounds", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=0.5, help="the second decoding temperature")
    parser.add_argument("--timings", action="store_true", help="time a training step with each decoder instead")
    args = parser.parse_args()
    if args.timings:
        time_decoders(args.out, args.section)
        return
    if args.quick:
        args.molecules, args.minutes, args.designs, args.ar_minutes, args.ppo_rounds = 5000, 1.0, 200, 1.0, 3
    torch.set_num_threads(args.threads)
    molecules = gl.load_data("moses").values[:args.molecules]
    training = set(molecules)
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "moses.smi"
        path.write_text("".join(f"{smiles}\n" for smiles in molecules), encoding="utf-8")
        log(f"the molecule VAE with a QED head on {len(molecules):,} molecules for {args.minutes:g} minutes")
        started = time.perf_counter()
        model = gl.Model("vae", property="QED").fit(path, minutes=args.minutes, out=Path(name) / "vae",
                                                    threads=args.threads, progress=False)
        fit_seconds = time.perf_counter() - started
        log(f"trained {model.record['steps_trained']} steps in {fit_seconds:.0f} s; designing {args.designs}")
        started = time.perf_counter()
        designs = model.optimize("QED", n=args.designs)
        design_seconds = time.perf_counter() - started
        estimate = designs["QED (the model's estimate)"]
        agreement = pd.Series(designs["QED"]).corr(estimate)
        designed, top10, validity = row(f"designed (`model.optimize(\"QED\", n={args.designs})`, "
                                        f"{design_seconds:.0f} s)", designs["smiles"].tolist(), training)
        sampled, _, _ = row("the VAE's unguided samples", model.sample(args.designs, seed=1, progress=False),
                            training)
        cool = args.temperature
        cool_designed, cool_top10, cool_validity = row(
            f"designed at temperature {cool:g}",
            model.optimize("QED", n=args.designs, temperature=cool)["smiles"].tolist(), training)
        cool_sampled, _, _ = row(f"the VAE's unguided samples at temperature {cool:g}", model.optimize(
            "QED", n=args.designs, temperature=cool, prior_weight=1e9, seed=1)["smiles"].tolist(), training)
        log(f"the autoregressive default on the same molecules for {args.ar_minutes:g} minutes, then PPO")
        base = gl.Model("autoregressive").fit(path, minutes=args.ar_minutes, out=Path(name) / "ar",
                                              threads=args.threads, progress=False)
        started = time.perf_counter()
        tuned = gl.finetune_reward(gl.load(Path(name) / "ar"), "QED", out=Path(name) / "ppo", seed=1,
                                   ppo={"rounds": args.ppo_rounds}, threads=args.threads, progress=False)
        tuning_seconds = time.perf_counter() - started
        ppo_row, ppo_top10, ppo_validity = row(
            f"autoregressive tuned by PPO ({args.ppo_rounds} rounds, {tuning_seconds:.0f} s), sampled",
            tuned.sample(args.designs, seed=1, progress=False), training)
        base_row, _, _ = row(f"the autoregressive model's samples ({base.record['steps_trained']} steps), "
                             "before tuning", base.sample(args.designs, seed=1, progress=False), training)
        picked = np.random.default_rng(0).choice(molecules, args.designs, replace=False).tolist()
        data, _, _ = row("training molecules at random", picked, training)
    def verdict(best: float, valid: float) -> str:
        return "met" if best >= TARGET_TOP10 and valid >= TARGET_VALIDITY else "not met"

    body = ["**Property-guided design** (`benchmarks/molecule_design.py`).", "",
            f"Run {time.strftime('%Y-%m-%d %H:%M')} on {platform.processor() or platform.machine()}, "
            f"{args.threads} threads: `{shlex.join([Path(sys.executable).name, *sys.argv])}`.", "",
            f"The molecule VAE (`gl.Model(\"vae\", property=\"QED\")`, SELFIES, its GRU decoder) trained "
            f"{fit_seconds / 60:.1f} minutes ({model.record['steps_trained']} steps) on the first {len(molecules):,} "
            "molecules of `moses`; "
            f"held-out R^2 of its QED head: {model.record['final_metrics'].get('property_r2', float('nan')):.3f}. "
            f"{args.designs} molecules each row, scored by RDKit.", "",
            "| molecules | top-10 QED | top-100 QED | mean QED | validity | unique | novel |",
            "|---|---|---|---|---|---|---|", designed, sampled, cool_designed, cool_sampled, ppo_row, base_row, data,
            "",
            f"The head's estimate against RDKit's QED over the designs: Pearson r = {agreement:.3f}. Target (top-10 "
            f"QED >= {TARGET_TOP10}, validity >= {TARGET_VALIDITY}): {verdict(top10, validity)} by the VAE's "
            f"designs, {verdict(cool_top10, cool_validity)} by those at temperature {cool:g}, "
            f"{verdict(ppo_top10, ppo_validity)} by the PPO-tuned model's samples."]
    write_section(args.out, args.section, "Molecules: MOSES on a CPU", body)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
