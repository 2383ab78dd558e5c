"""WaveNet (van den Oord et al. 2016) for the autoregressive family: stacks of dilated causal convolutions with
gated activations, residual and skip connections, over a signal's tokens (8-bit mu-law samples, or the values of
a spectrogram in order). The sequence's first token (its class, or the start token) is WaveNet's global
condition, added in every layer, so a class is heard over the whole recording and not only within reach of
the convolutions. Sampling keeps, per layer, the last `dilation` inputs in a ring (fast WaveNet, Paine et al.
2016): a new sample costs one step of each layer, not a pass over the receptive field."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenloomError
from ..layout import Layout
from . import register_backbone

DEFAULT_LAYERS = 10  # a cycle of dilations 1..512: 1,024 samples, an eighth of a second at 8 kHz


class RingCache:
    """What sampling keeps between tokens: each layer's last `dilation` inputs, the global condition, and how
    many tokens have been fed (`length`, as the transformer's cache counts them)."""

    def __init__(self, dilations: list[int], batch: int, channels: int, like: torch.Tensor):
        self.rings = [like.new_zeros(batch, channels, dilation) for dilation in dilations]
        self.condition: torch.Tensor | None = None
        self.length = 0


class GatedLayer(nn.Module):
    """x + W_res (tanh(f) * sigmoid(g)), where (f, g) = a dilated causal convolution of x plus the condition's
    projection; the gated output also goes to the skip sum."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.dilated = nn.Conv1d(channels, 2 * channels, kernel_size=2, dilation=dilation)
        self.condition = nn.Linear(channels, 2 * channels, bias=False)
        self.residual = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, channels, 1)

    def _gate(self, h: torch.Tensor) -> torch.Tensor:
        filtered, gate = h.chunk(2, dim=1)
        return torch.tanh(filtered) * torch.sigmoid(gate)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, T) -> the next layer's input and this layer's skip output, both (B, C, T)."""
        h = self.dilated(F.pad(x, (self.dilation, 0))) + self.condition(condition)[:, :, None]
        out = self._gate(h)
        return x + self.residual(out), self.skip(out)

    def step(self, x: torch.Tensor, condition: torch.Tensor, ring: torch.Tensor,
             position: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One position (B, C): the input `dilation` positions back comes from the ring, which then keeps x."""
        slot = position % self.dilation
        pair = torch.stack([ring[:, :, slot], x], dim=2)  # (B, C, 2): x_{t-d}, x_t, as the kernel's two taps
        ring[:, :, slot] = x
        h = F.conv1d(pair, self.dilated.weight, self.dilated.bias)[:, :, 0] + self.condition(condition)
        out = self._gate(h[:, :, None])
        return (x + self.residual(out)[:, :, 0]), self.skip(out)[:, :, 0]


@register_backbone(("signal",), "dilated causal")
class WaveNet(nn.Module):
    """Tokens (B, T) -> next-token logits (B, T, vocab), position t seeing tokens 0..t only."""

    export_refusal = ("its sampling feeds each layer's ring of past inputs from Python, which an ONNX graph cannot "
                      "hold: sample with genloom (genloom sample RUN)")

    def __init__(self, layout: Layout, layers: int | None = None, cycles: int = 2, channels: int = 64,
                 block_size: int = 128):
        super().__init__()
        if layers is None:  # as many as the sequence has room for, up to DEFAULT_LAYERS
            layers = max(1, min(DEFAULT_LAYERS, int(math.log2((block_size - 1) / cycles + 1))))
        self.dilations = [2 ** layer for _ in range(cycles) for layer in range(layers)]
        self.receptive_field = sum(self.dilations) + 1
        if block_size < self.receptive_field:
            raise GenloomError(f"a sequence of {block_size:,} tokens is shorter than WaveNet's receptive field of "
                               f"{self.receptive_field:,} ({cycles} cycle(s) of {layers} dilated layers): lower "
                               "--wavenet-layers or --wavenet-cycles, or lengthen the crop (--length)")
        self.block_size = block_size
        self.wte = nn.Embedding(layout.vocab_size, channels)  # one-hot input and WaveNet's first 1x1, in one
        self.layers = nn.ModuleList(GatedLayer(channels, dilation) for dilation in self.dilations)
        self.post = nn.Linear(channels, channels)
        self.lm_head = nn.Linear(channels, layout.vocab_size)

    def hidden_matrices(self) -> list[nn.Parameter]:
        """None: Muon is for a transformer's blocks."""
        return []

    def new_cache(self, batch: int) -> RingCache:
        """Empty rings for `batch` sequences sampled together; they never fill, so sampling never rebuilds them."""
        return RingCache(self.dilations, batch, self.wte.embedding_dim, self.wte.weight)

    def forward(self, idx: torch.Tensor, cache: RingCache | None = None) -> torch.Tensor:
        return self.lm_head(self.features(idx, cache))

    def features(self, idx: torch.Tensor, cache: RingCache | None = None) -> torch.Tensor:
        """(B, T, C): the hidden state that predicts each next token."""
        if cache is not None:
            return torch.stack([self._step(idx[:, position], cache) for position in range(idx.shape[1])], dim=1)
        condition = self.wte(idx[:, 0])
        x, skips = self.wte(idx).transpose(1, 2), 0
        for layer in self.layers:
            x, skip = layer(x, condition)
            skips = skips + skip
        return F.relu(self.post(F.relu(skips).transpose(1, 2)))

    def _step(self, token: torch.Tensor, cache: RingCache) -> torch.Tensor:
        """Feed one token (B,) to every layer through the cache; (B, C) hidden."""
        x = self.wte(token)
        if cache.condition is None:  # the sequence's first token
            cache.condition = x
        skips = 0
        for layer, ring in zip(self.layers, cache.rings):
            x, skip = layer.step(x, cache.condition, ring, cache.length)
            skips = skips + skip
        cache.length += 1
        return F.relu(self.post(F.relu(skips)))
