"""A decoder-only transformer in the GPT-2 layout (names match, so GPT-2 checkpoints map onto it):
pre-LayerNorm blocks, causal attention through scaled_dot_product_attention, GELU MLP, tied embeddings,
optional rotary position embeddings, and a key/value cache for generation."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenloomError
from ..layout import KINDS, Layout
from . import register_backbone



class KVCache:
    """Keys and values of every block for the tokens seen so far, written into buffers allocated once for the
    whole context, so that each generated token costs no copy of what came before. Prompts of different lengths
    share one cache right-aligned: `padding` (B,) counts the filler slots before each row's first token, hidden
    from every query but their own and skipped by positions."""

    def __init__(self, blocks: int, batch: int, heads: int, capacity: int, head_dim: int, like: torch.Tensor,
                 padding: torch.Tensor | None = None):
        keys = like.new_empty(blocks, batch, heads, capacity, head_dim)
        values = like.new_empty(blocks, batch, heads, capacity, head_dim)
        self.keys = [keys[block] for block in range(blocks)]  # each block's buffer, a view taken once
        self.values = [values[block] for block in range(blocks)]
        self.length = 0  # tokens held; Transformer.forward advances it after every block has written
        self.padding = None if padding is None or not padding.any() else padding.to(like.device)
        self._mask: tuple[tuple[int, int], torch.Tensor] | None = None  # the padded rows' mask, made once a pass

    def extend(self, block: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write a block's new keys and values after those held; all of them, as views."""
        end = self.length + keys.shape[2]
        held_keys, held_values = self.keys[block][:, :, :end], self.values[block][:, :, :end]
        held_keys[:, :, self.length:] = keys
        held_values[:, :, self.length:] = values
        return held_keys, held_values

    def restart_rows(self, rows: torch.Tensor, fresh: KVCache, windows: torch.Tensor) -> None:
        """The rows marked in `rows` (B,) hold from now on what `fresh`, a cache of those rows alone, holds; the
        others keep theirs. `windows` (B,): the tokens each row holds after, right-aligned as before."""
        self.hold(windows)
        if fresh.length:
            for held, new in (*zip(self.keys, fresh.keys), *zip(self.values, fresh.values)):
                held[rows, :, self.length - fresh.length:self.length] = new[:, :, :fresh.length]

    def hold(self, windows: torch.Tensor) -> None:
        """Each row keeps its last `windows` (B,) tokens, right-aligned: the cache shrinks to the longest window,
        or grows to it (a row given a longer one, a prompt that joined, moves the others right)."""
        width = int(windows.max())
        kept = min(width, self.length)
        for held in (*self.keys, *self.values):
            held[:, :, width - kept:width] = held[:, :, self.length - kept:self.length].clone()
            # slots no row holds are hidden from attention, but hidden is not enough: memory never written may
            # hold NaN, and NaN times a zero weight is NaN
            held[:, :, :width - kept] = 0
        self.length = width
        padding = width - windows
        self.padding = padding if padding.any() else None
        self._mask = None

    def add_rows(self, count: int) -> None:
        """`count` rows after the others, holding nothing yet: restart_rows gives them their windows."""
        self._rebuild(lambda held: torch.cat([held, held.new_zeros(count, *held.shape[1:])]))
        if self.padding is not None:
            self.padding = torch.cat([self.padding, self.padding.new_full((count,), self.length)])

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Only the rows marked in `rows` (B,) stay, in their order."""
        self._rebuild(lambda held: held[rows])
        if self.padding is not None:
            self.padding = self.padding[rows] if self.padding[rows].any() else None

    def _rebuild(self, change: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Every block's buffers changed along the batch, in one new tensor for the keys and one for the values."""
        keys, values = (torch.stack([change(held) for held in buffers]) for buffers in (self.keys, self.values))
        # views taken one by one, as in __init__: unbind's views refuse the in-place writes a pass makes (autograd)
        self.keys = [keys[block] for block in range(len(keys))]
        self.values = [values[block] for block in range(len(values))]
        self._mask = None

    def positions(self, length: int, device: torch.device) -> torch.Tensor:
        """(B, length) positions of the new tokens of padded rows, counted from each row's first token."""
        slots = torch.arange(self.length, self.length + length, device=device)
        return (slots - self.padding[:, None]).clamp_min(0)

    def visible(self, length: int, device: torch.device) -> tuple[torch.Tensor | None, bool]:
        """What `length` new queries may attend to, as scaled_dot_product_attention takes it (a mask, is_causal):
        all the tokens held and the causal part of themselves, less each row's filler (a filler query sees
        itself, so that no row of the softmax is empty)."""
        if self.padding is None:
            if self.length and length > 1:
                held = torch.ones(length, self.length + length, dtype=torch.bool, device=device)
                return held.tril(self.length), False
            return None, self.length == 0 and length > 1
        if self._mask is None or self._mask[0] != (self.length, length):  # every block of a pass asks the same
            keys = torch.arange(self.length + length, device=device)
            queries = keys[self.length:, None]
            allowed = (keys <= queries) & ((keys >= self.padding[:, None, None]) | (keys == queries))
            self._mask = (self.length, length), allowed[:, None]  # (B, 1, length, keys)
        return self._mask[1], False


