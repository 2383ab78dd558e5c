"""The columns of TabularCodec, one class per column kind, each with a typed state that codec.json holds.

A column turns its values into a block of the encoded row (its spans) and back: numbers through a
normaliser (normalisers.py), categories one-hot with rare ones grouped, identifiers not at all (new unique
ids are written on decode). Decoding restores dtypes, integer rounding, observed bounds, missing values,
date formats and time zones."""
from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import GenloomError
from ..layout import Span
from .normalisers import NORMALISERS, Moments, Modes, Quantiles
from .tables import MAX_CATEGORIES, as_numbers, date_format, json_value

OTHER = "__other__"  # the slot of grouped rare categories


@dataclass(frozen=True)
class RowPositions:
    """Where decoded rows sit among all the rows of one sampling: what decoding draws is tied to the row's
    position, so that decoding in chunks (a file written 10,000 rows at a time, one shard of many) gives what
    decoding all at once gives."""

    seed: int
    first: int
    count: int

    def uniforms(self, stream: str) -> np.ndarray:
        """One number in [0, 1) per row, from numpy's counter-based Philox with one counter per position (its
        four outputs per counter, the first kept), keyed by the seed and `stream`."""
        key = np.random.SeedSequence([self.seed, zlib.crc32(stream.encode())]).generate_state(2, np.uint64)
        bits = np.random.Philox(counter=self.first, key=int(key[0]) | int(key[1]) << 64)
        return np.random.Generator(bits).random((self.count, 4))[:, 0]

    def indices(self) -> np.ndarray:
        return np.arange(self.first, self.first + self.count)


def _missing_block(missing: np.ndarray) -> np.ndarray:
    return np.stack([~missing, missing], axis=1).astype(np.float32)


@dataclass
class NumberState:
    numbers: str                   # the normaliser: "modes", "quantile" or "standard"
    transform: Modes | Quantiles | Moments   # what the normaliser learnt
    min: float                     # decoded values stay within the training range
    max: float
    integer: bool                  # every training value was whole: decoded values are rounded
    fill: float                    # encodes a missing value (which the missing flag marks)
    missing: bool                  # the column had missing values: a present/missing one-hot follows
    dtype: str


@dataclass
class DateState(NumberState):
    format: str | None             # dates read from text come back as text in this format
    timezone: str | None
    unit: int                      # seconds in the coarsest unit every training date is whole in


@dataclass
class CategoryState:
    categories: list[Any]          # one slot each, most frequent first
    rare: list[Any]                # past max_categories: they share one slot ...
    rare_weights: list[float]      # ... and are drawn by these frequencies on decode
    dtype: str


@dataclass
class IdentifierState:
    numeric: bool
    prefix: str                    # new ids are prefix + a number of at least `digits` digits
    digits: int
    dtype: str
    start: int                     # the first new id's number: after every training id


