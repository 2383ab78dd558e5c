"""TabularCodec: a mixed-type DataFrame <-> float rows, one block of columns (its spans) per table column.

The spans tell families which outputs are continuous, which are a softmax, and which are the categories a
user may condition on. Conditional sampling (rows with given categories) is rejection sampling, as SDV does,
after steering the families that can be steered (CTGAN's conditional vector)."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from ..errors import GenloomError
from .codec import Codec, Draw
from .dataset import Dataset
from .normalisers import NORMALISERS
from .table_columns import COLUMNS, CategoricalColumn, Column, NumericalColumn, RowPositions
from .table_layout import TableLayout
from .tables import column_kinds, read_metadata

MIN_ROWS = 10           # a table to learn from: a training part and a held-out part of some rows each
CONDITION_BATCH = 500   # rows drawn at least per try of conditional sampling
MAX_CONDITION_DRAWS = 20  # batches drawn for conditional sampling before giving up


def check_property(frame: pd.DataFrame, name: str, kinds: Mapping[str, str]) -> None:
    """A property to predict is a numerical column with a value in every row, or a one-line error."""
    if name not in frame.columns:
        raise GenloomError(f"the table has no column {name!r} to predict; columns: {', '.join(map(str, frame.columns))}")
    if kinds[name] != "numerical":
        raise GenloomError(f"the property {name!r} is a {kinds[name]} column; a property head predicts a number: "
                           "name a numerical column")
    missing = int(frame[name].isna().sum())
    if missing:
        raise GenloomError(f"the property {name!r} is missing in {missing:,} row{'s' * (missing != 1)}; drop those "
                           "rows first")


class TabularCodec(Codec):
    """Fitted per column on the training table; encode/decode are seeded, so they repeat exactly.
    `numbers`: "modes" (CTGAN's mode-specific normalisation), "quantile" (TabDDPM's quantile transform) or
    "standard" (the standard score, unbounded: the anomaly detector's);
    `kinds`: column kinds that override the inferred ones (as a metadata file does); `property`: a numerical
    column a property head will predict, quantile-transformed whatever `numbers` says, so that its one value
    in the row rises with the number; `condition_on`: columns a family is given beside each row rather than
    generating them (the state and action of a transition), encoded apart into a condition vector;
    `target_first`: the data's declared target leads the encoded row (an autoregressive family draws the columns
    in the row's order), and decoded rows come back in the table's own order."""

    kind = "table"
    sample_formats = (".csv", ".parquet")

    def __init__(self, columns: list[Column] | None = None, seed: int = 0, numbers: str = "modes",
                 kinds: Mapping[str, str] | None = None, property: str | None = None,
                 condition_on: list[str] | None = None, condition_columns: list[Column] | None = None,
                 target_first: bool = False, order: list[str] | None = None):
        if numbers not in NORMALISERS:
            raise GenloomError(f"unknown number transform {numbers!r}; use one of {', '.join(NORMALISERS)}")
        self.columns, self.seed, self.numbers, self.property = columns or [], seed, numbers, property
        self.kind_overrides = dict(kinds or {})
        self.condition_on = list(condition_on or [])
        self.condition_columns = condition_columns or []
        self.target_first = target_first
        self.order = order  # the generated columns in the table's order, where the row has them in another

    def fit(self, data: Dataset) -> TabularCodec:
        frame = data.values
        if len(frame) < MIN_ROWS:
            raise GenloomError(f"{data.name} has {len(frame)} row{'s' * (len(frame) != 1)}; a model learns from "
                               f"{MIN_ROWS} rows at the least (a few hundred to do well): give more rows")
        kinds = column_kinds(frame, {**read_metadata(data.source.get("metadata")), **self.kind_overrides})
        if self.property is not None:
            check_property(frame, self.property, kinds)
        self._check_condition_on(list(kinds))
        rng = np.random.default_rng(self.seed)
        fitted = {name: self._column(name, kind).fit(frame[name], rng) for name, kind in kinds.items()}
        self.columns = [column for name, column in fitted.items() if name not in self.condition_on]
        self.condition_columns = [fitted[name] for name in self.condition_on]
        target, self.order = data.source.get("target"), None
        if self.target_first and target in fitted and target not in self.condition_on:
            self.order = [column.name for column in self.columns]
            self.columns.sort(key=lambda column: column.name != target)  # stable: the others keep their order
        return self

    def _check_condition_on(self, names: list[str]) -> None:
        missing = [name for name in self.condition_on if name not in names]
        if missing:
            raise GenloomError(f"condition_on names {', '.join(map(repr, missing))}, not a column of this table; "
                               f"columns: {', '.join(names)}")
        if set(self.condition_on) >= set(names):
            raise GenloomError("condition_on names every column, which leaves the model nothing to generate: leave "
                               "out those it should generate (the next state)")
        if self.property in self.condition_on:
            raise GenloomError(f"the property {self.property!r} is a column the model generates; take it out of "
                               "condition_on")

    def _column(self, name: str, kind: str) -> Column:
        column_class = COLUMNS[kind]
        if not issubclass(column_class, NumericalColumn):
            return column_class(name)
        return column_class(name, "quantile" if name == self.property else self.numbers)

    @property
    def kinds(self) -> dict[str, str]:
        """Each column's kind (numerical, datetime, categorical, boolean, identifier): those given (condition_on),
        then those generated, in order."""
        return {column.name: column.kind for column in self.condition_columns + self.columns}

    @property
    def layout(self) -> TableLayout:
        spans = tuple(span for column in self.columns for span in column.spans)
        position = self.column_starts()[self.property] if self.property is not None else None
        condition_width = sum(span.width for column in self.condition_columns for span in column.spans)
        return TableLayout((sum(span.width for span in spans),), spans=spans, property_position=position,
                           condition_width=condition_width)

    def column_starts(self) -> dict[str, int]:
        """Where each column's block begins in an encoded row."""
        widths = [sum(span.width for span in column.spans) for column in self.columns]
        return {column.name: sum(widths[:i]) for i, column in enumerate(self.columns)}

    @property
    def formats(self) -> dict[str, str]:
        """The text format of each datetime column that was read from text."""
        return {c.name: c.state.format for c in self.columns if c.kind == "datetime" and c.state.format}

    def checked_frame(self, values: Any) -> pd.DataFrame:
        """Rows as a DataFrame with exactly the training table's columns (the condition columns may be there too), or
        a one-line error naming the others."""
        frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(values)
        names = [c.name for c in self.columns]
        missing = [name for name in names if name not in frame.columns]
        if missing:
            raise GenloomError(f"the table lacks column {', '.join(map(repr, missing))} that the model was "
                               "trained with")
        extra = [str(name) for name in frame.columns if name not in names + self.condition_on]
        if extra:
            raise GenloomError(f"the table has column {', '.join(map(repr, extra))} that the model was not "
                               "trained with; drop it")
        return frame

    def encode(self, values: Any) -> torch.Tensor:
        return self._encoded(self.checked_frame(values), self.columns)

    def _encoded(self, frame: pd.DataFrame, columns: list[Column]) -> torch.Tensor:
        rng = np.random.default_rng(self.seed + 1)
        blocks = [column.encode(frame[column.name].reset_index(drop=True), rng) for column in columns]
        return torch.from_numpy(np.concatenate(blocks, axis=1))

    def row_conditions(self, values: Any) -> torch.Tensor | None:
        """The encoded condition columns of rows (N, layout.condition_width), which a family reads beside each row;
        None for a codec without condition_on."""
        if not self.condition_columns:
            return None
        frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(values)
        missing = [name for name in self.condition_on if name not in frame.columns]
        if missing:
            raise GenloomError(f"the conditions lack column {', '.join(map(repr, missing))}; this model generates "
                               f"{', '.join(c.name for c in self.columns)} given {', '.join(self.condition_on)}")
        return self._encoded(frame, self.condition_columns).float()

    def decode(self, tensor: torch.Tensor, first: int = 0) -> pd.DataFrame:
        rows = tensor.detach().float().cpu().numpy()
        positions = RowPositions(self.seed + 2, first, len(rows))  # rare categories and identifiers
        series, start = [], 0
        for column in self.columns:
            width = sum(span.width for span in column.spans)
            series.append(column.decode(rows[:, start:start + width], positions))
            start += width
        frame = pd.concat(series, axis=1)
        return frame if self.order is None else frame[self.order]

    # -- conditions ----------------------------------------------------------------------------
    def _wanted(self, conditions: Mapping[str, Any]) -> list[tuple[CategoricalColumn, Any]]:
        """Each condition's column and its category as the column knows it."""
        columns = {c.name: c for c in self.columns}
        wanted = []
        for name, value in conditions.items():
            column = columns.get(name)
            if column is None:
                raise GenloomError(f"unknown column {name!r} in the conditions; columns: {', '.join(columns)}")
            if not isinstance(column, CategoricalColumn):
                raise GenloomError(f"conditions work on categorical and boolean columns; {name!r} is {column.kind}")
            category = column.category(value)
            if category is None:
                known = column.state.categories + column.state.rare
                raise GenloomError(f"column {name!r} has no category {value!r}; known: "
                                   f"{', '.join(map(repr, known[:10]))}")
            wanted.append((column, category))
        return wanted

    def condition_mask(self, rows: pd.DataFrame, conditions: Mapping[str, Any]) -> np.ndarray:
        """Which rows hold every condition's value; conditions name categorical or boolean columns."""
        mask = np.ones(len(rows), dtype=bool)
        for column, category in self._wanted(conditions):
            mask &= (rows[column.name].astype(str) == str(category)).to_numpy()
        return mask

    def condition_positions(self, conditions: Mapping[str, Any]) -> list[int]:
        """Where each condition's category sits in an encoded row (its one-hot slot; a rare category's is
        the shared slot of the rare ones), for families that can steer towards it."""
        starts = self.column_starts()
        return [starts[column.name] + column.slot(category) for column, category in self._wanted(conditions)]

    def sample_where(self, conditions: Mapping[str, Any], n: int, seed: int, draw: Draw,
                     batch: int | None = None) -> pd.DataFrame:
        """Rejection sampling (as SDV does, also after CTGAN's native conditioning): draw batches (of `batch`
        rows, by default n, at least CONDITION_BATCH) until n rows match, or give up after MAX_CONDITION_DRAWS
        batches with a message."""
        given = self.condition_positions(conditions)
        batch = max(batch or n, CONDITION_BATCH)
        kept, found = [], 0
        for attempt in range(MAX_CONDITION_DRAWS):
            rows = draw(batch, seed + attempt, given)
            matching = rows[self.condition_mask(rows, conditions)]
            kept.append(matching)
            found += len(matching)
            if found >= n:
                return pd.concat(kept).iloc[:n].reset_index(drop=True)
        raise GenloomError(f"only {found} of {MAX_CONDITION_DRAWS * batch:,} sampled rows matched "
                           f"{dict(conditions)}; the model rarely makes such rows: ask for fewer, or train it longer")

    # -- files ---------------------------------------------------------------------------------
    def one_example(self, example: Any) -> pd.DataFrame:
        if isinstance(example, Mapping):
            return pd.DataFrame([example])
        if isinstance(example, pd.Series):
            return example.to_frame().T
        if isinstance(example, pd.DataFrame) and len(example) == 1:
            return example
        raise GenloomError(f"a table row is a dict of column to value (or a one-row DataFrame); got "
                           f"{type(example).__name__}")

    def examples_and_classes(self, data: Any, labels: Any) -> tuple[pd.DataFrame, np.ndarray]:
        """Rows and their value of the column `labels` names."""
        frame = data.values if isinstance(data, Dataset) else data
        if not isinstance(frame, pd.DataFrame):
            raise GenloomError(f"give the table's rows as a DataFrame; got {type(frame).__name__}")
        if not isinstance(labels, str) or labels not in frame.columns:
            raise GenloomError(f"name the column whose values mark the classes (labels='column'); got {labels!r}; "
                               f"columns: {', '.join(map(str, frame.columns))}")
        return frame, frame[labels].astype(str).to_numpy()

    def describe(self) -> dict[str, Any]:
        conditionable = {c.name: [str(v) for v in c.state.categories + c.state.rare]
                         for c in self.columns if isinstance(c, CategoricalColumn)}
        given = {"given": self.condition_on} if self.condition_on else {}
        return {"columns": self.kinds, "conditions": conditionable, **given}

    def label_ids(self, labels: Any) -> np.ndarray:
        raise GenloomError("table models take no labels; ask for column values with conditions={column: value} "
                           "(CLI: --condition column=value)")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "seed": self.seed, "numbers": self.numbers, "property": self.property,
                "columns": [{"name": c.name, "kind": c.kind, **c.to_json()} for c in self.columns],
                "condition_columns": [{"name": c.name, "kind": c.kind, **c.to_json()} for c in self.condition_columns],
                "order": self.order}

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> TabularCodec:
        columns, conditions = ([COLUMNS[spec["kind"]].from_json(spec["name"], spec) for spec in state.get(key, [])]
                               for key in ("columns", "condition_columns"))
        return cls(columns, state["seed"], state.get("numbers", "modes"), property=state.get("property"),
                   condition_on=[c.name for c in conditions], condition_columns=conditions, order=state.get("order"))
