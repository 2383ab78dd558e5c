"""Fairness of synthetic rows for a downstream classifier: fairlearn's demographic-parity and equalised-odds
differences, across the groups of each protected column, of the utility classifier (tabular.trained_trees)
trained on the real training rows and on the synthetic rows, both predicting the held-out real rows; and the
protected x target shares of real and synthetic rows, drawn side by side.

Demographic parity difference: the largest gap between two groups' rates of positive predictions (0: every group
is predicted positive as often). Equalised odds difference: the larger of the largest gaps in true-positive and
in false-positive rates (0: the classifier errs alike in every group)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..data.fair_balance import positive_class
from ..errors import GenloomError
from .report import new_figure, save_figure
from .table_figures import REAL, SYNTHETIC
from .tabular import FeatureMatrix, trained_trees

MAX_NUMBER_GROUPS = 20  # a numerical column with more distinct values is continuous, not a set of groups
GROUPS_SHOWN = 8        # the most frequent groups of a column drawn in the figure


def fairness_request(train: pd.DataFrame, kinds: dict[str, str], protected: Sequence[str], target: str | None,
                     positive: Any = None) -> str:
    """The positive class of `target`, once the protected columns are checked to be groups of the table's rows."""
    for column in protected:
        if column not in kinds:
            raise GenloomError(f"protected column {column!r} is not in the table; columns: {', '.join(kinds)}")
        distinct = train[column].nunique()
        if kinds[column] == "identifier" or (kinds[column] in ("numerical", "datetime")
                                             and distinct > MAX_NUMBER_GROUPS):
            raise GenloomError(f"protected column {column!r} is continuous ({distinct:,} distinct values), not a set "
                               f"of groups: bin it into at most {MAX_NUMBER_GROUPS} groups first (e.g. ages in "
                               "decades) and train on that column")
        if column == target:
            raise GenloomError(f"protected column {column!r} is the target; protect another column")
    if target is None:
        raise GenloomError("fairness compares the utility classifier's predictions across groups, and there is no "
                           "target to predict: name it (target=COLUMN; CLI: --target COLUMN)")
    if kinds[target] not in ("categorical", "boolean"):
        raise GenloomError(f"the target {target!r} is {kinds[target]}; fairness measures a yes/no prediction: give "
                           "a categorical or boolean target")
    values = train[target].astype(str).value_counts().index.tolist()  # the most frequent first
    return positive_class(target, values, positive)


def fairness_scores(synthetic: pd.DataFrame, train: pd.DataFrame, real: pd.DataFrame, kinds: dict[str, str],
                    target: str, protected: Sequence[str], positive: str, seed: int = 0) -> dict[str, float]:
    """For each protected column, the parity and equalised-odds differences of the classifier trained on the
    real training rows (`_real`) and on the synthetic rows (`_synthetic`), on the held-out rows `real`."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    features = FeatureMatrix(train, kinds)
    actual = real[target].astype(str).to_numpy() == positive
    x = features(real, exclude=target)
    predicted = {source: trained_trees(part, target, features, seed).predict(x) == positive
                 for source, part in (("real", train), ("synthetic", synthetic))}
    scores = {}
    for column in protected:
        groups = real[column].astype(str).to_numpy()
        for name, measure in (("parity_difference", demographic_parity_difference),
                              ("equalized_odds_difference", equalized_odds_difference)):
            for source, guesses in predicted.items():
                scores[f"{name}_{column}_{source}"] = float(measure(actual, guesses, sensitive_features=groups))
    return scores


def joint_shares(rows: pd.DataFrame, column: str, target: str, positive: str) -> pd.DataFrame:
    """Share of all rows in each (group of `column`, positive or not) cell: one row per group, most frequent
    first, and the groups' positive rates."""
    groups = rows[column].astype(str)
    outcome = np.where(rows[target].astype(str) == positive, "positive", "other")
    shares = pd.crosstab(groups, outcome, normalize=True).reindex(columns=["positive", "other"], fill_value=0.0)
    shares["positive rate"] = shares["positive"] / (shares["positive"] + shares["other"])
    return shares.loc[groups.value_counts().index]


def joint_distribution_figure(real: pd.DataFrame, synthetic: pd.DataFrame, target: str, protected: Sequence[str],
                              positive: str, path: Path) -> Path:
    """One panel per protected column: each group's share of rows with the positive class (solid) and without
    (light), held-out real beside synthetic, the groups' positive rates written above."""
    figure = new_figure(figsize=(6.5, 3.2 * len(protected)), dpi=90)
    for axis, column in zip(figure.subplots(len(protected), 1, squeeze=False)[:, 0], protected):
        real_shares = joint_shares(real, column, target, positive).iloc[:GROUPS_SHOWN]
        fake_shares = joint_shares(synthetic, column, target, positive).reindex(real_shares.index, fill_value=0.0)
        positions = np.arange(len(real_shares))
        for offset, shares, colour, name in ((-0.2, real_shares, REAL, "real"),
                                             (0.2, fake_shares, SYNTHETIC, "synthetic")):
            axis.bar(positions + offset, shares["positive"], 0.4, color=colour, label=f"{name}: {target}={positive}")
            axis.bar(positions + offset, shares["other"], 0.4, bottom=shares["positive"], color=colour, alpha=0.35,
                     label=f"{name}: other")
            for x, (top, rate) in enumerate(zip(shares["positive"] + shares["other"], shares["positive rate"])):
                axis.text(x + offset, top, f"{rate:.0%}", ha="center", va="bottom", fontsize=6)
        axis.set_xticks(positions, [str(group).strip()[:14] for group in real_shares.index], fontsize=7)
        axis.set_ylabel("share of rows", fontsize=8)
        axis.set_title(f"{column} x {target} (positive rate above each bar)", fontsize=9)
        axis.legend(fontsize=6, ncol=2)
    return save_figure(figure, path)
