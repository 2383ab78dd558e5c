"""Reading tables (CSV, Parquet, DataFrames) and deciding what kind each column is."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import GenloomError

COLUMN_KINDS = ("numerical", "categorical", "boolean", "datetime", "identifier")
SDV_NAMES = {"id": "identifier"}  # SDV metadata calls its kinds "sdtypes"; all but one share our names
DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d",
                "%d.%m.%Y", "%Y-%m-%d %H:%M")
MAX_CATEGORIES = 10_000
MAX_MAGNITUDE = 1e100  # larger numbers overflow the squares of the normalisers' statistics


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame, or a one-line error saying what is wrong with it."""
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        else:
            separator = "\t" if path.suffix.lower() == ".tsv" else ","
            _check_header(path, separator)
            frame = pd.read_csv(path, sep=separator)
    except pd.errors.EmptyDataError:
        raise GenloomError(f"{path} is empty; give a table with a header line and rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise GenloomError(f"{path} is not a readable table ({first}); give a CSV or Parquet file") from None
    return check_table(frame, str(path))


def _check_header(path: Path, separator: str) -> None:
    """pandas renames a repeated column name to name.1 without a word: refuse it instead."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader(handle, delimiter=separator), [])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise GenloomError(f"{path} repeats the column name {', '.join(map(repr, repeated))}; give each column "
                           "its own name")


def check_table(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Refuse tables that cannot be learnt from: no rows, no columns, duplicate or empty columns."""
    frame = frame.rename(columns=str)  # names are keys in codec.json and the metadata: text
    if frame.shape[1] == 0:
        raise GenloomError(f"{name} has no columns; give a table with a header line and rows")
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise GenloomError(f"{name} has duplicate column names: {', '.join(map(str, duplicated))}; rename them")
    if len(frame) == 0:
        raise GenloomError(f"{name} has a header but no rows; give at least a few hundred rows")
    empty = [str(c) for c in frame.columns if frame[c].isna().all()]
    if empty:
        raise GenloomError(f"column {', '.join(map(repr, empty))} of {name} holds only missing values; drop it")
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
            bad = np.flatnonzero(~(np.abs(numbers) <= MAX_MAGNITUDE) & ~np.isnan(numbers))
            if len(bad):
                raise GenloomError(f"column {column!r} of {name} has an infinite or too large value "
                                   f"({numbers[bad[0]]:g} in row {bad[0] + 1}; at most {MAX_MAGNITUDE:g} in size); "
                                   "replace or drop those rows, or rescale the column")
    return frame


def read_metadata(path: str | Path | None) -> dict[str, str]:
    """Column kinds from a metadata JSON: {"columns": {"age": {"sdtype": "numerical"}, ...}} (SDV's
    layout; "kind" works as well as "sdtype")."""
    if path is None:
        return {}
    try:
        columns = json.loads(Path(path).read_text(encoding="utf-8"))["columns"]
        kinds = {name: SDV_NAMES.get(spec.get("kind", spec.get("sdtype")), spec.get("kind", spec.get("sdtype")))
                 for name, spec in columns.items()}
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as error:
        raise GenloomError(f"{path} is not a metadata file like {{\"columns\": {{\"age\": {{\"sdtype\": "
                           f"\"numerical\"}}}}}} ({type(error).__name__})") from None
    _check_kinds(kinds, str(path))
    return kinds


def _check_kinds(kinds: dict[str, Any], where: str) -> None:
    unknown = {k for k in kinds.values() if k not in COLUMN_KINDS}
    if unknown:
        raise GenloomError(f"unknown column kind {', '.join(map(repr, sorted(map(str, unknown))))} in {where}; "
                           f"use one of {', '.join(COLUMN_KINDS)}")


def date_format(values: pd.Series) -> str | None:
    """The first of DATE_FORMATS that reads every value, or None."""
    strings = values.dropna().astype(str)
    if strings.empty or not strings.str.contains(r"\d[-/.:]\d|\d{4}-\d", regex=True).all():
        return None
    sample = strings.iloc[:1000]
    for fmt in DATE_FORMATS:
        if pd.to_datetime(sample, format=fmt, errors="coerce").notna().all():
            if pd.to_datetime(strings, format=fmt, errors="coerce").notna().all():
                return fmt
    return None


def _looks_like_identifier(name: str, values: pd.Series) -> bool:
    """Unique and never missing, and either text or whole numbers under a name like id, user_id, id-card."""
    if not (values.notna().all() and values.is_unique):
        return False
    if not pd.api.types.is_numeric_dtype(values):
        return True
    named = re.fullmatch(r"id|.+[_\s-]id|id[_\s-].+", str(name).lower()) is not None
    return named and pd.api.types.is_integer_dtype(values)


def infer_kind(name: str, values: pd.Series) -> str:
    """What a column holds, from its dtype and values; a column mixing numbers and text is an error."""
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime"
    if pd.api.types.is_numeric_dtype(values):
        return "identifier" if _looks_like_identifier(name, values) and len(values) > 1 else "numerical"
    present = values.dropna()
    numbers = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
    rows = np.flatnonzero(values.notna().to_numpy())[numbers.isna().to_numpy()]  # positions among all rows
    if numbers.notna().mean() > 0.5 and len(rows):
        shown = ", ".join(f"{row + 1} ({values.iloc[row]!r})" for row in rows[:3])
        raise GenloomError(f"column {name!r} mixes numbers and text: row {shown}; fix those rows, or "
                           "declare the column categorical in a metadata file")
    if date_format(present) is not None:
        return "datetime"
    if len(present) > 20 and _looks_like_identifier(name, values):
        return "identifier"
    if present.nunique() > MAX_CATEGORIES and present.nunique() > 0.5 * len(present):
        raise GenloomError(f"column {name!r} has {present.nunique():,} distinct values in {len(present):,} rows: "
                           "too many to model as categories; mark it as an identifier in a metadata file, or drop it")
    return "categorical"


def column_kinds(frame: pd.DataFrame, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Every column's kind: the metadata's where it names one, inferred otherwise."""
    overrides = overrides or {}
    _check_kinds(overrides, "the column kinds")
    unknown = sorted(set(overrides) - set(map(str, frame.columns)))
    if unknown:
        raise GenloomError(f"the metadata names column {', '.join(map(repr, unknown))}, which the table does not "
                           f"have; its columns: {', '.join(map(str, frame.columns))}")
    return {str(c): overrides.get(str(c)) or infer_kind(str(c), frame[c]) for c in frame.columns}


def as_numbers(values: pd.Series, kind: str, fmt: str | None = None) -> np.ndarray:
    """A numerical or datetime column as float64 (dates as seconds since 1970 in UTC, read with `fmt` when
    known, else each as it comes), NaN where missing or unreadable."""
    if kind == "datetime":
        stamps = pd.to_datetime(values, errors="coerce", format=fmt or "mixed")
        if getattr(stamps.dtype, "tz", None) is not None:
            stamps = stamps.dt.tz_convert(None)
        values = (stamps - pd.Timestamp(0)).dt.total_seconds()
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def json_value(value: Any) -> Any:
    """A numpy or pandas scalar as a plain JSON value (None for missing)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return value.item() if isinstance(value, np.generic) else value
