"""One new token per row through a Transformer and its KVCache: the arithmetic of Transformer.forward for a
single token, written for that case alone.

Why by hand: on a CPU a token of a small model costs dispatch, not arithmetic. The modules' general path (any
length, nn.Module's per-call work, RoPE by roll) spends ~410 us a token on the default text model at one
thread; this path, with the weights gathered once, RoPE's roll taken from the projection and residuals fused
into addmm, ~240 us (medians of interleaved timings; ~415 against ~245 on two threads), the same logits to
float rounding (tests/nets/test_token_decoder.py). torch.compile on this path gained less (~1.3x) after ~17 s
of compiling. The prompt, and a window rebuilt past the context, still go through the modules, which write the
same cache."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import GenloomError
from .lora import applied_weight
from .transformer import KVCache, Transformer

Projection = tuple[torch.Tensor, torch.Tensor | None]  # a linear layer's (in, out) weight and its bias


def transposed(linear: torch.nn.Module) -> Projection:
    """(in, out) view of the weight a linear layer applies, for x @ w, and its bias."""
    weight, bias = applied_weight(linear)
    return weight.t(), bias


def project(x: torch.Tensor, weight: Projection) -> torch.Tensor:
    matrix, bias = weight
    return x @ matrix if bias is None else torch.addmm(bias, x, matrix)


def add_projected(residual: torch.Tensor, x: torch.Tensor, weight: Projection) -> torch.Tensor:
    """residual + x W^T (+ b) in one addmm."""
    matrix, bias = weight
    return torch.addmm(residual if bias is None else residual + bias, x, matrix)


SQRT_8_OVER_PI = math.sqrt(8 / math.pi)


def gelu(x: torch.Tensor, approximate: str) -> torch.Tensor:
    """GELU; the tanh form as x * sigmoid(2u), since 0.5 (1 + tanh(u)) is sigmoid(2u):
    one pass of sigmoid where torch's tanh GELU kernel took twice the time on this CPU (210 against 426 us for
    500 x 512 on one thread), equal to float rounding."""
    if approximate != "tanh":
        return F.gelu(x)
    return (x * x).mul_(0.044715 * SQRT_8_OVER_PI).add_(SQRT_8_OVER_PI).mul_(x).sigmoid_().mul_(x)


@dataclass(frozen=True)
class Norm:
    """A LayerNorm's tensors, read once (a module's attributes cost a lookup each, every token)."""
    shape: tuple[int, ...]
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    eps: float

    @classmethod
    def of(cls, layer: torch.nn.LayerNorm) -> Norm:
        return cls(tuple(layer.normalized_shape), layer.weight, layer.bias, layer.eps)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.shape, self.weight, self.bias, self.eps)


@dataclass(frozen=True)
class BlockWeights:
    ln_1: Norm
    attention: Projection  # q, k, v (and with RoPE q, k rolled: see with_rolled)
    attention_out: Projection
    ln_2: Norm
    mlp_in: Projection
    mlp_out: Projection
    gelu: str


def with_rolled(attention: torch.nn.Module, heads: int) -> Projection:
    """The q, k, v projection (in, 5 * width) followed by q's and k's with each head's halves swapped: RoPE's
    roll(x, half) (transformer.apply_rotary) then comes out of the same matrix product, and the rotation takes
    two elementwise products."""
    weight, bias = applied_weight(attention)
    width = weight.shape[1]

    def rolled(rows: torch.Tensor) -> torch.Tensor:
        by_head = rows[:2 * width].unflatten(0, (2 * heads, -1))
        return torch.cat([rows, by_head.roll(by_head.shape[1] // 2, dims=1).flatten(0, 1)])
    return rolled(weight).t(), None if bias is None else rolled(bias)


class TokenDecoder:
    """`decoder(idx, cache)`: next-token logits (B, vocab) for one token per row (B,) after those `cache` holds,
    as net(idx[:, None], cache)[:, -1]; it writes the cache as that call does. With `vocab`, a slice, only those
    tokens' logits. Build one per generation: it reads the weights as they are then. It draws no dropout:
    `applies_to` says whether the net would."""

    def __init__(self, net: Transformer):
        self.net, self.heads = net, net.h[0].attn.n_head
        self.width = net.wte.embedding_dim
        attention = (lambda block: with_rolled(block.attn.c_attn, self.heads)) if net.rope else \
            (lambda block: transposed(block.attn.c_attn))
        self.blocks = [BlockWeights(Norm.of(block.ln_1), attention(block), transposed(block.attn.c_proj),
                                    Norm.of(block.ln_2), transposed(block.mlp.c_fc), transposed(block.mlp.c_proj),
                                    block.mlp.gelu.approximate) for block in net.h]
        # RoPE's cos and signed sin at each position, across the heads of q and k: (block_size, 2 * width)
        self.rotary = (net.rotary_cos.repeat(1, 2 * self.heads), net.rotary_sin.repeat(1, 2 * self.heads)) \
            if net.rope else None
        self.embedding, self.positions = net.wte.weight, None if net.wpe is None else net.wpe.weight
        self.ln_f, self.head = Norm.of(net.ln_f), transposed(net.lm_head)

    @staticmethod
    def applies_to(net: Transformer) -> bool:
        return not (net.training and net.dropout)

    def __call__(self, idx: torch.Tensor, cache: KVCache, vocab: slice = slice(None)) -> torch.Tensor:
        start = cache.length
        if start + 1 > self.net.block_size:
            raise GenloomError(f"{start + 1} tokens exceed the model's context of {self.net.block_size}")
        # the new token's position: one for every row, or each padded row's own
        position = start if cache.padding is None else cache.positions(1, idx.device)[:, 0]
        x = F.embedding(idx, self.embedding)
        if self.positions is not None:
            x = x + self.positions[position]
        cos, sin = (self.rotary[0][position], self.rotary[1][position]) if self.rotary is not None else (None, None)
        mask, _ = cache.visible(1, idx.device)
        batch, heads, width = len(idx), self.heads, self.width
        for number, block in enumerate(self.blocks):
            qkv = project(block.ln_1(x), block.attention)
            queries_keys = qkv[:, :2 * width] if cos is None else \
                torch.addcmul(qkv[:, :2 * width] * cos, qkv[:, 3 * width:], sin)
            keys, values = cache.keys[number], cache.values[number]
            keys[:, :, start] = queries_keys[:, width:].view(batch, heads, -1)
            values[:, :, start] = qkv[:, 2 * width:3 * width].view(batch, heads, -1)
            y = F.scaled_dot_product_attention(queries_keys[:, :width].view(batch, heads, 1, -1),
                                               keys[:, :, :start + 1], values[:, :, :start + 1], attn_mask=mask)
            x = add_projected(x, y.reshape(batch, -1), block.attention_out)
            hidden = gelu(project(block.ln_2(x), block.mlp_in), block.gelu)
            x = add_projected(x, hidden, block.mlp_out)
        cache.length += 1
        matrix, bias = self.head
        return project(self.ln_f(x), (matrix[:, vocab], None if bias is None else bias[vocab]))
