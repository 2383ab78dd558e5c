"""How many made examples augmentation should add, judged on examples the model never saw. Made examples help a
class with a handful of real ones and hurt one that already has hundreds (benchmarks/augment.py: Adult's AUPRC
0.805 without, 0.760 balanced), so the amount is the data's question: a quarter of each class is held out from
the model, and a gradient-boosted classifier trained on the rest plus each candidate amount of made examples
scores the rare classes on it. Of the amounts within a standard error of the best score, the fewest made; where
the check tells no amount from another, PRIOR_RATIO."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score

RATIOS = (0.1, 0.25, 0.5, 1.0)  # the candidate amounts (each class's size over the largest's), besides none
CHECK_SHARE = 0.25      # of each class, held out from the model to judge the candidates on
MIN_CHECKED = 2         # a rare class needs this many held-out examples for its AUPRC to say anything
BOOTSTRAPS = 200        # resamplings of the held-out examples, for each amount's standard error against the best
# where the check cannot tell any amount from another (a class too small to hold examples out, or a handful held
# out that every amount ranks alike): the amount that did better than none and than balancing on
# benchmarks/augment.py's two tasks with few rare examples
PRIOR_RATIO = 0.25
TIE = 1e-9              # AUPRCs this close are equal (a sum's rounding)
TOO_FEW = (f"a rare class has fewer than {math.ceil(MIN_CHECKED / CHECK_SHARE)} examples, too few to hold some out "
           f"and check how many to add; {PRIOR_RATIO:g} did better than none and than balancing for the small rare "
           "classes of benchmarks/augment.py")
LEVEL = "with a quarter of each class held out the classes are level, so the check has nothing to compare"


@dataclass(frozen=True)
class RatioChoice:
    """What ratio="auto" chose and why: each candidate's mean rare-class AUPRC on the held-out examples (0.0:
    nothing added) and those within a standard error of the best, or the reason no check was run."""

    ratio: float
    scores: dict[float, float]
    alike: tuple[float, ...] = ()
    reason: str = ""

    def describe(self) -> str:
        taken = "adding none" if self.ratio == 0 else f"ratio {self.ratio:g}"
        if not self.scores:
            return f"{taken}: {self.reason}"
        if len(self.alike) == len(self.scores):
            verdict = (f"held-out examples told no amount from another (each within a standard error of the best), "
                       f"so {taken}, the nearest to {PRIOR_RATIO:g}")
        elif len(self.alike) == 1:
            verdict = f"{taken} did best on held-out examples"
        else:
            verdict = (f"ratios {', '.join(map(ratio_label, self.alike[:-1]))} and {ratio_label(self.alike[-1])} did "
                       f"alike on held-out examples (within a standard error of the best), {taken} the fewest made")
        tried = ", ".join(f"{ratio_label(ratio)} {score:.3f}" for ratio, score in self.scores.items())
        return (f"{verdict}; the model learnt from the other three quarters; a gradient-boosted judge's rare-class "
                f"AUPRC: {tried}")


def ratio_label(ratio: float) -> str:
    return "none" if ratio == 0 else f"{ratio:g}"


def held_out(classes: np.ndarray, rare: list[str], seed: int) -> np.ndarray | None:
    """CHECK_SHARE of each class's examples, drawn at random (True: held out), or None where a rare class would
    have fewer than MIN_CHECKED held out."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(classes), dtype=bool)
    for name in np.unique(classes):
        members = np.flatnonzero(classes == name)
        count = math.floor(CHECK_SHARE * len(members))
        if name in rare and count < MIN_CHECKED:
            return None
        held[rng.choice(members, count, replace=False)] = True
    return held


def judged_probabilities(train: np.ndarray, classes: np.ndarray, check: np.ndarray, rare: list[str],
                         categorical: list[bool] | None, seed: int) -> np.ndarray:
    """(check examples, rare classes): each rare class's probability for each check example under a
    gradient-boosted one-against-the-rest classifier trained on `train`."""
    columns = []
    for name in rare:
        judge = HistGradientBoostingClassifier(random_state=seed, categorical_features=categorical)
        judge.fit(train, classes == name)
        columns.append(judge.predict_proba(check)[:, list(judge.classes_).index(True)])
    return np.stack(columns, axis=1)


