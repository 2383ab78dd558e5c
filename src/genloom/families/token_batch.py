"""Continuous batching: prompts continued side by side, one forward pass a step for every row, with rows joining
and leaving between steps, as vLLM's and TGI's schedulers run a model. A completion that arrives while others
decode joins them at the next token, instead of waiting for them to end or decoding beside them in a pass of its
own; a row that has finished stops costing its share of the pass."""
from __future__ import annotations

from collections import deque
from typing import Iterator

import torch
from torch import nn

from .configs import TokenSampling
from .sampling import draw_next
from .token_rows import TokenRows
from .watermark import TextWatermark


class BatchRow(Iterator[torch.Tensor]):
    """One row's tokens, each of shape (1,): those made and not yet read wait here. Reading a row with none
    waiting advances the whole batch a step. The row leaves the batch at the next step once `limit` tokens are
    read or `close()` is called (read or not)."""

    def __init__(self, batch: TokenBatch, limit: int):
        self.batch, self.limit, self.read = batch, limit, 0
        self.waiting: deque[torch.Tensor] = deque()
        self.left = limit < 1

    def __next__(self) -> torch.Tensor:
        if self.left:
            raise StopIteration
        if not self.waiting:
            self.batch.step()
        self.read += 1
        self.left = self.read == self.limit  # its last token: no step makes another for it
        return self.waiting.popleft()

    def close(self) -> None:
        """Leave the batch, whether the row was read or not."""
        self.left = True


class TokenBatch:
    """`batch.join(prompt, limit)` adds a row and gives its BatchRow. Rows share one generator, so a row's draws
    depend on the rows beside it; each row's logits are those it would have alone. Everything runs on the
    caller's thread. A step that fails leaves the batch unusable: every later step or join raises its error."""

    def __init__(self, net: nn.Module, sampling: TokenSampling, generator: torch.Generator,
                 watermark: TextWatermark | None = None):
        self.net, self.sampling, self.generator, self.watermark = net, sampling, generator, watermark
        self._rows: TokenRows | None = None
        self._members: list[BatchRow] = []  # in the order of the rows
        self._failure: Exception | None = None

    @property
    def rows(self) -> int:
        """Rows decoding now."""
        return sum(not member.left for member in self._members)

    def join(self, prompt: torch.Tensor, limit: int) -> BatchRow:
        """A row continuing `prompt` (1-D token ids), at most `limit` tokens, from the next step on."""
        if self._failure is not None:
            raise self._failure
        self._drop_rows_left()
        prompt = prompt.to(self.net.wte.weight.device)
        with torch.inference_mode():
            if self._rows is None:
                self._rows = TokenRows(self.net, prompt[None])
            else:
                self._rows.join(prompt)
        self._members.append(BatchRow(self, limit))
        return self._members[-1]

    def step(self) -> None:
        """One token for every row, waiting in each row until it is read."""
        if self._failure is not None:
            raise self._failure
        self._drop_rows_left()
        rows = self._rows
        try:
            with torch.inference_mode():
                token = draw_next(rows.next_logits(), rows.history, self.sampling, self.generator, self.watermark)
                rows.append(token)
        except Exception as error:  # the cache may hold a token the columns do not: no row can go on
            self._failure = error
            raise
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