class NumericalColumn:
    """A number through one of the NORMALISERS, plus integer rounding and the observed bounds."""

    kind: ClassVar[str] = "numerical"

    def __init__(self, name: str, numbers: str = "modes", state: NumberState | None = None):
        self.name, self.numbers, self.state = name, numbers, state

    @property
    def normaliser(self) -> Any:
        return NORMALISERS[self.numbers]

    def _numbers(self, values: pd.Series) -> np.ndarray:
        return as_numbers(values, self.kind)

    def _fitted(self, x: np.ndarray, dtype: Any, rng: np.random.Generator) -> dict[str, Any]:
        """The NumberState fields of the numbers x (NaN where missing)."""
        present = x[~np.isnan(x)]
        if len(present) == 0:
            raise GenloomError(f"column {self.name!r} holds no numbers; declare its kind in the metadata file")
        return {"numbers": self.numbers, "transform": self.normaliser.fit(present, rng),
                "min": float(present.min()), "max": float(present.max()),
                "integer": bool(np.all(present == np.round(present))), "fill": float(present.mean()),
                "missing": bool(np.isnan(x).any()), "dtype": str(dtype)}

    def fit(self, values: pd.Series, rng: np.random.Generator) -> NumericalColumn:
        self.state = NumberState(**self._fitted(self._numbers(values), values.dtype, rng))
        return self

    @property
    def spans(self) -> list[Span]:
        spans = self.normaliser.spans(self.state.transform)
        return spans + [Span("missing", 2)] if self.state.missing else spans

    def encode(self, values: pd.Series, rng: np.random.Generator) -> np.ndarray:
        """The column's block; a value past the training range goes on past a saturating normaliser's bound by its
        distance from the range in units of 4 spreads (the normalisers' scale), so that a likelihood sees how far out
        it lies rather than an edge value (what makes an outlier an outlier)."""
        x = self._numbers(values)
        missing = np.isnan(x)
        filled = np.where(missing, self.state.fill, x)
        block = self.normaliser.encode(filled, self.state.transform, rng)
        excess = np.maximum(filled - self.state.max, 0) + np.minimum(filled - self.state.min, 0)
        if self.normaliser.saturates and excess.any():
            spread = self.normaliser.spread(self.state.transform) or (self.state.max - self.state.min) or 1.0
            block[:, 0] += (excess / (4 * spread)).astype(block.dtype)
        return np.concatenate([block] + ([_missing_block(missing)] if self.state.missing else []), axis=1)

    def to_numbers(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decoded numbers within bounds (rounded for integers), and where they are missing."""
        x = np.clip(self.normaliser.decode(block, self.state.transform), self.state.min, self.state.max)
        if self.state.integer:
            x = np.round(x)
        missing = block[:, -2:].argmax(1) == 1 if self.state.missing else np.zeros(len(x), dtype=bool)
        return x, missing

    def decode(self, block: np.ndarray, rows: RowPositions) -> pd.Series:
        x, missing = self.to_numbers(block)
        series = pd.Series(np.where(missing, np.nan, x), name=self.name)
        dtype = self.state.dtype
        if not pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(dtype)):
            dtype = "float64"  # numbers that were stored as text come back as numbers
        if missing.any():  # a plain int column cannot hold missing values; pandas' nullable one can
            return series.astype("Int64") if self.state.integer and "int" in dtype.lower() else series
        return series.astype(dtype)

    def to_json(self) -> dict[str, Any]:
        """Flat: the transform's fields sit beside the others, as genloom 0.1.0 wrote them."""
        state = {f.name: getattr(self.state, f.name) for f in fields(self.state) if f.name != "transform"}
        return {**state, **asdict(self.state.transform)}

    @classmethod
    def from_json(cls, name: str, state: dict[str, Any]) -> NumericalColumn:
        numbers = state.get("numbers", "modes")  # 0.1.0's first runs had modes only
        transform_class = NORMALISERS[numbers].State
        transform = transform_class(**{f.name: state[f.name] for f in fields(transform_class)})
        state_class = DateState if cls.kind == "datetime" else NumberState
        known = {f.name for f in fields(state_class)} - {"numbers", "transform"}
        return cls(name, numbers, state_class(numbers=numbers, transform=transform,
                                              **{key: state[key] for key in known}))


class DatetimeColumn(NumericalColumn):
    """Dates as seconds since 1970 through the numerical transform; the source format is restored."""

    kind: ClassVar[str] = "datetime"

    def _numbers(self, values: pd.Series) -> np.ndarray:
        return as_numbers(values, self.kind, self.state.format if self.state else None)

    def fit(self, values: pd.Series, rng: np.random.Generator) -> DatetimeColumn:
        zone = getattr(values.dtype, "tz", None)
        text_format = None if pd.api.types.is_datetime64_any_dtype(values) else date_format(values)
        seconds = as_numbers(values, self.kind, text_format)  # in UTC
        fitted = self._fitted(seconds, values.dtype, rng)
        present = seconds[~np.isnan(seconds)]
        # the coarsest unit every training value is a whole number of: dates come back as whole days
        unit = next(u for u in (86400, 3600, 60, 1) if u == 1 or np.all(present % u == 0))
        self.state = DateState(**fitted, format=text_format, timezone=str(zone) if zone else None, unit=unit)
        return self

    def decode(self, block: np.ndarray, rows: RowPositions) -> pd.Series:
        x, missing = self.to_numbers(block)
        unit = self.state.unit
        stamps = pd.Series(pd.to_datetime(np.round(x / unit) * unit, unit="s"), name=self.name).mask(missing)
        if self.state.timezone:
            stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(self.state.timezone)
        return stamps.dt.strftime(self.state.format) if self.state.format else stamps


class CategoricalColumn:
    """One-hot over the categories; past `max_categories`, the rarest share one slot and are drawn by
    their frequencies on decode. Missing values are a category of their own."""

    kind: ClassVar[str] = "categorical"

    def __init__(self, name: str, max_categories: int = 1000, state: CategoryState | None = None):
        self.name, self.max_categories, self.state = name, max_categories, state

    def fit(self, values: pd.Series, rng: np.random.Generator) -> CategoricalColumn:
        counts = values.value_counts(dropna=False)
        if len(counts) > MAX_CATEGORIES:
            raise GenloomError(f"column {self.name!r} has {len(counts):,} categories, more than {MAX_CATEGORIES:,}; "
                               "group them first, or mark the column as an identifier")
        kept, rare = counts.iloc[:self.max_categories], counts.iloc[self.max_categories:]
        self.state = CategoryState([json_value(v) for v in kept.index], [json_value(v) for v in rare.index],
                                   (rare / rare.sum()).tolist() if len(rare) else [], str(values.dtype))
        return self

    @property
    def slots(self) -> list[Any]:
        return self.state.categories + ([OTHER] if self.state.rare else [])

    @property
    def spans(self) -> list[Span]:
        return [Span("category", len(self.slots))]

    def _key(self, value: Any) -> Any:
        return None if pd.isna(value) else json_value(value)

    def encode(self, values: pd.Series, rng: np.random.Generator) -> np.ndarray:
        index = {value: i for i, value in enumerate(self.state.categories)}
        other = len(self.state.categories) if self.state.rare else -1  # rare and unseen values go there
        ids = np.array([index.get(self._key(v), other) for v in values])
        if (ids < 0).any():
            unseen = values[ids < 0].iloc[0]
            raise GenloomError(f"column {self.name!r} has the category {unseen!r}, unseen in training; "
                               f"known: {', '.join(map(repr, self.state.categories[:10]))}")
        return np.eye(len(self.slots), dtype=np.float32)[ids]

    def decode(self, block: np.ndarray, rows: RowPositions) -> pd.Series:
        slots = np.array(self.slots, dtype=object)
        values = slots[block.argmax(1)]
        grouped = values == OTHER
        if grouped.any():  # a rare category for each, drawn in proportion to how often it was seen
            cumulative = np.cumsum(self.state.rare_weights)
            drawn = np.searchsorted(cumulative / cumulative[-1], rows.uniforms(self.name)[grouped], side="right")
            values[grouped] = np.array(self.state.rare, dtype=object)[np.minimum(drawn, len(cumulative) - 1)]
        series = pd.Series(values, name=self.name)
        return series if series.isna().any() else series.astype(self.state.dtype)

    def category(self, value: Any) -> Any:
        """The category `value` names (spaces around it ignored if that finds it), or None."""
        known = self.state.categories + self.state.rare
        return next((k for k in known if str(k) == str(value)),
                    next((k for k in known if str(k).strip() == str(value).strip()), None))

    def slot(self, category: Any) -> int:
        """The one-hot slot of a category (a rare one's is the shared slot of the rare ones)."""
        categories = self.state.categories
        return categories.index(category) if category in categories else len(self.slots) - 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self.state)

    @classmethod
    def from_json(cls, name: str, state: dict[str, Any]) -> CategoricalColumn:
        return cls(name, state=CategoryState(**{f.name: state[f.name] for f in fields(CategoryState)}))


