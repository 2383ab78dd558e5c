"""The layout of molecules: each one a fixed-length sequence of SMILES or SELFIES tokens, padded with the end
token, which the autoregressive family takes whole as it takes an image's pixels or a row's columns."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..layout import Layout
from .token_ids import TokenIds


class MoleculeTokens(TokenIds):
    """A molecule's tokens from one vocabulary shared by every position (a ring-closure digit means the same
    wherever it stands)."""

    def likelihood_scores(self, log_prob: torch.Tensor) -> dict[str, float]:
        """Negative log-likelihood of a molecule (nats), the sum over its tokens and the end token after them."""
        return {"nll_per_molecule": -log_prob.mean().item()}


@dataclass(frozen=True)
class MoleculeLayout(Layout):
    """(length,) token ids of `vocab_size`; the end token (id 0) closes each molecule and pads it to length."""

    kind: str = field(default="molecule", init=False)

    def tokens(self, levels: int, bins: int) -> MoleculeTokens:
        return MoleculeTokens(self.shape[0], self.vocab_size)
