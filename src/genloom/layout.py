"""Layout: what a family and a backbone know of the encoded data (no pandas, no PIL)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Layout:
    """The codec's description of one encoded example; backbones are built from it."""

    kind: str                  # "image", "sequence" or "table"; picks the backbone
    shape: tuple[int, ...]     # shape of one encoded example, e.g. (C, H, W); () for a token stream
    num_classes: int = 0       # classes available for conditioning; 0 = none
    vocab_size: int = 0        # sequences: number of distinct tokens
    start_token: int = 0       # sequences: the token an unprompted sample starts from
    # tables: (kind, width) blocks of a row; "continuous" is one value, any other kind a one-hot
    # ("category" of a column, "mode" of a number, "missing" flag)
    spans: tuple[tuple[str, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