class BooleanColumn(CategoricalColumn):
    kind: ClassVar[str] = "boolean"


class IdentifierColumn:
    """Not modelled: decoding writes new unique ids in the training ids' pattern (prefix and digits),
    numbered after the largest training id so that none repeats a real one."""

    kind: ClassVar[str] = "identifier"
    spans: ClassVar[list[Span]] = []

    def __init__(self, name: str, state: IdentifierState | None = None):
        self.name, self.state = name, state

    def fit(self, values: pd.Series, rng: np.random.Generator) -> IdentifierColumn:
        first = str(values.dropna().iloc[0])
        digits = len(first) - len(first.rstrip("0123456789"))
        numbers = pd.to_numeric(values.astype(str).str[len(first) - digits:], errors="coerce")
        self.state = IdentifierState(bool(pd.api.types.is_numeric_dtype(values)), first[:len(first) - digits],
                                     digits, str(values.dtype), int(numbers.max()) + 1 if numbers.notna().any() else 0)
        return self

    def encode(self, values: pd.Series, rng: np.random.Generator) -> np.ndarray:
        return np.zeros((len(values), 0), dtype=np.float32)

    def decode(self, block: np.ndarray, rows: RowPositions) -> pd.Series:
        ids = rows.indices() + self.state.start  # unique over all rows of the sampling, chunks and shards
        if self.state.numeric:
            return pd.Series(ids, name=self.name).astype(self.state.dtype)
        return pd.Series([f"{self.state.prefix}{i:0{self.state.digits}d}" for i in ids], name=self.name)

    def to_json(self) -> dict[str, Any]:
        return asdict(self.state)

    @classmethod
    def from_json(cls, name: str, state: dict[str, Any]) -> IdentifierColumn:
        return cls(name, IdentifierState(**{f.name: state[f.name] for f in fields(IdentifierState)}))


Column = NumericalColumn | CategoricalColumn | IdentifierColumn
COLUMNS: dict[str, type] = {cls.kind: cls for cls in
                            (NumericalColumn, DatetimeColumn, CategoricalColumn, BooleanColumn, IdentifierColumn)}
