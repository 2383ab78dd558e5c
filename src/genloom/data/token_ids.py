"""Examples that are token ids already (a VQ-VAE's code grid, a molecule's tokens), as the autoregressive family
takes tokens: nothing to learn, nothing to convert, and only these ids may be drawn."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch


@dataclass(frozen=True)
class TokenIds:
    """`length` ids from a vocabulary of `vocab_size` shared by every position. Subclasses say what their
    likelihood measures (likelihood_scores)."""

    length: int
    vocab_size: int
    grammar: Callable[[torch.Tensor, int], torch.Tensor] | None = None
    end_token: ClassVar[int | None] = None

    def fit(self, x: torch.Tensor) -> None:
        """Nothing to learn: the ids are the tokens."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.long()

    def decode(self, tokens: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return tokens

    def allowed(self, vocab_size: int) -> torch.Tensor:
        """(length, vocab_size): any of the ids anywhere, never a class or start token."""
        return (torch.arange(vocab_size) < self.vocab_size).expand(self.length, vocab_size)
