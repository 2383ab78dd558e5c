"""Differential privacy on Adult: the table VAE (width 16), or with --family the table transformer (2 blocks, 32
wide) or the GAN (DP-SGD on its critic), trained with DP-SGD (Opacus) at epsilon 1, 3 and 10 and without DP, the
same steps and batch size, each at genloom's learning rate for its setting (defaults.UNDER_PRIVACY: a private
table transformer steps at 0.01) unless --batch or --lr says, each scored on as many
synthetic rows as held-out rows: SDMetrics quality, detection AUC (0.5 best), train-on-synthetic utility (ROC AUC
on held-out rows; the real training rows give the ceiling) and the membership attacks of
genloom.metrics.membership, by distance and DOMIAS's density ratio (0.5 = no leak). Target: utility >= 0.80 at
epsilon 3.

Usage: taskset -c 1 .venv/bin/python benchmarks/privacy.py                (some 12 minutes on one core)
       taskset -c 1 .venv/bin/python benchmarks/privacy.py --family gan   (its section "gan")
       taskset -c 1 .venv/bin/python benchmarks/privacy.py --family autoregressive --seeds 0 1 2
       taskset -c 1 .venv/bin/python benchmarks/privacy.py --family autoregressive --batch 500 --lr 0.003 \
           --epsilons 3 --seeds 0 1 2 --section autoregressive-batch-500
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

import genloom as gl
from genloom.metrics.tabular import table_scores
from genloom.train.batches import held_out_indices
from shared_parts import log, results_arguments, write_section

RESULTS = Path(__file__).parent / "results" / "privacy.md"
EPSILONS = (1.0, 3.0, 10.0, math.inf)
WIDTH = 16  # a 128-wide MLP: Opacus' per-example gradients of the default 512-wide one cost ~1.5 s a step here
# the families' options, the same with and without DP; a GAN's DP-SGD is on its critic, which must judge rows one by
# one (pac 1), through layers Opacus differentiates per example (no spectral norm), without CTGAN's conditional
# vector (drawn from the training data's counts)
FAMILIES = {"vae": {"width": WIDTH},
            "autoregressive": {"n_embd": 32, "n_layer": 2, "n_head": 2},
            "gan": {"width": WIDTH, "pac": 1, "spectral_norm": False, "category_conditions": False}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    results_arguments(parser, RESULTS, "100 steps, 2,000 rows scored")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--family", choices=list(FAMILIES), default="vae")
    parser.add_argument("--batch", type=int, help="expected batch size (Poisson sampling under DP; default: "
                        "genloom's for the setting)")
    parser.add_argument("--lr", type=float, help="learning rate (default: genloom's for the setting)")
    parser.add_argument("--epsilons", type=float, nargs="+", default=list(EPSILONS), help="inf: without DP")
    parser.add_argument("--ema-decay", type=float,
                        help="sample from an exponential moving average of the weights with this decay (free under "
                             "DP: it only post-processes what DP-SGD released; default: the family's own)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps = 100 if args.quick else args.steps
    dataset = gl.load_data("adult")
    train_rows, held = held_out_indices(len(dataset), 0.2)
    train, real = dataset.values.iloc[train_rows].reset_index(drop=True), dataset.values.iloc[held]
    scored = 2000 if args.quick else len(real)
    options = FAMILIES[args.family]
    described = ", ".join(f"{key} {value}" for key, value in options.items())
    asked = {key: value for key, value in (("ema_decay", args.ema_decay), ("batch_size", args.batch), ("lr", args.lr))
             if value is not None}
    averaged = f", sampled from the weights' average (decay {args.ema_decay:g})" if args.ema_decay else ""
    lines = [f"Run {time.strftime('%Y-%m-%d %H:%M')}, one thread: the {args.family} ({described}) on {len(train):,} "
             f"Adult rows, {steps:,} steps (Poisson sampling under DP){averaged}, scored on {scored:,} synthetic rows "
             f"against {len(real):,} held-out rows; delta 1 / (10 n).", "",
             "| epsilon | seed | batch | lr | epsilon spent | noise multiplier | fit s | quality | detection AUC | "
             "utility | membership AUC: distance | DOMIAS |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    data = gl.load_data(train, target="income")  # under DP a table's target leads the row (defaults.py)
    for seed in args.seeds:
        for epsilon in args.epsilons:
            private = {} if math.isinf(epsilon) else {"dp_epsilon": epsilon}
            started = time.perf_counter()
            model = gl.Model(args.family, **options).fit(data, steps=steps, seed=seed, threads=1, progress=False,
                                                         **asked, **private)
            seconds = time.perf_counter() - started
            synthetic = model.sample(scored, seed=seed, progress=False)
            scores, _ = table_scores(synthetic, train.iloc[:scored], real.iloc[:scored], model.codec.kinds,
                                     target="income", seed=seed)
            spent = model.record.get("privacy", {})
            log(f"epsilon {epsilon}, seed {seed}: utility {scores['utility_synthetic']:.3f}, quality "
                f"{scores['quality']:.3f}, spent {spent.get('epsilon', 'none')}")
            trained = model.record["train"]
            lines.append(f"| {epsilon:g} | {seed} | {trained['batch_size']} | {trained['lr']:g} | "
                         f"{spent.get('epsilon', '-')} | {spent.get('noise_multiplier', '-')} "
                         f"| {seconds:.0f} | {scores['quality']:.3f} | {scores['detection_auc']:.3f} | "
                         f"{scores['utility_synthetic']:.3f} | {scores['membership_auc_distance']:.3f} | "
                         f"{scores['membership_auc_domias']:.3f} |")
    lines += ["", f"Real training rows, for the ceiling: utility {scores['utility_real']:.3f}."]
    write_section(args.out, args.section if args.section != "main" or args.family == "vae" else args.family,
                  "Differential privacy: Adult at epsilon 1, 3, 10 and without", lines)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
