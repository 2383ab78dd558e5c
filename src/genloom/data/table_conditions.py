"""CTGAN's conditional vector and training-by-sampling (Xu et al. 2019), over a table's category spans.

Each training row is paired with one of its own categories, as a one-hot over all category slots: the
generator must make a row with that category, and the critic judges rows together with it. Rows and their
conditions are drawn so that each column is equally likely and, within it, each category in proportion to
the log of its frequency, so rare categories are trained on as often as the generator needs to learn them.
At sampling, conditions follow the real frequencies.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layout import Span


def inverse_cdf(probabilities: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """The category whose cumulative probability first passes each row's uniform (N,), from probabilities (N or 1,
    categories): a draw made by arithmetic (torch.multinomial's draws do not export), as numpy's
    searchsorted(side="right") places it."""
    cumulative = probabilities.cumsum(1)
    passed = (cumulative <= uniforms[:, None] * cumulative[:, -1:]).sum(1)
    return passed.clamp(max=probabilities.shape[1] - 1)


class CategoryConditions(nn.Module):
    """Conditions over the category spans of a table row; `width` 0 when there are none."""

    def __init__(self, spans: tuple[Span, ...]):
        super().__init__()
        positions, segments, start = [], [], 0
        for span in spans:
            if span.conditionable:
                segments.append((span.width, start))  # (slots, position in the row)
                positions.extend(range(start, start + span.width))
            start += span.width
        self.segments = segments
        self.register_buffer("positions", torch.tensor(positions, dtype=torch.long), persistent=False)
        self.register_buffer("counts", torch.zeros(len(positions)))  # rows per category in the training data

    @property
    def width(self) -> int:
        return len(self.positions)

    def _per_span_share(self, values: torch.Tensor) -> torch.Tensor:
        """values / (their sum within each span), slot by slot (span by span: an index_add does not export to ONNX,
        and `drawn` is part of an exported table generator)."""
        parts = values.split([width for width, _ in self.segments])
        return torch.cat([part / part.sum().clamp(min=1e-12) for part in parts])

    def _training_scores(self) -> torch.Tensor:
        """Probability of each (span, category) under training-by-sampling, per row that has it."""
        log_frequency = self._per_span_share(torch.log1p(self.counts))
        return log_frequency / len(self.segments) / self.counts.clamp(min=1)

    def fit(self, x: torch.Tensor) -> torch.Tensor:
        """Count the categories of the training rows; return each row's training-by-sampling weight."""
        one_hot = x[:, self.positions.to(x.device)].float()
        self.counts.copy_(one_hot.sum(0).to(self.counts))
        return one_hot.cpu() @ self._training_scores().cpu()

    def for_rows(self, x: torch.Tensor) -> torch.Tensor:
        """One of each row's own categories, picked as training-by-sampling would have picked it."""
        scores = x[:, self.positions].float() * self._training_scores()
        return F.one_hot(torch.multinomial(scores, 1).squeeze(1), self.width).to(x)

    def mean(self) -> torch.Tensor:
        """The mean of the conditions `draw` draws: each slot's chance (its span's 1/spans times its share)."""
        return self._per_span_share(self.counts).cpu() / len(self.segments)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n conditions as the data has them: a span at random, a category by its frequency."""
        return self.drawn(torch.rand(n, generator=generator))

    def drawn(self, uniforms: torch.Tensor) -> torch.Tensor:
        """`draw` with its draws given: a condition per uniform (N,) in [0, 1), by arithmetic (it exports)."""
        slot = inverse_cdf(self.mean().to(uniforms.device)[None, :], uniforms)
        return F.one_hot(slot, self.width).float()

    def asking(self, given: Sequence[int], n: int) -> torch.Tensor | None:
        """n conditions that all ask for the first category slot among the encoded-row positions `given`;
        None if none of them is a category slot."""
        slots = [slot for position in given for slot in (self.positions == position).nonzero().flatten().tolist()]
        return F.one_hot(torch.tensor([slots[0]] * n), self.width).float() if slots else None

    def cross_entropy(self, output: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """Per row, how far the generator's raw output on the conditioned span is from its category."""
        log_probs = torch.cat([F.log_softmax(output[:, start:start + width], dim=1)
                               for width, start in self.segments], dim=1)
        return -(log_probs * conditions).sum(1)
