"""The layout of molecules: each one a fixed-length sequence of SMILES or SELFIES tokens, padded with the end
token, which the autoregressive family takes whole as it takes an image's pixels or a row's columns, and which a
VAE decodes position by position (TokenReconstruction). A run that designs toward a property carries the
molecule's property after its tokens (scaled to [-1, 1]), where a property head reads it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..errors import GenloomError
from ..layout import Layout
from .smiles_grammar import SmilesGrammar
from .token_ids import TokenIds


class MoleculeTokens(TokenIds):
    """A molecule's tokens from one vocabulary shared by every position (a ring-closure digit means the same
    wherever it stands), ended and padded by the end token (id 0); in SMILES, with the syntax as a grammar."""

    end_token: ClassVar[int | None] = 0

    def likelihood_scores(self, log_prob: torch.Tensor) -> dict[str, float]:
        """Negative log-likelihood of a molecule (nats), the sum over its tokens and the end token after them."""
        return {"nll_per_molecule": -log_prob.mean().item()}


class TokenReconstruction:
    """A decoder's output (B, length, vocab) as a categorical distribution over each position's token given the
    code (the likelihood of the chemical VAE of Gomez-Bombarelli et al. 2018, whose decoder reads the code at every
    position) and, for an autoregressive decoder, the tokens before it; a property slot after the tokens, if any, is
    not reconstructed (the head predicts it)."""

    discrete = True
    adversarial = False  # a token is a discrete choice a critic's gradient cannot reach
    scale_shape = (1,)  # no scale: a categorical has none

    def __init__(self, length: int, property_slot: bool):
        self.length, self.property_slot = length, property_slot

    def log_prob(self, x: torch.Tensor, output: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        tokens = x[:, :self.length].long()
        return -F.cross_entropy(output.float().transpose(1, 2), tokens, reduction="none").sum(1)

    def with_slot(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids (B, length) in the codec's layout: as floats, with an empty property slot where the layout
        has one."""
        tokens = tokens.float()
        return F.pad(tokens, (0, 1)) if self.property_slot else tokens

    @staticmethod
    def pick(output: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Token ids from logits (..., vocab): the likeliest (no generator) or each drawn from its distribution."""
        if generator is None:
            return output.argmax(-1)
        probabilities = F.softmax(output.float(), dim=-1).reshape(-1, output.shape[-1]).cpu()
        return torch.multinomial(probabilities, 1, generator=generator).view(output.shape[:-1]).to(output.device)

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        """The likeliest token at each position."""
        return self.with_slot(self.pick(output))

    def sample(self, output: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each position's token drawn from its distribution."""
        return self.with_slot(self.pick(output, generator))

    def activate(self, output: torch.Tensor, generator: torch.Generator | None = None,
                 noise: bool = True) -> torch.Tensor:
        raise GenloomError("tokens are not a generator's output (adversarial is False)")


@dataclass(frozen=True)
class MoleculeLayout(Layout):
    """(length,) token ids of `vocab_size`, or (length + 1,) with the property after them; the end token (id 0)
    closes each molecule and pads it to length."""

    kind: str = field(default="molecule", init=False)
    grammar: SmilesGrammar | None = None  # SMILES' syntax over the vocabulary; None for SELFIES, which needs none

    @property
    def length(self) -> int:
        """Tokens per molecule."""
        return self.shape[0] - (self.property_position is not None)

    def tokens(self, levels: int, bins: int) -> MoleculeTokens:
        if self.property_position is not None:
            raise GenloomError("a property head is the VAE's; train the autoregressive family without a property")
        return MoleculeTokens(self.length, self.vocab_size, self.grammar)

    def reconstruction(self) -> TokenReconstruction:
        return TokenReconstruction(self.length, self.property_position is not None)
