"""Augmentation: fill in rare classes with a generative model's examples of them, the alternative to SMOTE's
interpolation between neighbours. One model learns the whole data (the rare classes borrow the structure the
common ones share), trained on a class-balanced resampling of it so that it makes the rare classes as well as
the common ones; then each rare class gets new examples of its own: table rows drawn under the condition
`target == class`, images from a class-conditional model.

How many to add is the data's question, not a constant: balancing helps where a class has a handful of examples
and hurts where it already has hundreds (benchmarks/augment.py: Adult's AUPRC 0.805 without, 0.760 balanced). So
by default (`ratio="auto"`) the model learns from three quarters of the data and a gradient-boosted judge, trained
on those rows plus each candidate amount of made ones, scores the rare classes on the held-out quarter; the amount
it finds best (nothing, if nothing helps) is what is added."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score

from .choice import AUTO
from .data.dataset import Dataset
from .data.loaders import load_data
from .data.tables import column_kinds
from .errors import GenloomError
from .files import atomic_path
from .metrics.tabular import FeatureMatrix
from .model import Model

MARKER = "synthetic"    # the column (tables) or array (images) that marks the examples augmentation added
MAX_CLASSES = 50        # a numeric target with more distinct values than this is a quantity, not classes
RATIOS = (0.1, 0.25, 0.5, 1.0)  # ratio="auto"'s candidates, besides adding nothing
CHECK_SHARE = 0.25      # of each class, held out from the model to judge the candidates on
MIN_CHECKED = 2         # a rare class needs this many held-out examples for its AUPRC to say anything
BOOTSTRAPS = 200        # resamplings of the check examples, for each amount's standard error against the best
# where the check cannot tell any amount from another (a class too small to hold examples out, or a handful held
# out that every amount ranks alike): the amount that did better than none and than balancing on
# benchmarks/augment.py's two tasks with few rare examples
PRIOR_RATIO = 0.25
TIE = 1e-9              # AUPRCs this close are equal (a sum's rounding)


@dataclass(frozen=True)
class RatioChoice:
    """What ratio="auto" chose and why: each candidate's mean rare-class AUPRC on the held-out check examples
    (0.0: nothing added) and those within a standard error of the best, or the reason no check could be run."""

    ratio: float
    scores: dict[float, float]
    alike: tuple[float, ...] = ()
    reason: str = ""

    def describe(self) -> str:
        if not self.scores:
            return f"ratio {self.ratio:g}: {self.reason}"
        taken = "adding none" if self.ratio == 0 else f"ratio {self.ratio:g}"
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


@dataclass
class Augmented:
    """The data with the added examples after the original ones: `values` (a table with the marker column; an
    image array), each example's class in `classes`, `synthetic` True where it was made, `added` per class."""

    kind: str
    values: Any
    classes: np.ndarray
    synthetic: np.ndarray
    added: dict[str, int]
    model: Model | None = field(repr=False)  # None when there was nothing to add
    class_names: list[str] | None = None  # images: label id -> name, for writing them back as a labelled set
    choice: RatioChoice | None = None     # how ratio="auto" chose, when it did

    def summary(self) -> str:
        made = ", ".join(f"{count:,} of {name}" for name, count in self.added.items())
        if not made:
            made = "nothing" if self.model is not None else "nothing (already balanced)"
        choice = f" ({self.choice.describe()})" if self.choice is not None else ""
        return f"added {made}{choice}; {len(self.classes):,} examples in all"

    def save(self, path: str | Path) -> Path:
        """Write the augmented data to a file its suffix names (tables: .csv, .parquet; images: .npz with
        images, labels and synthetic), atomically."""
        path = Path(path)
        write = writer_for(self.kind, path)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            write(self, handle)
        return path


