"""TabularCodec: a mixed-type DataFrame <-> float rows, one block of columns per table column.

Numbers go through a normaliser (normalisers.py: CTGAN's modes or TabDDPM's quantiles); categories are
one-hot; a column with missing values adds a present/missing one-hot. Each block is a span of the Layout
("continuous", or the one-hot kinds "mode", "missing" and "category"), so families know which outputs are
continuous, which are a softmax, and which are the categories a user may condition on. Decoding restores
the column order, dtypes, integer rounding, observed bounds, missing values and date formats.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from ..errors import GenloomError
from ..files import atomic_path
from .codec import Layout, register_codec
from .dataset import Dataset
from .normalisers import NORMALISERS, ModeNormaliser, QuantileNormaliser
from .tables import MAX_CATEGORIES, as_numbers, column_kinds, date_format, json_value, read_metadata

OTHER = "__other__"  # the slot of grouped rare categories


def _missing_block(missing: np.ndarray) -> np.ndarray:
    return np.stack([~missing, missing], axis=1).astype(np.float32)


class NumericalColumn:
    """A number through one of the NORMALISERS, plus integer rounding and the observed bounds."""

    kind = "numerical"

    def __init__(self, name: str, state: dict[str, Any] | None = None, numbers: str = "modes"):
        self.name, self.state = name, state or {"numbers": numbers}

    @property
    def normaliser(self) -> type[ModeNormaliser] | type[QuantileNormaliser]:
        return NORMALISERS[self.state.get("numbers", "modes")]

    def _numbers(self, values: pd.Series) -> np.ndarray:
        return as_numbers(values, self.kind, self.state.get("format"))

    def fit(self, values: pd.Series, rng: np.random.Generator) -> "NumericalColumn":
        x = self._numbers(values)
        present = x[~np.isnan(x)]
        if len(present) == 0:
            raise GenloomError(f"column {self.name!r} holds no numbers; declare its kind in the metadata file")
        self.state.update(self.normaliser.fit(present, rng))
        self.state.update({"min": float(present.min()), "max": float(present.max()),
                           "integer": bool(np.all(present == np.round(present))), "fill": float(present.mean()),
                           "missing": bool(np.isnan(x).any()), "dtype": str(values.dtype)})
        return self

    @property
    def spans(self) -> list[tuple[str, int]]:
        spans = self.normaliser.spans(self.state)
        return spans + [("missing", 2)] if self.state["missing"] else spans

    def encode(self, values: pd.Series, rng: np.random.Generator) -> np.ndarray:
        x = self._numbers(values)
        missing = np.isnan(x)
        block = self.normaliser.encode(np.where(missing, self.state["fill"], x), self.state, rng)
        return np.concatenate([block] + ([_missing_block(missing)] if self.state["missing"] else []), axis=1)

    def to_numbers(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decoded numbers within bounds (rounded for integers), and where they are missing."""
        x = np.clip(self.normaliser.decode(block, self.state), self.state["min"], self.state["max"])
        if self.state["integer"]:
            x = np.round(x)
        missing = block[:, -2:].argmax(1) == 1 if self.state["missing"] else np.zeros(len(x), dtype=bool)
        return x, missing

    def decode(self, block: np.ndarray, rng: np.random.Generator) -> pd.Series:
        x, missing = self.to_numbers(block)
        series = pd.Series(np.where(missing, np.nan, x), name=self.name)
        dtype = self.state["dtype"]
        if not pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(dtype)):
            dtype = "float64"  # numbers that were stored as text come back as numbers
        if missing.any():  # a plain int column cannot hold missing values; pandas' nullable one can
            return series.astype("Int64") if self.state["integer"] and "int" in dtype.lower() else series
        return series.astype(dtype)


class DatetimeColumn(NumericalColumn):
    """Dates as seconds since 1970 through the numerical transform; the source format is restored."""

    kind = "datetime"

    def fit(self, values: pd.Series, rng: np.random.Generator) -> "DatetimeColumn":
        zone = getattr(values.dtype, "tz", None)
        self.state["format"] = None if pd.api.types.is_datetime64_any_dtype(values) else date_format(values)
        super().fit(values, rng)  # reads the dates as seconds since 1970 (in UTC) with that format
        seconds = self._numbers(values)
        present = seconds[~np.isnan(seconds)]
        # the coarsest unit every training value is a whole number of: dates come back as whole days
        unit = next(u for u in (86400, 3600, 60, 1) if u == 1 or np.all(present % u == 0))
        self.state.update(timezone=str(zone) if zone else None, unit=unit)
        return self

    def decode(self, block: np.ndarray, rng: np.random.Generator) -> pd.Series:
        x, missing = self.to_numbers(block)
        unit = self.state["unit"]
        stamps = pd.Series(pd.to_datetime(np.round(x / unit) * unit, unit="s"), name=self.name).mask(missing)
        if self.state["timezone"]:
            stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(self.state["timezone"])
        return stamps.dt.strftime(self.state["format"]) if self.state["format"] else stamps


