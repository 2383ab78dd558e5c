"""How close synthetic rows are to real ones: SDMetrics' quality and diagnostic reports, a classifier
two-sample test (detection), machine-learning utility (train on synthetic, test on real) and the pairwise
association matrices the report draws."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats.contingency import association
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from ..data.tables import as_numbers
from ..errors import GenloomError
from .membership import membership_scores
from .privacy import privacy_scores

SDTYPES = {"identifier": "id"}  # our column kinds in SDMetrics' names; the others are the same
MAX_CATEGORICAL_BINS = 255      # more categories than this are given to the trees as ordered codes


def sdmetrics_metadata(kinds: dict[str, str], formats: dict[str, str] | None = None) -> dict[str, Any]:
    """SDMetrics' single-table metadata for our column kinds (and the formats of dates stored as text)."""
    columns = {}
    for name, kind in kinds.items():
        columns[name] = {"sdtype": SDTYPES.get(kind, kind)}
        if kind == "datetime" and (formats or {}).get(name):
            columns[name]["datetime_format"] = formats[name]
    return {"columns": columns}


def sdmetrics_reports(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: dict,
                      diagnostic: bool = True) -> dict[str, float]:
    """Overall quality (mean of column shapes and column pair trends), its two parts, and (with
    `diagnostic`) the diagnostic score (data validity and structure), from SDMetrics' own reports."""
    from sdmetrics.reports import DiagnosticReport, QualityReport  # slow to import: only when used
    tables = {"table": real}, {"table": synthetic}, {"tables": {"table": metadata}}  # its one-table form
    with warnings.catch_warnings():  # SDMetrics warns about its own deprecations and constant columns
        warnings.simplefilter("ignore")
        quality = QualityReport()
        quality.generate(*tables, verbose=False)
        properties = quality.get_properties().set_index("Property")["Score"]
        scores = {"quality": float(quality.get_score()), "column_shapes": float(properties["Column Shapes"]),
                  "column_pair_trends": float(properties["Column Pair Trends"])}
        if diagnostic:
            report = DiagnosticReport()
            report.generate(*tables, verbose=False)
            scores["diagnostic"] = float(report.get_score())
    return scores


class FeatureMatrix:
    """Rows as numbers for scikit-learn's gradient-boosted trees: numbers and dates as floats, categories
    as codes fixed on the real training rows (unseen or missing: NaN, which the trees handle)."""

    def __init__(self, reference: pd.DataFrame, kinds: dict[str, str]):
        self.kinds = {c: k for c, k in kinds.items() if k != "identifier"}
        self.categories = {c: pd.unique(reference[c].dropna().astype(str))
                           for c, k in self.kinds.items() if k in ("categorical", "boolean")}

    def to_json(self) -> dict[str, Any]:
        """The column kinds and category codes, as JSON: what rebuilds the same matrix without the rows."""
        categories = {c: [str(v) for v in values] for c, values in self.categories.items()}
        return {"kinds": self.kinds, "categories": categories}

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> FeatureMatrix:
        features = cls.__new__(cls)
        features.kinds = dict(state["kinds"])
        features.categories = {c: np.array(values, dtype=object) for c, values in state["categories"].items()}
        return features

    def columns(self, exclude: str | None = None) -> list[str]:
        return [c for c in self.kinds if c != exclude]

    def categorical_mask(self, exclude: str | None = None) -> list[bool]:
        return [c in self.categories and len(self.categories[c]) <= MAX_CATEGORICAL_BINS for c in self.columns(exclude)]

    def column(self, frame: pd.DataFrame, name: str) -> np.ndarray:
        values = frame[name]
        if name in self.categories:
            codes = pd.Categorical(values.astype(str).where(values.notna()), categories=self.categories[name]).codes
            return np.where(codes < 0, np.nan, codes).astype(np.float64)
        return as_numbers(values, self.kinds[name])

    def __call__(self, frame: pd.DataFrame, exclude: str | None = None) -> np.ndarray:
        return np.stack([self.column(frame, c) for c in self.columns(exclude)], axis=1)


def detection_auc(real: pd.DataFrame, synthetic: pd.DataFrame, features: FeatureMatrix, seed: int = 0) -> float:
    """ROC AUC of gradient-boosted trees telling real rows from as many synthetic ones, by 3-fold
    cross-validation: 0.5 means they cannot be told apart, 1.0 always."""
    n = min(len(real), len(synthetic))
    rng = np.random.default_rng(seed)
    rows = pd.concat([real.iloc[rng.permutation(len(real))[:n]], synthetic.iloc[rng.permutation(len(synthetic))[:n]]])
    is_synthetic = np.repeat([0, 1], n)
    classifier = HistGradientBoostingClassifier(categorical_features=features.categorical_mask(), random_state=seed)
    folds = StratifiedKFold(3, shuffle=True, random_state=seed)
    scores = cross_val_predict(classifier, features(rows), is_synthetic, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(is_synthetic, scores))


