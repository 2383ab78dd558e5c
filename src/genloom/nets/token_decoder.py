"""One new token per row through a Transformer and its KVCache: the arithmetic of Transformer.forward for a
single token, written for that case alone.

Why by hand: on a CPU a token of a small model costs dispatch, not arithmetic. The modules' general path (any
length, nn.Module's per-call work, RoPE by roll) spends ~400 us a token on the default text model at one
thread; this path, with the weights gathered once, rotations as one matrix product and residuals fused into
addmm, ~240 us, the same logits to float rounding (tests/nets/test_token_decoder.py). torch.compile on this
path gained less (~1.3x) after ~17 s of compiling. The prompt, and a window rebuilt past the context, still
go through the modules, which write the same cache."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import GenloomError
from .lora import applied_weight
from .transformer import KVCache, Transformer


def transposed(linear: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(in, out) view of the weight a linear layer applies, for x @ w, and its bias."""
    weight, bias = applied_weight(linear)
    return weight.t(), bias


def project(x: torch.Tensor, weight: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
    matrix, bias = weight
    return x @ matrix if bias is None else torch.addmm(bias, x, matrix)


def add_projected(residual: torch.Tensor, x: torch.Tensor,
                  weight: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
    """residual + x W^T (+ b) in one addmm."""
    matrix, bias = weight
    return torch.addmm(residual if bias is None else residual + bias, x, matrix)


@dataclass(frozen=True)
class BlockWeights:
    ln_1: torch.nn.LayerNorm
    attention: tuple[torch.Tensor, torch.Tensor | None]
    attention_out: tuple[torch.Tensor, torch.Tensor | None]
    ln_2: torch.nn.LayerNorm
    mlp_in: tuple[torch.Tensor, torch.Tensor | None]
    mlp_out: tuple[torch.Tensor, torch.Tensor | None]
    gelu: str


def layer_norm(x: torch.Tensor, norm: torch.nn.LayerNorm) -> torch.Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def rotated(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """x (B, rows, head_dim) @ rotation, one (head_dim, head_dim) for all rows (one matrix product, not B) or one
    per example (B, head_dim, head_dim)."""
    if rotation.dim() == 3:
        return x @ rotation
    return (x.reshape(-1, x.shape[-1]) @ rotation).view(x.shape)


class TokenDecoder:
    """`decoder(idx, cache)`: next-token logits (B, vocab) for one token per row (B,) after those `cache` holds,
    as net(idx[:, None], cache)[:, -1]; it writes the cache as that call does. Build one per generation: it
    reads the weights as they are then. It draws no dropout: `applies_to` says whether the net would."""

    def __init__(self, net: Transformer):
        self.net = net
        self.blocks = [BlockWeights(block.ln_1, transposed(block.attn.c_attn), transposed(block.attn.c_proj),
                                    block.ln_2, transposed(block.mlp.c_fc), transposed(block.mlp.c_proj),
                                    block.mlp.gelu.approximate) for block in net.h]
        self.heads = net.h[0].attn.n_head
        self.rotations = net.rotary_matrices if net.rope else None
        self.head = transposed(net.lm_head)

    @staticmethod
    def applies_to(net: Transformer) -> bool:
        return not (net.training and net.dropout)

    def __call__(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        start = cache.length
        if start + 1 > self.net.block_size:
            raise GenloomError(f"{start + 1} tokens exceed the model's context of {self.net.block_size}")
        # the new token's position: one for every row, or each padded row's own
        position = start if cache.padding is None else cache.positions(1, idx.device)[:, 0]
        x = F.embedding(idx, self.net.wte.weight)
        if self.net.wpe is not None:
            x = x + self.net.wpe.weight[position]
        rotation = self.rotations[position] if self.rotations is not None else None
        mask, _ = cache.visible(1, idx.device)
        batch, heads = len(idx), self.heads
        for number, block in enumerate(self.blocks):
            qkv = project(layer_norm(x, block.ln_1), block.attention).view(batch, 3 * heads, -1)
            queries_keys = qkv[:, :2 * heads] if rotation is None else rotated(qkv[:, :2 * heads], rotation)
            keys, values = cache.keys[number], cache.values[number]
            keys[:, :, start] = queries_keys[:, heads:]
            values[:, :, start] = qkv[:, 2 * heads:]
            y = F.scaled_dot_product_attention(queries_keys[:, :heads, None], keys[:, :, :start + 1],
                                               values[:, :, :start + 1], attn_mask=mask)
            x = add_projected(x, y.reshape(batch, -1), block.attention_out)
            hidden = F.gelu(project(layer_norm(x, block.ln_2), block.mlp_in), approximate=block.gelu)
            x = add_projected(x, hidden, block.mlp_out)
        cache.length += 1
        return project(layer_norm(x, self.net.ln_f), self.head)
