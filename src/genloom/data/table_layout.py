"""The layout of table rows and the pieces families take from it: the decoder likelihood of a row (TVAE's),
a GAN's output activation (CTGAN's), the row tokens of the autoregressive family and CTGAN's conditional
vector. All of them read the row as its spans, as TabularCodec lays them out."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from ..layout import Layout, Span
from .table_conditions import CategoryConditions, inverse_cdf


def split_spans(t: torch.Tensor, spans: tuple[Span, ...]) -> tuple[torch.Tensor, ...]:
    """The columns of encoded rows (N, width) cut into one block per span."""
    return torch.split(t, [span.width for span in spans], dim=1)


class TableReconstruction:
    """Rows made of spans (TVAE's likelihood): a Gaussian on each continuous value after tanh, with one
    learnt scale per value, and a categorical distribution on each one-hot span."""

    discrete = False
    adversarial = True

    def __init__(self, spans: tuple[Span, ...], shape: tuple[int, ...]):
        self.spans, self.scale_shape = spans, shape

    def log_prob(self, x: torch.Tensor, output: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(len(x), device=x.device)
        parts = zip(self.spans, split_spans(x.float(), self.spans), split_spans(output.float(), self.spans),
                    split_spans(log_scale.expand_as(output).float(), self.spans))
        for span, target, out, scale in parts:
            if span.one_hot:
                total = total + (target * F.log_softmax(out, dim=1)).sum(1)
            else:
                total = total + Normal(torch.tanh(out), scale.exp()).log_prob(target).sum(1)
        return total

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        """tanh of the continuous values, probabilities of the categories (the codec decodes the argmax)."""
        return torch.cat([F.softmax(out, dim=1) if span.one_hot else torch.tanh(out)
                          for span, out in zip(self.spans, split_spans(output, self.spans))], dim=1)

    @property
    def draw_count(self) -> int:
        """Uniform draws per row that `drawn` takes: one per one-hot span."""
        return sum(span.one_hot for span in self.spans)

    def sample(self, output: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Categories drawn from their probabilities (so rare ones appear), continuous values at their mean."""
        return self.drawn(output, torch.rand(len(output), self.draw_count, generator=generator).to(output.device))

    def drawn(self, output: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """`sample` with its draws given: the category of each one-hot span at its uniform's place in the
        cumulative probabilities (uniforms: (N, draw_count) in [0, 1)); arithmetic alone, so it exports to ONNX."""
        parts, draw = [], 0
        for span, out in zip(self.spans, split_spans(output, self.spans)):
            if span.one_hot:
                drawn = inverse_cdf(F.softmax(out.float(), dim=1), uniforms[:, draw])
                parts.append(F.one_hot(drawn, span.width).to(out))
                draw += 1
            else:
                parts.append(torch.tanh(out))
        return torch.cat(parts, dim=1)

    def activate(self, output: torch.Tensor, generator: torch.Generator | None = None, noise: bool = True,
                 temperature: float = 0.2) -> torch.Tensor:
        """A generator's output as rows (CTGAN's): tanh on continuous values, Gumbel-softmax at a low
        temperature on each one-hot span, so generated spans look as one-hot as the real ones; without
        `noise`, the softmax alone (what a GAN's inversion fits, deterministically)."""
        uniforms = torch.rand(output.shape, generator=generator).to(output.device) if noise else None
        return self.activated(output, uniforms, temperature)

    def activated(self, output: torch.Tensor, uniforms: torch.Tensor | None, temperature: float = 0.2) -> torch.Tensor:
        """`activate` with its Gumbel noise made from `uniforms` (the output's shape, in [0, 1); None: none)."""
        parts = []
        noises = split_spans(uniforms, self.spans) if uniforms is not None else (None,) * len(self.spans)
        for span, out, uniform in zip(self.spans, split_spans(output, self.spans), noises):
            if span.one_hot:
                if uniform is not None:
                    out = out - torch.log(-torch.log(uniform.clamp(1e-10, 1 - 1e-10)))
                parts.append(F.softmax(out / temperature, dim=1))
            else:
                parts.append(torch.tanh(out))
        return torch.cat(parts, dim=1)


class RowTokens(nn.Module):
    """Table rows <-> one token per span: a one-hot span's category (or mode, or missing flag), or the
    quantile bin of a continuous value. Bins hold equal shares of the training values (their edges are kept
    as a buffer), and a value is drawn uniformly within its bin on decode."""

    grammar = None  # each position's own tokens (the static mask) are all it needs
    end_token = None  # a row fills every position

    def __init__(self, spans: tuple[Span, ...], bins: int):
        super().__init__()
        self.spans = spans
        self.sizes = [span.width if span.one_hot else bins for span in spans]
        self.offsets = [sum(self.sizes[:i]) for i in range(len(self.sizes))]
        self.length, self.vocab_size, self.bins = len(spans), sum(self.sizes), bins
        continuous = sum(not span.one_hot for span in spans)
        self.register_buffer("bin_edges", torch.linspace(-1, 1, bins + 1).repeat(continuous, 1))

    def fit(self, x: torch.Tensor) -> None:
        """Bin edges at the quantiles of each continuous value of the training rows."""
        if not len(self.bin_edges):
            return
        values = torch.stack([part[:, 0] for span, part in zip(self.spans, split_spans(x, self.spans))
                              if not span.one_hot], dim=1)
        edges = np.quantile(values.double().cpu().numpy(), np.linspace(0, 1, self.bins + 1), axis=0).T
        self.bin_edges.copy_(torch.from_numpy(edges).to(self.bin_edges))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        tokens, continuous = [], 0
        for span, part, offset in zip(self.spans, split_spans(x, self.spans), self.offsets):
            if span.one_hot:
                index = part.argmax(1)
            else:
                index = self._bin(part[:, 0].contiguous(), self.bin_edges[continuous].contiguous())
                continuous += 1
            tokens.append(offset + index)
        return torch.stack(tokens, dim=1)

    def _bin(self, values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """The bin of each value; a value that several edges equal (a spike of repeated values) goes to the
        zero-width bin between two of them, so it decodes to exactly itself."""
        first, last = torch.searchsorted(edges, values), torch.searchsorted(edges, values, right=True)
        return torch.where(last - first >= 2, first, (last - 1).clamp(0, self.bins - 1))

    def decode(self, tokens: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        parts, continuous = [], 0
        for span, column, offset, size in zip(self.spans, tokens.T, self.offsets, self.sizes):
            index = (column - offset).clamp(0, size - 1)
            if span.one_hot:
                parts.append(F.one_hot(index, span.width).to(self.bin_edges))
            else:
                low, high = self.bin_edges[continuous, index], self.bin_edges[continuous, index + 1]
                where = torch.rand(len(index), generator=generator).to(low)
                parts.append((low + where * (high - low))[:, None])
                continuous += 1
        return torch.cat(parts, dim=1)

    def allowed(self, vocab_size: int) -> torch.Tensor:
        """(length, vocab_size): at each position, the tokens of that span only."""
        mask = torch.zeros(self.length, vocab_size, dtype=torch.bool)
        for position, (offset, size) in enumerate(zip(self.offsets, self.sizes)):
            mask[position, offset:offset + size] = True
        return mask

    def likelihood_scores(self, log_prob: torch.Tensor) -> dict[str, float]:
        """Negative log-likelihood per column (nats) of rows whose tokens have log-probability `log_prob`."""
        return {"nll_per_column": -log_prob.mean().item() / self.length}


@dataclass(frozen=True)
class TableLayout(Layout):
    """Encoded rows of one float vector each, made of `spans`."""

    kind: str = field(default="table", init=False)

    def reconstruction(self) -> TableReconstruction:
        return TableReconstruction(self.spans, self.shape)

    def tokens(self, levels: int, bins: int) -> RowTokens:
        return RowTokens(self.spans, bins)

    def category_conditions(self) -> CategoryConditions | None:
        conditions = CategoryConditions(self.spans)
        return conditions if conditions.width else None
