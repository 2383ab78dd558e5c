"""Images and table rows as token sequences, for the autoregressive family (text arrives as tokens already).

Each tokeniser gives a sequence `length`, a `vocab_size`, encode/decode, and which tokens may stand at each
position, so sampling never writes a token that cannot be decoded there."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..layout import Layout


class PixelTokens:
    """Images in [-1, 1] <-> (N, H*W*C) tokens in raster order, channels last; token k stands for the
    256/K 8-bit values of the k-th equal bin (so a level's probability spreads evenly over its values)."""

    def __init__(self, shape: tuple[int, ...], levels: int):
        self.shape, self.levels = tuple(shape), levels
        self.length, self.vocab_size = math.prod(shape), levels

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        eight_bit = ((x.float() + 1) * 127.5).round()
        levels = (eight_bit * self.levels / 256).floor().clamp(0, self.levels - 1).long()
        return levels.permute(0, 2, 3, 1).flatten(1)

    def decode(self, tokens: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        channels, height, width = self.shape
        bin_width = 256 / self.levels
        x = ((tokens.float() + 0.5) * bin_width - 0.5) / 127.5 - 1  # the bin's centre
        return x.view(-1, height, width, channels).permute(0, 3, 1, 2)

    def allowed(self, vocab_size: int) -> torch.Tensor:
        """(length, vocab_size): every pixel is a level, never a class or start token."""
        return (torch.arange(vocab_size) < self.levels).expand(self.length, vocab_size)


class RowTokens(nn.Module):
    """Table rows <-> one token per span, as TabularCodec lays them out: a one-hot span's category (or mode,
    or missing flag), or the quantile bin of a continuous value. Bins hold equal shares of the training
    values (their edges are kept as a buffer), and a value is drawn uniformly within its bin on decode."""

    def __init__(self, layout: Layout, bins: int):
        super().__init__()
        self.spans = layout.spans
        self.sizes = [bins if kind == "continuous" else width for kind, width in layout.spans]
        self.offsets = [sum(self.sizes[:i]) for i in range(len(self.sizes))]
        self.length, self.vocab_size, self.bins = len(self.spans), sum(self.sizes), bins
        continuous = sum(kind == "continuous" for kind, _ in self.spans)
        self.register_buffer("bin_edges", torch.linspace(-1, 1, bins + 1).repeat(continuous, 1))

    def fit(self, x: torch.Tensor) -> None:
        """Bin edges at the quantiles of each continuous value of the training rows."""
        values = torch.stack([part[:, 0] for (kind, _), part in zip(self.spans, self._parts(x))
                              if kind == "continuous"], dim=1) if len(self.bin_edges) else None
        if values is not None:
            edges = np.quantile(values.double().cpu().numpy(), np.linspace(0, 1, self.bins + 1), axis=0).T
            self.bin_edges.copy_(torch.from_numpy(edges).to(self.bin_edges))

    def _parts(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(x, [width for _, width in self.spans], dim=1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        tokens, continuous = [], 0
        for (kind, _), part, offset in zip(self.spans, self._parts(x), self.offsets):
            if kind == "continuous":
                index = self._bin(part[:, 0].contiguous(), self.bin_edges[continuous].contiguous())
                continuous += 1
            else:
                index = part.argmax(1)
            tokens.append(offset + index)
        return torch.stack(tokens, dim=1)

    def _bin(self, values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """The bin of each value; a value that several edges equal (a spike of repeated values) goes to the
        zero-width bin between two of them, so it decodes to exactly itself."""
        first, last = torch.searchsorted(edges, values), torch.searchsorted(edges, values, right=True)
        return torch.where(last - first >= 2, first, (last - 1).clamp(0, self.bins - 1))

    def decode(self, tokens: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        parts, continuous = [], 0
        for (kind, width), column, offset, size in zip(self.spans, tokens.T, self.offsets, self.sizes):
            index = (column - offset).clamp(0, size - 1)
            if kind == "continuous":
                low, high = self.bin_edges[continuous, index], self.bin_edges[continuous, index + 1]
                where = torch.rand(len(index), generator=generator).to(low)
                parts.append((low + where * (high - low))[:, None])
                continuous += 1
            else:
                parts.append(F.one_hot(index, width).to(self.bin_edges))
        return torch.cat(parts, dim=1)

    def allowed(self, vocab_size: int) -> torch.Tensor:
        """(length, vocab_size): at each position, the tokens of that span only."""
        mask = torch.zeros(self.length, vocab_size, dtype=torch.bool)
        for position, (offset, size) in enumerate(zip(self.offsets, self.sizes)):
            mask[position, offset:offset + size] = True
        return mask


def tokens_for(layout: Layout, levels: int, bins: int) -> PixelTokens | RowTokens | None:
    """The tokeniser of the layout's kind; None for sequences, which are tokens already."""
    makers = {"image": lambda: PixelTokens(layout.shape, levels), "table": lambda: RowTokens(layout, bins)}
    return makers[layout.kind]() if layout.kind in makers else None
