"""The rows of a generation: each row's tokens, right-aligned in shared columns, and the key/value cache over
each row's window, fed one new token per row a step. Rows may join (a prompt of any length, continued from the
next step on) and leave between steps, which is what continuous batching needs (token_batch.py).

Each row keeps the window it would keep alone: the cache holds at most block_size of its tokens, and when a
row's window fills the context it restarts from its last half context, so long generations cost O(block_size)
per token, not O(block_size^2); rows of different lengths fill their windows at different steps, and a restart
for one keeps the others' whole."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from ..errors import GenloomError
from ..nets.token_decoder import TokenDecoder
from ..nets.transformer import Transformer


def one_token_step(net: nn.Module) -> Callable[[torch.Tensor, Any, slice], torch.Tensor]:
    """(B,) tokens, a cache, a slice of the vocabulary -> those tokens' next logits (B, slice's length): the
    transformer's one-token decoder, or its forward while it draws dropout (or for a network with a cache of
    another kind)."""
    if isinstance(net, Transformer) and TokenDecoder.applies_to(net):
        return TokenDecoder(net)
    return lambda idx, cache, vocab: net(idx[:, None], cache)[:, -1, vocab]


class TokenRows:
    """Tokens (B, columns) of rows continued together. A row's `first` column is its first token (filler before
    it: copies of that token, so a repetition penalty sees nothing new); its window in the cache starts at its
    `start` column and ends before the last token, which the next step feeds. Without the cache (`use_cache`
    False) each step runs the network over the last block_size columns: rows then all have one length."""

    def __init__(self, net: nn.Module, prompt: torch.Tensor, padding: torch.Tensor | None = None,
                 use_cache: bool = True, room: int = 0):
        if padding is not None and not use_cache:
            raise GenloomError("prompts of different lengths are continued with the key/value cache only")
        self.net, self.context = net, net.block_size
        self.tokens = torch.cat([prompt, prompt.new_empty(len(prompt), room)], dim=1)  # filled as they come
        self.length = prompt.shape[1]
        self.firsts = padding.clone() if padding is not None else torch.zeros(len(prompt), dtype=torch.long,
                                                                              device=prompt.device)
        self.starts = self.firsts.clone()
        self.cache: Any = None
        self.next_token_logits = one_token_step(net) if use_cache else None

    @property
    def history(self) -> torch.Tensor:
        """(B, columns so far): every row's tokens, filler first."""
        return self.tokens[:, :self.length]

    def next_logits(self, vocab: slice = slice(None)) -> torch.Tensor:
        """(B, vocab): each row's next-token logits after its tokens so far; of the tokens in `vocab` only (the
        one-token decoder then computes no others)."""
        if self.next_token_logits is None:
            return self.net(self.history[:, max(0, self.length - self.context):])[:, -1, vocab]
        if self.cache is None:
            self.starts = self.starts.clamp_min(self.length - self.context)
            return self._cache_over_windows()[:, vocab]
        if self.cache.length >= self.context:
            return self._restart_full_rows()[:, vocab]
        return self.next_token_logits(self.tokens[:, self.length - 1], self.cache, vocab)

    def append(self, token: torch.Tensor) -> None:
        """Each row's next token (B,)."""
        if self.length == self.tokens.shape[1]:  # out of room: double it
            self.tokens = torch.cat([self.tokens, torch.empty_like(self.tokens)], dim=1)
        self.tokens[:, self.length] = token
        self.length += 1

    def join(self, prompt: torch.Tensor) -> None:
        """A new last row continuing `prompt` (1-D) from the next step on, as it would alone: its window (the
        prompt's last block_size tokens) goes into the cache beside the others'."""
        shift = len(prompt) - self.length
        if shift > 0:  # longer than the rows so far: filler columns before every row
            self.tokens = torch.cat([self.tokens[:, :1].expand(-1, shift), self.tokens], dim=1)
            self.length, self.firsts, self.starts = self.length + shift, self.firsts + shift, self.starts + shift
        first = self.length - len(prompt)
        row = torch.cat([prompt[:1].expand(first), prompt, prompt.new_empty(self.tokens.shape[1] - self.length)])
        self.tokens = torch.cat([self.tokens, row[None]])
        window = prompt[-self.context:]  # the whole prompt stays in the columns (a repetition penalty sees it)
        self.firsts = torch.cat([self.firsts, self.firsts.new_tensor([first])])
        self.starts = torch.cat([self.starts, self.starts.new_tensor([self.length - len(window)])])
        if self.cache is None:  # the first step builds it over every row
            return
        fresh = self.net.new_cache(1)
        if len(window) > 1:
            self.net(window[None, :-1], fresh)
        self.cache.add_rows(1)
        joined = torch.zeros(len(self.tokens), dtype=torch.bool, device=prompt.device)
        joined[-1] = True
        self.cache.restart_rows(joined, fresh, self.length - 1 - self.starts)

    def keep(self, rows: torch.Tensor) -> None:
        """Only the rows marked in `rows` (B,) go on: finished rows stop costing a pass, and the columns and cache
        slots that are filler for every row left go with them."""
        self.tokens, self.firsts, self.starts = self.tokens[rows], self.firsts[rows], self.starts[rows]
        if self.cache is not None:
            self.cache.keep_rows(rows)
            windows = self.length - 1 - self.starts
            if int(windows.max()) < self.cache.length:
                self.cache.hold(windows)
        cut = int(self.firsts.min())
        if cut:
            self.tokens = self.tokens[:, cut:]
            self.length, self.firsts, self.starts = self.length - cut, self.firsts - cut, self.starts - cut

    def _cache_over_windows(self) -> torch.Tensor:
        """A new cache over each row's window (its columns from its start on, right-aligned); the last logits."""
        width = int((self.length - self.starts).max())
        filler = width - (self.length - self.starts)
        rows = len(self.tokens)
        self.cache = self.net.new_cache(rows, filler) if filler.any() else self.net.new_cache(rows)
        return self.net(self.tokens[:, self.length - width:self.length], self.cache)[:, -1]

    def _restart_full_rows(self) -> torch.Tensor:
        """Rows whose window fills the context restart from their last half context, as each would alone, and the
        others keep theirs; the next token's logits."""
        length, half = self.length, self.context // 2 or 1
        full = length - 1 - self.starts >= self.context
        self.starts = torch.where(full, length - half, self.starts)
        if full.all():  # every row restarts: one pass over the new windows
            return self._cache_over_windows()
        fresh = self.net.new_cache(int(full.sum()))
        if half > 1:
            self.net(self.tokens[full, length - half:length - 1], fresh)
        self.cache.restart_rows(full, fresh, length - 1 - self.starts)
        return self.next_token_logits(self.tokens[:, length - 1], self.cache, slice(None))