def rotary_tables(length: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of RoPE's rotation angles (Su et al. 2021), (length, head_dim), rotate-half layout; the sine's
    first half negated, so that a rotation is x * cos + roll(x, half) * sin."""
    inverse_frequency = 1.0 / base ** (torch.arange(0, head_dim, 2).float() / head_dim)
    angles = torch.outer(torch.arange(length).float(), inverse_frequency)
    sin = angles.sin()
    return torch.cat([angles, angles], dim=-1).cos(), torch.cat([-sin, sin], dim=-1)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout, skipped where it would do nothing (every call counts when tokens come one at a time)."""
    return F.dropout(x, p, training) if p and training else x


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """x rotated: each pair (x_i, x_{i+half}) turned by its angle (rotate_half(x) = roll(x, half) with the
    first half negated, which the sine table carries)."""
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * signed_sin


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, bias: bool, dropout: float):
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None,
                cache: KVCache | None, block: int) -> torch.Tensor:
        batch, length, channels = x.shape
        qkv = self.c_attn(x).view(batch, length, 3, self.n_head, -1).transpose(1, 3)  # (B, heads, 3, T, head_dim)
        if rotary is None:
            q, k, v = qkv.unbind(2)
        else:  # queries and keys rotated in one call: generation makes one token at a time
            (q, k), v = apply_rotary(qkv[:, :, :2], *rotary).unbind(2), qkv[:, :, 2]
        mask, causal = None, length > 1
        if cache is not None:
            mask, causal = cache.visible(length, x.device)
            k, v = cache.extend(block, k, v)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=causal)
        y = y.transpose(1, 2).reshape(batch, length, channels)
        return dropout(self.c_proj(y), self.dropout, self.training)


class MLP(nn.Module):
    def __init__(self, n_embd: int, bias: bool, dropout: float, gelu: str):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU(approximate=gelu)
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(self.c_proj(self.gelu(self.c_fc(x))), self.dropout, self.training)


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, bias: bool, dropout: float, gelu: str, eps: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=eps, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, bias, dropout)
        self.ln_2 = nn.LayerNorm(n_embd, eps=eps, bias=bias)
        self.mlp = MLP(n_embd, bias, dropout, gelu)

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None, cache: KVCache | None,
                block: int) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rotary, cache, block)
        return x + self.mlp(self.ln_2(x))


@register_backbone(KINDS, "causal")  # over text, or over the tokens of any kind
class Transformer(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, vocab), with GPT-2's initialisation."""

    def __init__(self, layout: Layout, n_layer: int = 4, n_head: int = 4, n_embd: int = 128, block_size: int = 128,
                 dropout: float = 0.0, bias: bool = True, rope: bool = False, gelu: str = "none",
                 layer_norm_eps: float = 1e-5):
        super().__init__()
        self.block_size, self.rope = block_size, rope
        self.wte = nn.Embedding(layout.vocab_size, n_embd)
        self.wpe = None if rope else nn.Embedding(block_size, n_embd)
        self.dropout = dropout
        self.h = nn.ModuleList(Block(n_embd, n_head, bias, dropout, gelu, layer_norm_eps) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, eps=layer_norm_eps, bias=bias)
        self.lm_head = nn.Linear(n_embd, layout.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied input and output embeddings
        if rope:
            cos, sin = rotary_tables(block_size, n_embd // n_head)
            self.register_buffer("rotary_cos", cos, persistent=False)
            self.register_buffer("rotary_sin", sin, persistent=False)
        self.apply(self._init_weights)
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):  # residual projections scaled by depth, as GPT-2
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    def hidden_matrices(self) -> list[nn.Parameter]:
        """The blocks' linear weights: what Muon trains (train/optimizers.py); not the embeddings or head."""
        return [m.weight for block in self.h for m in block.modules() if isinstance(m, nn.Linear)]

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def new_cache(self, batch: int, padding: torch.Tensor | None = None) -> KVCache:
        """An empty key/value cache for `batch` sequences of up to block_size tokens (`padding`: see KVCache)."""
        first = self.h[0].attn
        return KVCache(len(self.h), batch, first.n_head, self.block_size, self.wte.embedding_dim // first.n_head,
                       self.wte.weight, padding)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Logits for every position; with a cache, `idx` follows the tokens it holds, and it takes theirs."""
        return self.lm_head(self.features(idx, cache))

    def features(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """The final hidden state at every position (B, T, n_embd), from which the logits are read (and a value
        head reads its estimate, in PPO)."""
        start = cache.length if cache is not None else 0
        length = idx.shape[1]
        if start + length > self.block_size:
            raise GenloomError(f"{start + length} tokens exceed the model's context of {self.block_size}")
        x = self.wte(idx)
        rotary = None
        if cache is not None and cache.padding is not None:  # per row: (B, T) positions
            positions = cache.positions(length, idx.device)
            if self.rope:  # broadcast over heads and (queries, keys): (B, 1, 1, T, head_dim)
                rotary = (self.rotary_cos[positions][:, None, None], self.rotary_sin[positions][:, None, None])
            else:
                x = x + self.wpe(positions)
        elif self.rope:
            rotary = (self.rotary_cos[start:start + length], self.rotary_sin[start:start + length])
        else:
            x = x + self.wpe(torch.arange(start, start + length, device=idx.device))
        x = dropout(x, self.dropout, self.training)
        for i, block in enumerate(self.h):
            x = block(x, rotary, cache, i)
        if cache is not None:
            cache.length += length
        return self.ln_f(x)
