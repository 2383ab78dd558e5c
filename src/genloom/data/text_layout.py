"""The layout of text: a stream of token ids, which the autoregressive family takes as it is."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..layout import Layout


@dataclass(frozen=True)
class TextLayout(Layout):
    """A stream of `vocab_size` token ids: tokens already, so the autoregressive family takes them as they are."""

    kind: str = field(default="text", init=False)

    def tokens(self, levels: int, bins: int) -> None:
        return None