class CategoricalColumn:
    """One-hot over the categories; past `max_categories`, the rarest share one slot and are drawn by
    their frequencies on decode. Missing values are a category of their own."""

    kind = "categorical"

    def __init__(self, name: str, state: dict[str, Any] | None = None, max_categories: int = 1000):
        self.name, self.state, self.max_categories = name, state or {}, max_categories

    def fit(self, values: pd.Series, rng: np.random.Generator) -> "CategoricalColumn":
        counts = values.value_counts(dropna=False)
        if len(counts) > MAX_CATEGORIES:
            raise GenloomError(f"column {self.name!r} has {len(counts):,} categories, more than {MAX_CATEGORIES:,}; "
                               "group them first, or mark the column as an identifier")
        kept, rare = counts.iloc[:self.max_categories], counts.iloc[self.max_categories:]
        self.state = {"categories": [json_value(v) for v in kept.index],
                      "rare": [json_value(v) for v in rare.index],
                      "rare_weights": (rare / rare.sum()).tolist() if len(rare) else [],
                      "dtype": str(values.dtype)}
        return self

    @property
    def slots(self) -> list[Any]:
        return self.state["categories"] + ([OTHER] if self.state["rare"] else [])

    @property
    def spans(self) -> list[tuple[str, int]]:
        return [("category", len(self.slots))]

    def _key(self, value: Any) -> Any:
        return None if pd.isna(value) else json_value(value)

    def encode(self, values: pd.Series, rng: np.random.Generator) -> np.ndarray:
        index = {value: i for i, value in enumerate(self.state["categories"])}
        other = len(self.state["categories"]) if self.state["rare"] else -1  # rare and unseen values go there
        ids = np.array([index.get(self._key(v), other) for v in values])
        if (ids < 0).any():
            unseen = values[ids < 0].iloc[0]
            raise GenloomError(f"column {self.name!r} has the category {unseen!r}, unseen in training; "
                               f"known: {', '.join(map(repr, self.state['categories'][:10]))}")
        return np.eye(len(self.slots), dtype=np.float32)[ids]

    def decode(self, block: np.ndarray, rng: np.random.Generator) -> pd.Series:
        slots = np.array(self.slots, dtype=object)
        values = slots[block.argmax(1)]
        grouped = values == OTHER
        if grouped.any():
            values[grouped] = rng.choice(np.array(self.state["rare"], dtype=object), grouped.sum(),
                                         p=self.state["rare_weights"])
        series = pd.Series(values, name=self.name)
        return series if series.isna().any() else series.astype(self.state["dtype"])


class BooleanColumn(CategoricalColumn):
    kind = "boolean"


class IdentifierColumn:
    """Not modelled: decoding writes new unique ids in the training ids' pattern (prefix and digits),
    numbered after the largest training id so that none repeats a real one."""

    kind = "identifier"
    spans: ClassVar[list] = []

    def __init__(self, name: str, state: dict[str, Any] | None = None):
        self.name, self.state = name, state or {}

    def fit(self, values: pd.Series, rng: np.random.Generator) -> "IdentifierColumn":
        first = str(values.dropna().iloc[0])
        digits = len(first) - len(first.rstrip("0123456789"))
        numbers = pd.to_numeric(values.astype(str).str[len(first) - digits:], errors="coerce")
        self.state = {"numeric": bool(pd.api.types.is_numeric_dtype(values)), "prefix": first[:len(first) - digits],
                      "digits": digits, "dtype": str(values.dtype),
                      "start": int(numbers.max()) + 1 if numbers.notna().any() else 0}
        return self

    def encode(self, values: pd.Series, rng: np.random.Generator) -> np.ndarray:
        return np.zeros((len(values), 0), dtype=np.float32)

    def decode(self, block: np.ndarray, rng: np.random.Generator) -> pd.Series:
        ids = np.arange(len(block)) + self.state["start"]
        if self.state["numeric"]:
            return pd.Series(ids, name=self.name).astype(self.state["dtype"])
        width = max(self.state["digits"], len(str(ids[-1] if len(ids) else 0)))
        return pd.Series([f"{self.state['prefix']}{i:0{width}d}" for i in ids], name=self.name)


COLUMNS: dict[str, type] = {cls.kind: cls for cls in
                            (NumericalColumn, DatetimeColumn, CategoricalColumn, BooleanColumn, IdentifierColumn)}


