"""A loaded data set: raw values of one kind, optional class labels, and where it came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import GenloomError
from ..layout import KINDS, data_kind


@dataclass
class Dataset:
    """What `load_data` returns and `Model.fit` takes; the codec turns `values` into tensors."""

    kind: str                             # picks the codec: "image", "table", "text", "molecule" or "signal"
                                          # (layout.KINDS)
    values: Any                           # images: uint8 array (N, H, W, C); a table: a DataFrame; text: one str;
                                          # molecules: an object array of SMILES strings; signals: Signals
    name: str                             # short name for runs and reports
    labels: np.ndarray | None = None      # int64 class ids, one per example
    class_names: list[str] | None = None
    source: dict[str, Any] = field(default_factory=dict)  # the load_data arguments that rebuild it
    personal_data: dict[str, str] = field(default_factory=dict)  # a table's personal columns, found at load
                                                                  # (data/pii.py): column -> what it holds

    def __len__(self) -> int:
        return len(self.values)

    def __post_init__(self) -> None:
        self.kind = data_kind(self.kind)
        if self.kind not in KINDS:
            raise GenloomError(f"unknown data kind {self.kind!r}; kinds: {', '.join(KINDS)}")

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}: {DESCRIPTIONS[self.kind](self)})"


def _images(data: Dataset) -> str:
    classes = f", {len(data.class_names)} classes" if data.class_names else ""
    return f"{len(data)} images of {'x'.join(str(s) for s in np.shape(data.values)[1:])}{classes}"


DESCRIPTIONS: dict[str, Callable[[Dataset], str]] = {
    "image": _images,
    "table": lambda data: f"{len(data):,} rows x {data.values.shape[1]} columns",
    "text": lambda data: f"{len(data):,} characters of text",
    "molecule": lambda data: f"{len(data):,} molecules",
    "signal": lambda data: (f"{len(data):,} recordings, {data.values.seconds:,.0f} s at {data.values.rate:,} Hz"
                            if data.values.rate else f"{len(data):,} series"),
}