@dataclass(frozen=True)
class ClassedKind:
    """How one kind of data names its examples' classes and draws new examples of a class."""

    classes: Callable[[Dataset, str | None, str], np.ndarray]       # (data, target, marker) -> class per example
    model_options: dict[str, Any]                                    # what the model needs to draw by class
    draw: Callable[[Model, Dataset, str | None, str, int, int], Any]  # (model, data, target, class, n, seed)
    join: Callable[[Dataset, list[Any], str], Any]                   # (data, drawn parts, marker) -> values
    features: Callable[[Any, str | None, Any], tuple[np.ndarray, list[bool] | None]]  # the judge's input, below
    take: Callable[[Any, np.ndarray], Any]                           # (values, indices) -> those examples
    writers: dict[str, Callable[[Augmented, Any], None]]             # file suffix -> write to an open file
    marked: str                                                      # where the file marks the made examples


def table_classes(data: Dataset, target: str | None, marker: str) -> np.ndarray:
    frame = data.values
    if target is None:
        raise GenloomError("name the column whose classes to balance: target='column' (CLI: --target COLUMN)")
    if target not in frame.columns:
        raise GenloomError(f"target column {target!r} is not in the table; columns: "
                           f"{', '.join(map(str, frame.columns))}")
    if marker in frame.columns:
        raise GenloomError(f"the table already has a column {marker!r}; name the marker column otherwise "
                           "(marker=..., CLI: --marker)")
    values = frame[target]
    if pd.api.types.is_float_dtype(values) or (pd.api.types.is_numeric_dtype(values)
                                                and values.nunique() > MAX_CLASSES):
        raise GenloomError(f"balancing needs a categorical target; {target!r} holds {values.nunique():,} distinct "
                           "numbers (a quantity): choose a column of classes")
    if values.isna().any():
        raise GenloomError(f"target {target!r} has {int(values.isna().sum())} missing values: drop or fill those rows "
                           "first (an example without a class cannot be balanced)")
    return values.astype(str).to_numpy()


def image_classes(data: Dataset, target: str | None, marker: str) -> np.ndarray:
    if data.labels is None:
        raise GenloomError(f"{data.name} has no classes to balance: give labelled images (one sub-folder per class, "
                           "or labels in the .npz)")
    if target is not None:
        raise GenloomError("images take their classes from their labels; leave target out (CLI: --target)")
    names = data.class_names or [str(i) for i in range(int(data.labels.max()) + 1)]
    return np.asarray(names, dtype=object)[data.labels].astype(str)


def table_features(values: pd.DataFrame, target: str | None, reference: pd.DataFrame,
                   ) -> tuple[np.ndarray, list[bool] | None]:
    """Rows as the judge reads them (the evaluation's trees' matrix, categories coded as in `reference`), and
    which of its columns are categories; no target."""
    features = FeatureMatrix(reference, column_kinds(reference))
    return features(values, exclude=target), features.categorical_mask(exclude=target)


def image_features(values: np.ndarray, target: str | None, reference: np.ndarray,
                   ) -> tuple[np.ndarray, list[bool] | None]:
    return values.reshape(len(values), -1), None


def draw_rows(model: Model, data: Dataset, target: str | None, name: str, n: int, seed: int) -> pd.DataFrame:
    rows = model.sample(n, seed=seed, conditions={target: name}, progress=False)
    rows[target] = rows[target].astype(data.values[target].dtype)  # a 0/1 target, trained on as "1", is 1 again
    return rows


def draw_images(model: Model, data: Dataset, target: str | None, name: str, n: int, seed: int) -> np.ndarray:
    return model.sample(n, seed=seed, labels=[name] * n, progress=False)


def join_rows(data: Dataset, parts: list[pd.DataFrame], marker: str) -> pd.DataFrame:
    original = data.values.assign(**{marker: 0})
    return pd.concat([original, *(part.assign(**{marker: 1}) for part in parts)], ignore_index=True)


def join_images(data: Dataset, parts: list[np.ndarray], marker: str) -> np.ndarray:
    return np.concatenate([data.values, *parts])


def write_images(result: Augmented, handle: Any) -> None:
    """An .npz `genloom train` and `load_data` read back as labelled images (labels by class name)."""
    np.savez_compressed(handle, images=result.values, labels=result.classes.astype(str), synthetic=result.synthetic)