@register_codec("table")
class TabularCodec:
    """Fitted per column on the training table; encode/decode are seeded, so they repeat exactly.
    `numbers`: "modes" (CTGAN's mode-specific normalisation) or "quantile" (TabDDPM's quantile transform)."""

    name = "table"
    sample_suffix = ".csv"

    def __init__(self, columns: list[Any] | None = None, kinds: dict[str, str] | None = None, seed: int = 0,
                 numbers: str = "modes"):
        if numbers not in NORMALISERS:
            raise GenloomError(f"unknown number transform {numbers!r}; use one of {', '.join(NORMALISERS)}")
        self.columns, self.kinds, self.seed, self.numbers = columns or [], kinds or {}, seed, numbers

    def fit(self, data: Dataset) -> "TabularCodec":
        frame = data.values
        kinds = column_kinds(frame, {**read_metadata(data.source.get("metadata")), **self.kinds})
        rng = np.random.default_rng(self.seed)
        numeric = {"numbers": self.numbers}
        self.columns = [COLUMNS[kind](name, **(numeric if issubclass(COLUMNS[kind], NumericalColumn) else {}))
                        .fit(frame[name], rng) for name, kind in kinds.items()]
        self.kinds = kinds
        return self

    @property
    def layout(self) -> Layout:
        spans = tuple(span for column in self.columns for span in column.spans)
        return Layout("table", (sum(size for _, size in spans),), spans=spans)

    @property
    def formats(self) -> dict[str, str]:
        """The text format of each datetime column that was read from text."""
        return {c.name: c.state["format"] for c in self.columns if c.kind == "datetime" and c.state.get("format")}

    def _frame(self, values: Any) -> pd.DataFrame:
        frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(values)
        missing = [c.name for c in self.columns if c.name not in frame.columns]
        if missing:
            raise GenloomError(f"the table lacks column {', '.join(map(repr, missing))} that the model was "
                               "trained with")
        return frame

    def encode(self, values: Any) -> torch.Tensor:
        frame = self._frame(values)
        rng = np.random.default_rng(self.seed + 1)
        blocks = [column.encode(frame[column.name].reset_index(drop=True), rng) for column in self.columns]
        return torch.from_numpy(np.concatenate(blocks, axis=1))

    def decode(self, tensor: torch.Tensor) -> pd.DataFrame:
        rows = tensor.detach().float().cpu().numpy()
        rng = np.random.default_rng(self.seed + 2)
        series, start = [], 0
        for column in self.columns:
            width = sum(size for _, size in column.spans)
            series.append(column.decode(rows[:, start:start + width], rng))
            start += width
        return pd.concat(series, axis=1)

    def _wanted(self, conditions: dict[str, Any]) -> list[tuple[CategoricalColumn, Any]]:
        """Each condition's column and its category as the column knows it."""
        columns = {c.name: c for c in self.columns}
        wanted = []
        for name, value in conditions.items():
            column = columns.get(name)
            if column is None:
                raise GenloomError(f"unknown column {name!r} in the conditions; columns: {', '.join(columns)}")
            if not isinstance(column, CategoricalColumn):
                raise GenloomError(f"conditions work on categorical and boolean columns; {name!r} is {column.kind}")
            known = column.state["categories"] + column.state["rare"]
            category = next((k for k in known if str(k) == str(value)),  # else ignore spaces around values
                            next((k for k in known if str(k).strip() == str(value).strip()), None))
            if category is None:
                raise GenloomError(f"column {name!r} has no category {value!r}; known: "
                                   f"{', '.join(map(repr, known[:10]))}")
            wanted.append((column, category))
        return wanted

    def condition_mask(self, rows: pd.DataFrame, conditions: dict[str, Any]) -> np.ndarray:
        """Which rows hold every condition's value; conditions name categorical or boolean columns."""
        mask = np.ones(len(rows), dtype=bool)
        for column, category in self._wanted(conditions):
            mask &= (rows[column.name].astype(str) == str(category)).to_numpy()
        return mask

    def condition_positions(self, conditions: dict[str, Any]) -> list[int]:
        """Where each condition's category sits in an encoded row (its one-hot slot; a rare category's is
        the shared slot of the rare ones), for families that can steer towards it."""
        starts, start = {}, 0
        for column in self.columns:
            starts[column.name] = start
            start += sum(size for _, size in column.spans)
        return [starts[column.name] + (column.state["categories"].index(category)
                                       if category in column.state["categories"] else len(column.slots) - 1)
                for column, category in self._wanted(conditions)]

    def label_ids(self, labels: Any) -> np.ndarray:
        raise GenloomError("table models take no labels; ask for column values with conditions={column: value} "
                           "(CLI: --condition column=value)")

    def save_samples(self, samples: pd.DataFrame, path: str | Path) -> Path:
        """Write rows as .csv or .parquet, atomically."""
        path = Path(path)
        if path.suffix not in (".csv", ".parquet"):
            raise GenloomError(f"cannot write table samples to {path.name}; use a .csv or .parquet path")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            samples.to_csv(tmp, index=False) if path.suffix == ".csv" else samples.to_parquet(tmp, index=False)
        return path

    def files(self) -> dict[str, str]:
        return {}

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.name, "seed": self.seed, "numbers": self.numbers,
                "columns": [{"name": c.name, "kind": c.kind, **c.state} for c in self.columns]}

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> "TabularCodec":
        columns = [COLUMNS[spec["kind"]](spec["name"], {k: v for k, v in spec.items() if k not in ("name", "kind")})
                   for spec in state["columns"]]
        return cls(columns, {c.name: c.kind for c in columns}, state["seed"], state.get("numbers", "modes"))
