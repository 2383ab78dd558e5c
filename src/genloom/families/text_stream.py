"""Generated tokens as text while they come: stop strings, the end token, and byte-level tokens that end
mid-character, so a streamed piece is never taken back."""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import torch

from ..errors import GenloomError
from ..options import whole_number

if TYPE_CHECKING:
    from .token_batch import TokenBatch


def stop_strings(stop: Any) -> list[str]:
    """A stop string or a sequence of them (empty ones dropped), or a one-line error."""
    stops = [stop] if isinstance(stop, str) else list(stop) if isinstance(stop, Iterable) else None
    if stops is None or not all(isinstance(s, str) for s in stops):
        raise GenloomError(f"stop must be a string or a list of strings; got {stop!r}")
    return [s for s in stops if s]


class TextStream(Iterator[str]):
    """Decoded text of one generation (tokens of shape (1,)) as it arrives, ending at a stop string or the end
    token. Text that could still become a stop string, or a byte-level token that ends mid-character, waits
    until it is known. Inference mode (no autograd bookkeeping) is on while a token is made, not while the caller
    holds a piece. Once exhausted it tells how many tokens it took and why it ended, as a completion API reports."""

    def __init__(self, tokens: Iterator[torch.Tensor], decode: Callable[[list[int]], str], end_token: int | None,
                 stop: Sequence[str]):
        self.tokens_generated = 0
        self.finish_reason: str | None = None  # "stop": a stop string or the end token; "length": out of tokens
        self._tokens = tokens
        self._pieces = self._pieces_of(tokens, decode, end_token, stop)

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stop before the end, read or not: the tokens stop too (a row of a batch leaves it)."""
        self._pieces.close()
        self._close_tokens()

    def _close_tokens(self) -> None:
        close = getattr(self._tokens, "close", None)
        if close is not None:
            close()

    def _pieces_of(self, tokens: Iterator[torch.Tensor], decode: Callable[[list[int]], str],
                   end_token: int | None, stop: Sequence[str]) -> Iterator[str]:
        try:
            yield from self._text_of(tokens, decode, end_token, stop)
        finally:  # ended or stopped: the tokens are closed with it (a batch row leaves at once)
            self._close_tokens()

    def _text_of(self, tokens: Iterator[torch.Tensor], decode: Callable[[list[int]], str],
                 end_token: int | None, stop: Sequence[str]) -> Iterator[str]:
        # only the tokens since the text last ended on a whole character are decoded again (decoding every token
        # so far made a long generation quadratic): byte-level text split there decodes to the same characters
        unsettled: list[int] = []
        settled, text, emitted = "", "", 0
        self.finish_reason = "length"
        while True:
            with torch.inference_mode():
                token = next(tokens, None)
            if token is None:
                break
            self.tokens_generated += 1
            token_id = int(token[0])
            if token_id == end_token:
                self.finish_reason = "stop"
                break
            unsettled.append(token_id)
            tail = decode(unsettled)
            text = settled + tail
            if not tail.endswith("\ufffd"):
                settled, unsettled = text, []
            hits = [hit for hit in (text.find(s, emitted) for s in stop) if hit >= 0]
            if hits:
                self.finish_reason = "stop"
                if min(hits) > emitted:
                    yield text[emitted:min(hits)]
                return
            ready = len(text) - max(stop_prefix_length(text, stop), len(text) - len(text.rstrip("\ufffd")))
            if ready > emitted:
                yield text[emitted:ready]
                emitted = ready
        if len(text) > emitted:
            yield text[emitted:]


def stop_prefix_length(text: str, stop: Sequence[str]) -> int:
    """Length of the longest end of `text` that begins one of the stop strings."""
    return max((k for s in stop for k in range(1, min(len(s), len(text) + 1)) if text.endswith(s[:k])), default=0)


class SharedTokens:
    """One batched generation, read row by row: a row that asks for a token the batch has not made yet advances
    the whole batch (one forward pass for every row), and the other rows' tokens wait in their queues. Rows
    read in turn keep the queues a token long."""

    def __init__(self, tokens: Iterator[torch.Tensor], rows: int):
        self._tokens = tokens
        self._waiting: list[deque[torch.Tensor]] = [deque() for _ in range(rows)]

    def row(self, index: int, limit: int) -> Iterator[torch.Tensor]:
        """Row `index`'s tokens (each of shape (1,)), at most `limit` of them."""
        for _ in range(limit):
            if not self._waiting[index]:
                step = next(self._tokens, None)
                if step is None:
                    return
                for waiting, token in zip(self._waiting, step):
                    waiting.append(token.view(1))
            yield self._waiting[index].popleft()


class TextBatch:
    """A TokenBatch's rows read as text: `join(prompt, max_tokens, stop)` adds a row and gives its TextStream;
    reading any stream advances every row."""

    def __init__(self, tokens: TokenBatch, encode: Callable[[str], torch.Tensor],
                 decode: Callable[[list[int]], str], end_token: int | None):
        self.tokens, self.encode, self.decode, self.end_token = tokens, encode, decode, end_token

    @property
    def rows(self) -> int:
        """Rows decoding now."""
        return self.tokens.rows

    def join(self, prompt: str, max_tokens: int, stop: Any = ()) -> TextStream:
        """`prompt`'s continuation, made from the batch's next step on."""
        limit, stops = whole_number("max_tokens", max_tokens), stop_strings(stop)
        return TextStream(self.tokens.join(self.encode(prompt), limit), self.decode, self.end_token, stops)