KINDS: dict[str, ClassedKind] = {
    "table": ClassedKind(table_classes, {}, draw_rows, join_rows, table_features,
                         lambda values, indices: values.iloc[indices].reset_index(drop=True),
                         {".csv": lambda result, handle: result.values.to_csv(handle, index=False),
                          ".parquet": lambda result, handle: result.values.to_parquet(handle, index=False)},
                         "the column {marker!r} marks the rows made: drop it to use them alike"),
    "image": ClassedKind(image_classes, {"conditional": True}, draw_images, join_images, image_features,
                         lambda values, indices: values[indices], {".npz": write_images},
                         "the array 'synthetic' marks the images made"),
}


def kind_of(dataset: Dataset) -> ClassedKind:
    if dataset.kind not in KINDS:
        raise GenloomError(f"augmentation balances classes of tables and images; this is {dataset.kind} data")
    return KINDS[dataset.kind]


def writer_for(kind: str, path: Path) -> Callable[[Augmented, Any], None]:
    """The writer of augmented `kind` data for the file `path` names, or a one-line error (checked before training)."""
    writers = KINDS[kind].writers
    if path.suffix.lower() not in writers:
        raise GenloomError(f"augmented {kind} data is written to {' or '.join(writers)}; got {path.name!r}")
    return writers[path.suffix.lower()]


def shortfalls(classes: np.ndarray, ratio: float) -> dict[str, int]:
    """Examples to add per class so that each has at least `ratio` times the largest class's count."""
    names, counts = np.unique(classes, return_counts=True)
    goal = math.ceil(ratio * counts.max())
    return {str(name): int(goal - count) for name, count in zip(names, counts) if count < goal}


def subset(data: Dataset, rows: np.ndarray, take: Callable[[Any, np.ndarray], Any]) -> Dataset:
    labels = data.labels[rows] if data.labels is not None else None
    return Dataset(data.kind, take(data.values, rows), data.name, labels, data.class_names, data.source)


def balanced_resampling(data: Dataset, classes: np.ndarray, seed: int, take: Callable[[Any, np.ndarray], Any],
                        ) -> Dataset:
    """The data with every class's examples repeated (drawn with replacement) up to the largest class's count:
    what the model trains on, so that it learns the rare classes as well as the common ones."""
    rng = np.random.default_rng(seed)
    names, counts = np.unique(classes, return_counts=True)
    extra = [rng.choice(np.flatnonzero(classes == name), counts.max() - count)
             for name, count in zip(names, counts) if count < counts.max()]
    return subset(data, np.concatenate([np.arange(len(classes)), *extra]).astype(np.int64), take)


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


