"""A VAE's networks for molecules as token sequences, after the chemical VAE of Gomez-Bombarelli et al. 2018: 1-D
convolutions read the tokens into a code, and a decoder writes the molecule from it.

Two decoders. The parallel one writes every position's token distribution from the code at once: it never reads
tokens it wrote, so each token depends on the code, which stays in use and lets a move in the code change the
molecule, but its molecules are poor chemistry (mean QED 0.43 after 15 minutes on moses, the data's 0.80). The
autoregressive one (the default for molecules) is MOSES' VAE decoder, a GRU that reads the tokens before each one:
a training step of the VAE costs 3.2x as much on a CPU at 1 thread, 3.8x at 2, 3.3x beside a busy core (0.28 s
against 0.09 s a batch of 128 at one thread; benchmarks/molecule_design.py --timings), and in 15 minutes its
molecules reach mean QED 0.65 where the parallel decoder's reached 0.43. SELFIES tokens make every sequence a
molecule."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..layout import Layout
from . import register_backbone

KERNEL = 5  # tokens a convolution sees: a ring or a branch and its neighbours
END = 0  # the token id that closes a molecule (MoleculeLayout)


def _convolutions(channels: int, layers: int) -> nn.Sequential:
    """`layers` same-length 1-D convolutions of `channels`, each followed by SiLU."""
    return nn.Sequential(*(part for _ in range(layers)
                           for part in (nn.Conv1d(channels, channels, KERNEL, padding=KERNEL // 2), nn.SiLU())))


@register_backbone(("molecule",), "encoder")
class TokenEncoder(nn.Module):
    """Token ids (B, length), and any slot after them, -> (B, out_dim)."""

    def __init__(self, layout: Layout, out_dim: int, width: int = 32, cond_dim: int = 0):
        super().__init__()
        self.length, channels = layout.length, 2 * width
        self.embed = nn.Embedding(layout.vocab_size, channels)
        self.convolutions = _convolutions(channels, 3)
        self.out = nn.Sequential(nn.Linear(channels * self.length + cond_dim, 2 * channels), nn.SiLU(),
                                 nn.Linear(2 * channels, out_dim))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        read = self.convolutions(self.embed(x[:, :self.length].long()).transpose(1, 2)).flatten(1)
        return self.out(torch.cat([read, cond], dim=1) if cond is not None else read)


@register_backbone(("molecule",), "decoder")
class TokenDecoder(nn.Module):
    """A code (B, latent_dim) -> token logits (B, length, vocab): a feature per position from the code, then
    convolutions that let neighbouring positions agree."""

    def __init__(self, layout: Layout, latent_dim: int, width: int = 32, cond_dim: int = 0):
        super().__init__()
        self.length, self.channels = layout.length, 2 * width
        self.spread = nn.Sequential(nn.Linear(latent_dim + cond_dim, 2 * self.channels), nn.SiLU(),
                                    nn.Linear(2 * self.channels, self.channels * self.length))
        self.convolutions = _convolutions(self.channels, 2)
        self.out = nn.Conv1d(self.channels, layout.vocab_size, 1)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        code = torch.cat([z, cond], dim=1) if cond is not None else z
        features = self.spread(code).view(len(z), self.channels, self.length)
        return self.out(self.convolutions(features)).transpose(1, 2)


@register_backbone(("molecule",), "autoregressive decoder")
class TokenReadingDecoder(nn.Module):
    """A code (B, latent_dim) -> token logits (B, length, vocab), each position's from the code and the tokens
    before it: a GRU whose first state and every input carry the code (the decoder of MOSES' VAE, one layer). In
    training it reads the true tokens (teacher forcing), a share `word_dropout` of them masked (Bowman et al. 2016:
    what it cannot read it must take from the code, which keeps the code in use); `generate` feeds it its own."""

    export_refusal = ("its decoder writes a molecule token by token, each from a Python loop over the GRU's state, "
                      "which this exporter does not put in a graph: sample with genloom")
    privacy_refusal = ("Opacus gives no per-example gradients of torch's GRU (its own DPGRU is another layer): "
                       "train the molecule VAE with --decoder parallel (decoder=\"parallel\")")

    def __init__(self, layout: Layout, latent_dim: int, width: int = 32, cond_dim: int = 0,
                 word_dropout: float = 0.0):
        super().__init__()
        self.length, self.word_dropout = layout.length, word_dropout
        self.start, self.masked = layout.vocab_size, layout.vocab_size + 1  # two ids past the vocabulary
        code_dim, hidden = latent_dim + cond_dim, 8 * width
        self.embed = nn.Embedding(layout.vocab_size + 2, 2 * width)
        self.first_state = nn.Linear(code_dim, hidden)
        self.gru = nn.GRU(2 * width + code_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, layout.vocab_size)

    @staticmethod
    def _code(z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """What every step reads beside the token: the code, and the condition if any."""
        return torch.cat([z, cond], dim=1) if cond is not None else z

    def _step(self, tokens: torch.Tensor, code: torch.Tensor, state: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits after reading `tokens` (B, steps), and the GRU's state after them."""
        read = torch.cat([self.embed(tokens), code[:, None].expand(-1, tokens.shape[1], -1)], dim=2)
        hidden, state = self.gru(read, state)
        return self.out(hidden), state

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None,
                tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Each position's logits given the true tokens before it (`tokens`: the encoded molecules)."""
        code = self._code(z, cond)
        read = torch.cat([torch.full((len(z), 1), self.start, device=z.device),
                          tokens[:, :self.length - 1].long()], dim=1)
        if self.training and self.word_dropout > 0:
            hidden = torch.rand(read.shape, device=z.device) < self.word_dropout
            hidden[:, 0] = False
            read = read.masked_fill(hidden, self.masked)
        return self._step(read, code, torch.tanh(self.first_state(code))[None])[0]

    def generate(self, z: torch.Tensor, cond: torch.Tensor | None,
                 pick: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Token ids (B, length), each chosen by `pick` from its logits (B, vocab) after reading those chosen
        before it; never the end token first (no molecule is empty)."""
        code = self._code(z, cond)
        state = torch.tanh(self.first_state(code))[None]
        token = torch.full((len(z), 1), self.start, device=z.device)
        chosen = []
        for position in range(self.length):
            logits, state = self._step(token, code, state)
            if position == 0:
                logits[:, 0, END] = float("-inf")
            token = pick(logits[:, 0])[:, None]
            chosen.append(token)
        return torch.cat(chosen, dim=1)
