"""A loaded data set: raw values of one kind, optional class labels, and where it came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Dataset:
    """What `load_data` returns and `Model.fit` takes; the codec turns `values` into tensors."""

    kind: str                             # picks the codec: "images", "text" or "table"
    values: Any                           # images: uint8 array (N, H, W, C); text: one str; table: a DataFrame
    name: str                             # short name for runs and reports
    labels: np.ndarray | None = None      # int64 class ids, one per example
    class_names: list[str] | None = None
    source: dict[str, Any] = field(default_factory=dict)  # the load_data arguments that rebuild it

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        if self.kind == "text":
            return f"Dataset({self.name!r}: {len(self):,} characters of text)"
        if self.kind == "table":
            return f"Dataset({self.name!r}: {len(self):,} rows x {self.values.shape[1]} columns)"
        classes = f", {len(self.class_names)} classes" if self.class_names else ""
        shape = "x".join(str(s) for s in np.shape(self.values)[1:])
        return f"Dataset({self.name!r}: {len(self)} {self.kind} of {shape}{classes})"
