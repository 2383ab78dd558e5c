"""Fairness on Adult (target income, protected sex and race): the table VAE trained a fixed number of steps, then
the utility classifier (gradient-boosted trees) trained on the real training rows, on as many plain synthetic rows,
and on as many fair-balanced ones (Model.sample(fair_balance="sex"), then "race"), each predicting the held-out real
rows: fairlearn's demographic-parity and equalised-odds differences across sex and across race, beside its ROC AUC
(utility). The peer: reweighing (Kamiran & Calders 2012, AIF360's Reweighing), the same trees trained on the real
rows weighted by P(group) P(label) / P(group, label), which removes the group-label association as fair balance does
but on the real rows.

Usage: taskset -c 1 .venv/bin/python benchmarks/fairness.py            (some 10 minutes on one core)
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

import genloom as gl
from genloom.metrics.fairness import fairness_scores
from genloom.metrics.tabular import FeatureMatrix, utility
from genloom.train.batches import held_out_indices
from shared_parts import log, results_arguments, write_section

RESULTS = Path(__file__).parent / "results" / "fairness.md"
TARGET, POSITIVE, PROTECTED = "income", " >50K", ("sex", "race")
BATCH = 500


def positive_rate_gap(rows: pd.DataFrame, column: str) -> float:
    """The largest difference between two groups' shares of positive rows: the bias the rows themselves hold."""
    rates = (rows[TARGET] == POSITIVE).groupby(rows[column]).mean()
    return float(rates.max() - rates.min())


def reweighed(train: pd.DataFrame, real: pd.DataFrame, column: str, features: FeatureMatrix, seed: int) -> tuple:
    """The peer: trees trained on the real rows weighted so that `column` and the label are independent; their
    fairlearn differences across `column` and ROC AUC on the held-out rows."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    label = train[TARGET] == POSITIVE
    cell = train.groupby([train[column], label])[TARGET].transform("size") / len(train)
    weights = (train[column].map(train[column].value_counts(normalize=True))
               * label.map(label.value_counts(normalize=True)) / cell)
    trees = HistGradientBoostingClassifier(categorical_features=features.categorical_mask(exclude=TARGET),
                                           random_state=seed)
    trees.fit(features(train, exclude=TARGET), label, sample_weight=weights.to_numpy())
    x = features(real, exclude=TARGET)
    actual, groups = (real[TARGET] == POSITIVE).to_numpy(), real[column].to_numpy()
    guesses = trees.predict(x)
    return (demographic_parity_difference(actual, guesses, sensitive_features=groups),
            equalized_odds_difference(actual, guesses, sensitive_features=groups),
            roc_auc_score(actual, trees.predict_proba(x)[:, 1]))


def seed_rows(train: pd.DataFrame, real: pd.DataFrame, steps: int, seed: int) -> dict[str, list]:
    """One seed's table rows: for each set of training rows (and the peers), the utility and, per protected column,
    the gap in the rows and the classifier's parity and odds differences (None: not measured)."""
    started = time.perf_counter()
    model = gl.Model("vae").fit(train, steps=steps, batch_size=BATCH, seed=seed, threads=1, progress=False)
    log(f"seed {seed}: trained the VAE for {steps} steps in {time.perf_counter() - started:.0f} s")
    sets = {"real training rows": train}
    for balance in (None, *PROTECTED):
        started = time.perf_counter()
        asked = {"fair_balance": balance, "target": TARGET} if balance else {}
        label = "synthetic, plain" if balance is None else f"synthetic, fair-balanced on {balance}"
        sets[label] = model.sample(len(train), seed=seed, progress=False, **asked)
        log(f"seed {seed}: {label}: {len(sets[label]):,} rows in {time.perf_counter() - started:.1f} s")
    kinds = model.codec.kinds
    features = FeatureMatrix(train, kinds)
    rows = {}
    for label, part in sets.items():
        scores = fairness_scores(part, train, real, kinds, TARGET, PROTECTED, POSITIVE, seed)
        source = "real" if part is train else "synthetic"
        rows[label] = [utility(part, real, TARGET, features, seed)] + [
            value for c in PROTECTED for value in (positive_rate_gap(part, c),
                                                   scores[f"parity_difference_{c}_{source}"],
                                                   scores[f"equalized_odds_difference_{c}_{source}"])]
    for column in PROTECTED:
        parity, odds, auc = reweighed(train, real, column, features, seed)
        rows[f"peer: real rows reweighed on {column}"] = [auc] + [
            value for c in PROTECTED for value in ((None, parity, odds) if c == column else (None, None, None))]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    results_arguments(parser, RESULTS, "100 steps, 3,000 training rows, one seed")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps, seeds = (100, args.seeds[:1]) if args.quick else (args.steps, args.seeds)
    dataset = gl.load_data("adult")
    train_rows, held = held_out_indices(len(dataset), 0.2)
    train, real = (dataset.values.iloc[rows].reset_index(drop=True) for rows in (train_rows, held))
    if args.quick:
        train = train.iloc[:3000]
    runs = [seed_rows(train, real, steps, seed) for seed in seeds]
    lines = [f"Run {time.strftime('%Y-%m-%d %H:%M')}, one thread: the VAE (default size) trained {steps:,} steps of "
             f"batch {BATCH} on {len(train):,} Adult training rows, seeds {', '.join(map(str, seeds))} (mean, and "
             f"the standard deviation over the seeds); each classifier trained on {len(train):,} rows and scored on "
             f"the {len(real):,} held-out real rows; positive class income >50K. \"Gap in the rows\": the largest "
             "difference between two groups' shares of >50K rows in the rows the classifier trained on. Parity and "
             "odds: fairlearn's demographic_parity_difference and equalized_odds_difference of the classifier's "
             "predictions across the groups (0 = alike for every group).", "",
             "| trained on | utility (AUC) | sex: gap in the rows | sex: parity diff | sex: odds diff "
             "| race: gap in the rows | race: parity diff | race: odds diff |", "|---|---|---|---|---|---|---|---|"]
    for label in runs[0]:
        cells = []
        for values in zip(*(run[label] for run in runs)):
            cells.append("-" if values[0] is None else f"{np.mean(values):.3f}"
                         + (f" ± {np.std(values):.3f}" if len(values) > 1 else ""))
        lines.append(f"| {label} | {' | '.join(cells)} |")
        log(lines[-1])
    write_section(args.out, args.section, "Fairness on Adult: plain and fair-balanced synthetic rows", lines)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