def stratified_resamplings(classes: np.ndarray, count: int, seed: int) -> np.ndarray:
    """(count, examples) bootstrap resamplings that keep each class's number of examples, so that every one has
    the rare examples an AUPRC needs."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(classes == name) for name in np.unique(classes)]
    return np.concatenate([rng.choice(rows, (count, len(rows))) for rows in members], axis=1)


def choose_ratio(kind: ClassedKind, data: Dataset, target: str | None, classes: np.ndarray, held: np.ndarray,
                 pool: dict[str, Any], seed: int) -> RatioChoice:
    """The candidate ratio (0: add nothing) whose made examples, added to the examples the model learnt from, best
    help a judge find the rare classes among the held-out ones. Of the amounts within a standard error of the
    best (a paired bootstrap of the check examples), the fewest made ones; where every amount is, the check tells
    nothing and the amount nearest PRIOR_RATIO is taken. `pool` has at least the made examples of each class the
    largest candidate asks for."""
    learnt_rows, check_rows = np.flatnonzero(~held), np.flatnonzero(held)
    learnt, learnt_classes, check_classes = subset(data, learnt_rows, kind.take), classes[learnt_rows], classes[held]
    check, categorical = kind.features(kind.take(data.values, check_rows), target, data.values)
    rare = list(shortfalls(learnt_classes, max(RATIOS)))
    probabilities = {}
    for ratio in (0.0, *RATIOS):
        wanted = shortfalls(learnt_classes, ratio) if ratio else {}
        if ratio and not wanted:
            continue  # the classes already have this ratio
        parts = [kind.take(pool[name], np.arange(count)) for name, count in wanted.items()]
        made = [np.full(count, name, dtype=object) for name, count in wanted.items()]
        train, _ = kind.features(kind.join(learnt, parts, MARKER), target, data.values)
        probabilities[ratio] = judged_probabilities(train, np.concatenate([learnt_classes, *made]).astype(str),
                                                    check, rare, categorical, seed)
    scores = {ratio: mean_auprc(p, check_classes, rare) for ratio, p in probabilities.items()}
    best = max(scores, key=scores.get)
    resamplings = stratified_resamplings(check_classes, BOOTSTRAPS, seed)
    resampled = {ratio: np.array([mean_auprc(p[rows], check_classes[rows], rare) for rows in resamplings])
                 for ratio, p in probabilities.items()}
    alike = tuple(ratio for ratio in scores
                  if scores[best] - scores[ratio] <= np.std(resampled[best] - resampled[ratio]) + TIE)
    told_apart = len(alike) < len(scores)
    ratio = min(alike) if told_apart else min(alike, key=lambda ratio: abs(ratio - PRIOR_RATIO))
    return RatioChoice(ratio, scores, alike)


def augment(data: Any, *, target: str | None = None, ratio: float | str = AUTO, family: str = AUTO,
            steps: int | None = None, minutes: float | None = None, seed: int = 0, marker: str = MARKER,
            options: dict[str, Any] | None = None, progress: bool = False) -> Augmented:
    """Add synthetic examples of the rare classes until each has `ratio` times the largest class's count (1:
    balanced; "auto": the amount, nothing included, that a judge finds most helpful on held-out examples).
    Tables name the class column in `target`; images use their labels. The model trains for `steps` or `minutes`
    (default: the family's default budget); `options` reach its family."""
    if ratio != AUTO and (isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1):
        raise GenloomError(f"ratio is each class's size after augmentation over the largest class's, in (0, 1] "
                           f"(1 = balanced), or 'auto'; got {ratio!r}")
    dataset = load_data(data)
    kind = kind_of(dataset)
    classes = kind.classes(dataset, target, marker)
    most = shortfalls(classes, max(RATIOS) if ratio == AUTO else ratio)
    if not most:
        return Augmented(dataset.kind, kind.join(dataset, [], marker), classes, np.zeros(len(classes), dtype=bool),
                         {}, None, dataset.class_names)
    learnt = dataset
    if target is not None:  # the codec sees the classes as categories, also where they are written as numbers
        learnt = replace(dataset, values=dataset.values.astype({target: str}))
    held, choice = None, None
    if ratio == AUTO:
        held = held_out(classes, list(most), seed)
        if held is None:
            ratio = PRIOR_RATIO
            choice = RatioChoice(ratio, {}, (), f"a rare class has fewer than {math.ceil(MIN_CHECKED / CHECK_SHARE)} "
                                 "examples, too few to hold some out and check how many to add; the amount that did "
                                 "best for the small rare classes of benchmarks/augment.py")
    rows = np.flatnonzero(~held) if held is not None else np.arange(len(classes))
    model = Model(family, **{**kind.model_options, **(options or {})})
    # the codec learns the data as it is (a repeated rare row would become a spike its numbers snap to); the model
    # learns from the balanced resampling
    learnt = subset(learnt, rows, kind.take)
    model.fit(balanced_resampling(learnt, classes[rows], seed, kind.take), steps=steps, minutes=minutes, seed=seed,
              codec_data=learnt, progress=progress)
    pool = {name: kind.draw(model, dataset, target, name, count, seed + index)
            for index, (name, count) in enumerate(most.items())}
    if held is not None:
        choice = choose_ratio(kind, dataset, target, classes, held, pool, seed)
        ratio = choice.ratio
    wanted = shortfalls(classes, ratio) if ratio else {}
    parts = [kind.take(pool[name], np.arange(count)) for name, count in wanted.items()]
    added = np.concatenate([np.full(count, name, dtype=object) for name, count in wanted.items()] or [[]])
    synthetic = np.arange(len(classes) + len(added)) >= len(classes)
    return Augmented(dataset.kind, kind.join(dataset, parts, marker), np.concatenate([classes, added]).astype(str),
                     synthetic, wanted, model, dataset.class_names, choice)
