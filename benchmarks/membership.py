"""Membership inference on Adult, family by family: every table family trained for a fixed number of steps
(about two minutes each on one core) on the same 80% of the rows, every one of them trained on (nothing held
out for validation), then both attacks of genloom.metrics.membership on 5,000 synthetic rows, with training rows
as members and held-out rows as non-members: the distance attack and DOMIAS (AUC 0.5: no leak). Three anchors
on the same split show the scale, each "trained" on 5,000 of the training rows: a generator that copies them,
one that copies them with jittered numbers, and one that draws fresh rows of the population (5,000 others).

Usage: taskset -c 1 .venv/bin/python benchmarks/membership.py            (some 15 minutes on one core)
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import genloom as gl
from genloom.data.tables import column_kinds
from genloom.metrics.membership import SYNTHETIC_ROWS, membership_scores
from genloom.metrics.privacy import privacy_scores
from genloom.train.batches import held_out_indices
from shared_parts import log, results_arguments, write_section

RESULTS = Path(__file__).parent / "results" / "membership.md"
STEPS = {"vae": 4000, "diffusion": 4000, "wgan-gp": 1500, "autoregressive": 400}
JITTER = 0.1  # standard deviations of each number added to the jittered copies


def anchors(train: pd.DataFrame, kinds: dict[str, str], seed: int) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """(synthetic rows, members) of generators whose leak is known, each trained on SYNTHETIC_ROWS of the rows."""
    members, others = train.iloc[:SYNTHETIC_ROWS], train.iloc[SYNTHETIC_ROWS:2 * SYNTHETIC_ROWS]
    rng = np.random.default_rng(seed)
    jittered = members.assign(**{c: members[c] + rng.normal(0, JITTER * train[c].std(), len(members))
                                 for c, k in kinds.items() if k == "numerical"})
    return {"copies of its training rows": (members, members),
            f"copies, numbers jittered by {JITTER} sd": (jittered, members),
            "fresh rows of the population": (others, members)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    results_arguments(parser, RESULTS, "a tenth of the steps")
    parser.add_argument("--families", nargs="+", default=list(STEPS), choices=list(STEPS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = gl.load_data("adult")
    train_rows, held = held_out_indices(len(dataset), 0.2)
    train, real = (dataset.values.iloc[rows].reset_index(drop=True) for rows in (train_rows, held))
    kinds = column_kinds(train)
    lines = [f"Run {time.strftime('%Y-%m-%d %H:%M')}, one thread, seed {args.seed}: {len(train):,} Adult training "
             f"rows (the members; {SYNTHETIC_ROWS:,} for the anchors), {len(real):,} held out (1,000 non-members "
             f"queried, the rest DOMIAS's reference); {SYNTHETIC_ROWS:,} synthetic rows per model, 1,000 members "
             "queried. Attacks s: both attacks, on two busy cores.", "",
             "| model | steps | fit s | distance attack AUC | DOMIAS AUC | DCR ratio | attacks s |",
             "|---|---|---|---|---|---|---|"]
    rows = {name: (None, None, *pair) for name, pair in anchors(train, kinds, args.seed).items()}
    for family in args.families:
        steps = STEPS[family] // (10 if args.quick else 1)
        started = time.perf_counter()
        model = gl.Model(family).fit(train, steps=steps, seed=args.seed, threads=1, progress=False, val_fraction=0.0)
        seconds = time.perf_counter() - started
        rows[family] = (steps, seconds, model.sample(SYNTHETIC_ROWS, seed=args.seed, progress=False), train)
    for name, (steps, seconds, synthetic, members) in rows.items():
        started = time.perf_counter()
        scores, _ = membership_scores(synthetic, members, real, kinds, args.seed)
        attack_seconds = time.perf_counter() - started
        dcr = privacy_scores(synthetic, members, real, kinds, seed=args.seed)[0]["dcr_ratio"]
        log(f"{name}: distance {scores['membership_auc_distance']:.3f}, DOMIAS {scores['membership_auc_domias']:.3f}")
        fit = "- | -" if steps is None else f"{steps} | {seconds:.0f}"
        lines.append(f"| {name} | {fit} | {scores['membership_auc_distance']:.3f} | "
                     f"{scores['membership_auc_domias']:.3f} | {dcr:.2f} | {attack_seconds:.1f} |")
    write_section(args.out, args.section, "Membership inference on Adult: each table family", lines)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