def trained_trees(train: pd.DataFrame, target: str, features: FeatureMatrix, seed: int = 0) -> Any:
    """Gradient-boosted trees trained on `train` to predict `target` from the other columns: a regressor for
    numbers and dates, a classifier (of the values as text) for categories; rows of one class give a constant
    guess, which ranks nothing."""
    trees = dict(categorical_features=features.categorical_mask(exclude=target), random_state=seed)
    x = features(train, exclude=target)
    if features.kinds[target] in ("numerical", "datetime"):
        y = features.column(train, target)
        known = ~np.isnan(y)
        return HistGradientBoostingRegressor(**trees).fit(x[known], y[known])
    y = train[target].astype(str).to_numpy()
    return (HistGradientBoostingClassifier(**trees) if len(np.unique(y)) > 1 else DummyClassifier()).fit(x, y)


def utility(train: pd.DataFrame, test: pd.DataFrame, target: str, features: FeatureMatrix, seed: int = 0) -> float:
    """Score on `test` of trees trained on `train` to predict `target`: ROC AUC for categories (one
    against the rest, averaged, for more than two), R^2 for numbers."""
    model = trained_trees(train, target, features, seed)
    x_test = features(test, exclude=target)
    if features.kinds[target] in ("numerical", "datetime"):
        y_test = features.column(test, target)
        keep = ~np.isnan(y_test)
        return float(r2_score(y_test[keep], model.predict(x_test[keep])))
    y_test = test[target].astype(str).to_numpy()
    probabilities = model.predict_proba(x_test)
    classes = list(model.classes_)
    if len(np.unique(y_test)) < 2:
        raise GenloomError(f"the held-out rows hold one value of {target!r} only; evaluate on more rows")
    if len(classes) == 2:
        return float(roc_auc_score(y_test == classes[1], probabilities[:, 1]))
    # one against the rest for every held-out class; a class the training rows never show scores chance
    scores = [roc_auc_score(y_test == c, probabilities[:, classes.index(c)]) if c in classes else 0.5
              for c in np.unique(y_test)]
    return float(np.mean(scores))


def table_scores(synthetic: pd.DataFrame, train: pd.DataFrame, real: pd.DataFrame, kinds: dict[str, str],
                 target: str | None = None, formats: dict[str, str] | None = None,
                 seed: int = 0) -> tuple[dict[str, float], dict[str, Any]]:
    """Every table score of synthetic rows against held-out `real` rows (the training rows `train` give
    the privacy reference and the utility baseline); also what the report draws: the privacy distances
    ("synthetic", "held_out") and the membership attacks' scores ("membership")."""
    metadata = sdmetrics_metadata(kinds, formats)
    features = FeatureMatrix(train, kinds)
    scores = sdmetrics_reports(real, synthetic, metadata)
    scores["quality_real_train"] = sdmetrics_reports(real, train, metadata, diagnostic=False)["quality"]
    scores["detection_auc"] = detection_auc(real, synthetic, features, seed)
    if target is not None:
        scores["utility_synthetic"] = utility(synthetic, real, target, features, seed)
        scores["utility_real"] = utility(train, real, target, features, seed)
    privacy, distances = privacy_scores(synthetic, train, real, kinds, seed=seed)
    membership, attacks = membership_scores(synthetic, train, real, kinds, seed)
    return {**scores, **privacy, **membership}, {**distances, "membership": attacks}


def association_matrix(frame: pd.DataFrame, kinds: dict[str, str], bins: int = 10) -> pd.DataFrame:
    """Cramér's V between every two columns, numbers and dates cut into deciles first: one symmetric
    [0, 1] measure for any mix of column kinds (0: independent, 1: one determines the other)."""
    columns = [c for c, k in kinds.items() if k != "identifier"]
    coded = {}
    for c in columns:
        values = frame[c]
        if kinds[c] in ("numerical", "datetime"):
            numbers = pd.Series(as_numbers(values, kinds[c]))
            values = pd.qcut(numbers, bins, labels=False, duplicates="drop")  # equal values share a bin
        coded[c] = pd.Series(values.astype(str).to_numpy())
    matrix = pd.DataFrame(np.eye(len(columns)), index=columns, columns=columns)
    for i, a in enumerate(columns):
        for b in columns[i + 1:]:
            table = pd.crosstab(coded[a], coded[b]).to_numpy(dtype=np.int64)
            matrix.loc[a, b] = matrix.loc[b, a] = association(table, method="cramer") if min(table.shape) > 1 else 0.0
    return matrix
