"""Augmentation: fill in rare classes with a generative model's examples of them, the alternative to SMOTE's
interpolation between neighbours. One model learns the data (the rare classes borrow the structure the
common ones share), trained on a class-balanced resampling of it so that it makes the rare classes as well as
the common ones; then each rare class gets new examples of its own: table rows drawn under the condition
`target == class`, images from a class-conditional model.

How many to add is asked of the data by default (`ratio="auto"`, augmentation_check.py): then the model learns
from three quarters of each class, the other quarter judging how many of its examples help, and the examples
added are that model's (a second fit on every example would double the time: a ratio learns from all)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .augmentation_check import LEVEL, PRIOR_RATIO, RATIOS, TOO_FEW, RatioChoice, held_out, judge_amounts
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


@dataclass
class Augmented:
    """The data with the added examples after the original ones: `values` (a table with the marker column; an
    image array), each example's class in `classes`, `synthetic` True where it was made, `added` per class."""

    kind: str
    values: Any
    classes: np.ndarray
    synthetic: np.ndarray
    added: dict[str, int]
    model: Model | None = field(repr=False)  # None when the classes were already level
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
    judge_view: Callable[[Any, str | None], tuple[Callable[[Any], np.ndarray], list[bool] | None]]  # see table_view
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


def table_view(reference: pd.DataFrame, target: str | None) -> tuple[Callable[[pd.DataFrame], np.ndarray],
                                                                      list[bool] | None]:
    """How the judge reads rows (the evaluation's trees' matrix, categories coded as in `reference`; no target),
    and which of its columns are categories."""
    features = FeatureMatrix(reference, column_kinds(reference))
    return (lambda values: features(values, exclude=target)), features.categorical_mask(exclude=target)


def image_view(reference: np.ndarray, target: str | None) -> tuple[Callable[[np.ndarray], np.ndarray], None]:
    return (lambda values: values.reshape(len(values), -1)), None


def draw_rows(model: Model, data: Dataset, target: str | None, name: str, n: int, seed: int) -> pd.DataFrame:
    rows = model.sample(n, seed=seed, conditions={target: name}, progress=False)
    # each class as it was written (learnt as text: a 0/1 target is 1 again, a bool one False, not bool("False"))
    rows[target] = rows[target].astype(str).map({str(value): value for value in data.values[target].unique()})
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
    "table": ClassedKind(table_classes, {}, draw_rows, join_rows, table_view,
                         lambda values, indices: values.iloc[indices].reset_index(drop=True),
                         {".csv": lambda result, handle: result.values.to_csv(handle, index=False),
                          ".parquet": lambda result, handle: result.values.to_parquet(handle, index=False)},
                         "the column {marker!r} marks the rows made: drop it to use them alike"),
    "image": ClassedKind(image_classes, {"conditional": True}, draw_images, join_images, image_view,
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
    return replace(data, values=take(data.values, rows), labels=labels)  # its source and findings kept


def balanced_resampling(data: Dataset, classes: np.ndarray, seed: int, take: Callable[[Any, np.ndarray], Any],
                        ) -> Dataset:
    """The data with every class's examples repeated (drawn with replacement) up to the largest class's count:
    what the model trains on, so that it learns the rare classes as well as the common ones."""
    rng = np.random.default_rng(seed)
    names, counts = np.unique(classes, return_counts=True)
    extra = [rng.choice(np.flatnonzero(classes == name), counts.max() - count)
             for name, count in zip(names, counts) if count < counts.max()]
    return subset(data, np.concatenate([np.arange(len(classes)), *extra]).astype(np.int64), take)


def made_examples(kind: ClassedKind, pool: dict[str, Any], wanted: dict[str, int]) -> tuple[list[Any], np.ndarray]:
    """The first `count` of the pool's examples of each wanted class, and their classes."""
    parts = [kind.take(pool[name], np.arange(count)) for name, count in wanted.items()]
    return parts, np.repeat(np.array(list(wanted), dtype=object), list(wanted.values()))


def choose_ratio(kind: ClassedKind, data: Dataset, target: str | None, classes: np.ndarray, held: np.ndarray,
                 pool: dict[str, Any], marker: str, seed: int) -> RatioChoice:
    """The amount to add (augmentation_check.judge_amounts), each candidate's judge trained on the examples the
    model learnt from and the pool's first made ones; `pool` holds at least the largest candidate's."""
    learnt_rows = np.flatnonzero(~held)
    learnt, learnt_classes = subset(data, learnt_rows, kind.take), classes[learnt_rows]
    rare = list(shortfalls(learnt_classes, max(RATIOS)))
    if not rare:
        return RatioChoice(0.0, {}, (), LEVEL)
    view, categorical = kind.judge_view(data.values, target)
    trainings = {}
    for ratio in (0.0, *RATIOS):
        wanted = shortfalls(learnt_classes, ratio)
        if ratio and not wanted:
            continue  # the classes already have this ratio
        parts, made = made_examples(kind, pool, wanted)
        trainings[ratio] = (view(kind.join(learnt, parts, marker)),
                            np.concatenate([learnt_classes, made]).astype(str))
    check = view(kind.take(data.values, np.flatnonzero(held)))
    return judge_amounts(trainings, check, classes[held], rare, categorical, seed)


def augment(data: Any, *, target: str | None = None, ratio: float | str = AUTO, family: str = AUTO,
            steps: int | None = None, minutes: float | None = None, seed: int = 0, marker: str = MARKER,
            options: dict[str, Any] | None = None, progress: bool = False) -> Augmented:
    """Add synthetic examples of the rare classes until each has `ratio` times the largest class's count (1:
    balanced; "auto": of the amounts a judge cannot tell from the best on held-out examples, the fewest, the
    model learning from the rest; see augmentation_check). Tables name the class column in `target`; images use
    their labels. The model trains for `steps` or `minutes` (default: the family's default budget); `options`
    reach its family."""
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
    held, choice = None, None
    if ratio == AUTO:
        held = held_out(classes, list(most), seed)
        if held is None:
            ratio, choice = PRIOR_RATIO, RatioChoice(PRIOR_RATIO, {}, (), TOO_FEW)
            most = shortfalls(classes, ratio)
    rows = np.flatnonzero(~held) if held is not None else np.arange(len(classes))
    learnt = subset(dataset, rows, kind.take)
    if target is not None:  # the codec sees the classes as categories, also where they are written as numbers
        learnt = replace(learnt, values=learnt.values.astype({target: str}))
    model = Model(family, **{**kind.model_options, **(options or {})})
    # the codec learns the data as it is (a repeated rare row would become a spike its numbers snap to); the model
    # learns from the balanced resampling
    model.fit(balanced_resampling(learnt, classes[rows], seed, kind.take), steps=steps, minutes=minutes, seed=seed,
              codec_data=learnt, progress=progress)
    pool = {name: kind.draw(model, dataset, target, name, count, seed + index)
            for index, (name, count) in enumerate(most.items())}
    if held is not None:
        choice = choose_ratio(kind, dataset, target, classes, held, pool, marker, seed)
        ratio = choice.ratio
    wanted = shortfalls(classes, ratio)
    parts, added = made_examples(kind, pool, wanted)
    synthetic = np.arange(len(classes) + len(added)) >= len(classes)
    return Augmented(dataset.kind, kind.join(dataset, parts, marker), np.concatenate([classes, added]).astype(str),
                     synthetic, wanted, model, dataset.class_names, choice)
