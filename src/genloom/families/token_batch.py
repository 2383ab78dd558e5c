"""Continuous batching: prompts continued side by side, one forward pass a step for every row, with rows joining
and leaving between steps, as vLLM's and TGI's schedulers run a model. A completion that arrives while others
decode joins them at the next token, instead of waiting for them to end or decoding beside them in a pass of its
own; a row that has finished stops costing its share of the pass."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

from .configs import TokenSampling
from .sampling import draw_next
from .token_rows import TokenRows
from .watermark import TextWatermark


@dataclass
class _Member:
    """A row's tokens made and not yet read, and whether its reader has gone."""
    waiting: deque[torch.Tensor] = field(default_factory=deque)
    left: bool = False


class TokenBatch:
    """`batch.join(prompt, limit)` adds a row; reading its tokens advances the whole batch a step whenever the
    row has none waiting. Rows share one generator, so a row's draws depend on the rows beside it; each row's
    logits are those it would have alone. Everything runs on the caller's thread."""

    def __init__(self, net: nn.Module, sampling: TokenSampling, generator: torch.Generator,
                 watermark: TextWatermark | None = None):
        self.net, self.sampling, self.generator, self.watermark = net, sampling, generator, watermark
        self._rows: TokenRows | None = None
        self._members: list[_Member] = []  # in the order of the rows

    @property
    def rows(self) -> int:
        """Rows decoding now (a row whose reader has gone leaves at the next step)."""
        return sum(not member.left for member in self._members)

    def join(self, prompt: torch.Tensor, limit: int) -> Iterator[torch.Tensor]:
        """A row continuing `prompt` (1-D token ids): its tokens, each of shape (1,), at most `limit` of them.
        The row leaves when they run out or the iterator is closed."""
        self._drop_rows_left()
        prompt = prompt.to(self.net.wte.weight.device)
        with torch.inference_mode():
            if self._rows is None:
                self._rows = TokenRows(self.net, prompt[None])
            else:
                self._rows.join(prompt)
        member = _Member()
        self._members.append(member)
        return self._read(member, limit)

    def _read(self, member: _Member, limit: int) -> Iterator[torch.Tensor]:
        try:
            for _ in range(limit):
                if not member.waiting:
                    self._step()
                yield member.waiting.popleft()
        finally:
            member.left = True

    def _step(self) -> None:
        """One token for every row."""
        self._drop_rows_left()
        rows = self._rows
        with torch.inference_mode():
            token = draw_next(rows.next_logits(), rows.history, self.sampling, self.generator, self.watermark)
            rows.append(token)
        for member, made in zip(self._members, token):
            member.waiting.append(made.view(1))

    def _drop_rows_left(self) -> None:
        if not any(member.left for member in self._members):
            return
        staying = [not member.left for member in self._members]
        self._members = [member for member in self._members if not member.left]
        if self._members:
            with torch.inference_mode():
                self._rows.keep(torch.tensor(staying, device=self._rows.tokens.device))
        else:
            self._rows = None
