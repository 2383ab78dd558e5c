"""Layout: what a family and a backbone know of the encoded data (no pandas, no PIL)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Layout:
    """The codec's description of one encoded example; backbones are built from it."""

    kind: str                  # "image", later "table" and "sequence"; picks the backbone
    shape: tuple[int, ...]     # shape of one encoded example, e.g. (C, H, W)
    num_classes: int = 0       # classes available for conditioning; 0 = none

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