def mean_auprc(probabilities: np.ndarray, classes: np.ndarray, rare: list[str]) -> float:
    return float(np.mean([average_precision_score(classes == name, probabilities[:, column])
                          for column, name in enumerate(rare)]))


def resampled_auprc(probabilities: np.ndarray, classes: np.ndarray, rare: list[str],
                    resamplings: np.ndarray) -> np.ndarray:
    """mean_auprc on each resampling (a row of example indices), all at once. Written here, not by calling
    scikit-learn's average_precision_score per resampling: its input checks cost 2 ms a call, 20 s of a 36 s
    augmentation of 8x8 digits; tests/test_augmentation_check.py holds the two equal."""
    scores = np.stack([average_precisions((classes == name)[resamplings], probabilities[resamplings, column])
                       for column, name in enumerate(rare)])
    return scores.mean(axis=0)


def average_precisions(positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(B, m) labels and scores -> (B,) average precisions, as scikit-learn defines it: the precision at each
    threshold weighted by the recall it adds, tied scores making one threshold. Each positive example counts the
    precision at the last position of its group of ties, once the scores are sorted, highest first. Every row
    needs a positive example (stratified resamplings keep them all)."""
    order = np.argsort(scores, axis=1)[:, ::-1]  # the order within a group of ties does not count
    ranked, hits = np.take_along_axis(scores, order, axis=1), np.take_along_axis(positive, order, axis=1)
    positions = np.arange(scores.shape[1])
    precision = np.cumsum(hits, axis=1) / (positions + 1)
    group_ends = np.ones_like(hits, dtype=bool)
    group_ends[:, :-1] = ranked[:, :-1] != ranked[:, 1:]
    # each position's group end: the first end at or after it (a running minimum taken from the right)
    end_of = np.minimum.accumulate(np.where(group_ends, positions, scores.shape[1])[:, ::-1], axis=1)[:, ::-1]
    return (hits * np.take_along_axis(precision, end_of, axis=1)).sum(axis=1) / hits.sum(axis=1)


def stratified_resamplings(classes: np.ndarray, count: int, seed: int) -> np.ndarray:
    """(count, examples) bootstrap resamplings that keep each class's number of examples, so that every one has
    the rare examples an AUPRC needs."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(classes == name) for name in np.unique(classes)]
    return np.concatenate([rng.choice(rows, (count, len(rows))) for rows in members], axis=1)


def judge_amounts(trainings: dict[float, tuple[np.ndarray, np.ndarray]], check: np.ndarray,
                  check_classes: np.ndarray, rare: list[str], categorical: list[bool] | None,
                  seed: int) -> RatioChoice:
    """The amount to add, from `trainings` (candidate ratio -> the judge's training examples and their classes):
    of the candidates within a standard error of the best (a paired bootstrap of the check examples), the fewest
    made; where every candidate is, the check tells nothing and the one nearest PRIOR_RATIO is taken."""
    probabilities = {ratio: judged_probabilities(train, classes, check, rare, categorical, seed)
                     for ratio, (train, classes) in trainings.items()}
    scores = {ratio: mean_auprc(p, check_classes, rare) for ratio, p in probabilities.items()}
    best = max(scores, key=scores.get)
    resamplings = stratified_resamplings(check_classes, BOOTSTRAPS, seed)
    resampled = {ratio: resampled_auprc(p, check_classes, rare, resamplings) for ratio, p in probabilities.items()}
    alike = tuple(ratio for ratio in scores
                  if scores[best] - scores[ratio] <= np.std(resampled[best] - resampled[ratio]) + TIE)
    told_apart = len(alike) < len(scores)
    return RatioChoice(min(alike) if told_apart else min(alike, key=lambda ratio: abs(ratio - PRIOR_RATIO)),
                       scores, alike)
