"""The U-Net of DDPM (Ho et al. 2020), sized for small images: residual blocks that take a time (and class)
embedding, self-attention at the lowest resolution, skip connections between the two halves. The same network in
one dimension denoises waveforms, as the 1-D U-Nets of audio diffusion do (DiffWave's role, with a U-Net's
halvings in place of its dilations: a long receptive field at a CPU's cost)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenloomError
from ..layout import Layout
from . import register_backbone
from .conv import MAX_WIDTH, convolution, group_norm, halvings


# halvings by default, by spatial dimensions: an image's three take 32x32 to 4x4; a waveform's five take 5,120
# samples (0.64 s at 8 kHz) to 160, where attention is affordable
DEFAULT_LEVELS = {1: 5, 2: 3}


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of (N,) integer timesteps, as the Transformer's positions: (N, dim)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([angles.cos(), angles.sin()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the embedding added in between, and a 1x1 skip when widths differ."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float, dims: int = 2):
        super().__init__()
        self.in_layers = nn.Sequential(group_norm(c_in), nn.SiLU(), convolution(dims, c_in, c_out, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, c_out))
        self.out_layers = nn.Sequential(group_norm(c_out), nn.SiLU(), nn.Dropout(dropout),
                                        convolution(dims, c_out, c_out, 3, padding=1))
        nn.init.zeros_(self.out_layers[-1].weight)  # each block starts as the identity
        nn.init.zeros_(self.out_layers[-1].bias)
        self.skip = convolution(dims, c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x) + self.emb(emb).view(*emb.shape[:1], -1, *[1] * (x.dim() - 2))
        return self.skip(x) + self.out_layers(h)


class Attention(nn.Module):
    """Multi-head self-attention over the pixels (or samples) of a feature map, with a residual connection."""

    def __init__(self, channels: int, heads: int = 4, dims: int = 2):
        super().__init__()
        self.heads = heads if channels % heads == 0 else 1
        self.norm = group_norm(channels)
        self.qkv = convolution(dims, channels, 3 * channels, 1)
        self.proj = convolution(dims, channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.calls_its_layers = False  # set by differential privacy's training (train/privacy.py): see pointwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The 1x1 convolutions' weights applied as linear maps over (n, positions, channels): a matmul instead
        of a convolution, and q, k, v contiguous per head, which lets SDPA take its fused CPU kernel (2.5x
        faster at 7x7 on one thread than convolutions and the unfused path; the weights keep their shapes)."""
        n, c, *sides = x.shape
        h = self.norm(x).flatten(2).transpose(1, 2)
        qkv = pointwise(self.qkv, h, sides, self.calls_its_layers).unflatten(-1, (3, self.heads, c // self.heads))
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (n, heads, positions, c/heads)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        return x + pointwise(self.proj, out, sides, self.calls_its_layers).transpose(1, 2).reshape(n, c, *sides)


def pointwise(convolution: nn.Module, h: torch.Tensor, sides: list[int], call: bool) -> torch.Tensor:
    """A 1x1 convolution of (n, positions, channels) features laid out on `sides`: its weights as a linear map,
    or with `call` the layer itself on the feature map, for Opacus' per-example gradients under differential
    privacy, whose hooks see only the layer's own calls."""
    if call:
        n, _, channels = h.shape
        # contiguous: Opacus' per-example gradients of a convolution come out wrong from a strided input
        return convolution(h.transpose(1, 2).contiguous().view(n, channels, *sides)).flatten(2).transpose(1, 2)
    return F.linear(h, convolution.weight.flatten(1), convolution.bias)


@register_backbone(("image", "signal"), "denoiser")
class UNet(nn.Module):
    """(N, C, H, W) noisy images (or (N, C, L) signals), (N,) timesteps and optional (N,) class ids -> the same
    shape.

    `levels` halvings give levels + 1 resolutions, each with `res_blocks` blocks on the way down and one
    more on the way up (DDPM's layout); attention follows the blocks at the lowest resolution.
    `num_classes` > 0 adds a class embedding with one extra id, `num_classes` itself, meaning "no class"
    (the unconditional half of classifier-free guidance)."""

    def __init__(self, layout: Layout, width: int = 32, res_blocks: int = 1, levels: int | None = None,
                 attention: bool = True, dropout: float = 0.0, num_classes: int = 0):
        super().__init__()
        channels, *sides = layout.shape
        dims = len(sides)
        possible = halvings(*sides, smallest=2)
        levels = min(possible, DEFAULT_LEVELS[dims]) if levels is None else levels
        if levels > possible:
            shape, fix = ("x".join(map(str, sides)) + " images", "resize the images (--image-size) to sides "
                          "divisible by 4") if dims == 2 else (f"signals of {sides[0]}", "choose a --length "
                                                               "divisible by a power of two")
            raise GenloomError(f"the U-Net cannot halve {shape} {levels} time(s) (at most {possible}): choose "
                               f"depth {possible} or fewer, or {fix}")
        widths = [min(width * (1 if r == 0 else 2), MAX_WIDTH) for r in range(levels + 1)]
        emb_dim = 4 * width
        self.time_dim = 2 * max(1, width // 2)  # sines and cosines come in pairs
        self.time_mlp = nn.Sequential(nn.Linear(self.time_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_embedding = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
        self.stem = convolution(dims, channels, widths[0], 3, padding=1)

        def attend(r: int, c: int) -> nn.Module:
            return Attention(c, dims=dims) if attention and r == levels else nn.Identity()

        def block(c_in: int, c_out: int) -> ResBlock:
            return ResBlock(c_in, c_out, emb_dim, dropout, dims)

        self.down, skips, c_in = nn.ModuleList(), [widths[0]], widths[0]
        for r, c_out in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(res_blocks):
                blocks.append(nn.ModuleList([block(c_in, c_out), attend(r, c_out)]))
                skips.append(c_in := c_out)
            halve = convolution(dims, c_out, c_out, 3, 2, 1) if r < levels else nn.Identity()
            if r < levels:
                skips.append(c_out)
            self.down.append(nn.ModuleDict({"blocks": blocks, "resize": halve}))
        self.middle = nn.ModuleList([block(c_in, c_in), Attention(c_in, dims=dims) if attention else nn.Identity(),
                                     block(c_in, c_in)])
        self.up = nn.ModuleList()
        for r, c_out in reversed(list(enumerate(widths))):
            blocks = nn.ModuleList()
            for _ in range(res_blocks + 1):
                blocks.append(nn.ModuleList([block(c_in + skips.pop(), c_out), attend(r, c_out)]))
                c_in = c_out
            double = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                   convolution(dims, c_out, c_out, 3, padding=1))
            self.up.append(nn.ModuleDict({"blocks": blocks, "resize": double if r > 0 else nn.Identity()}))
        self.out = nn.Sequential(group_norm(c_in), nn.SiLU(), convolution(dims, c_in, channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.time_dim))
        if self.class_embedding is not None and labels is not None:
            emb = emb + self.class_embedding(labels)
        h = self.stem(x)
        skips = [h]
        for level in self.down:
            for block, attention in level["blocks"]:
                h = attention(block(h, emb))
                skips.append(h)
            if not isinstance(level["resize"], nn.Identity):
                h = level["resize"](h)
                skips.append(h)
        first, attention, second = self.middle
        h = second(attention(first(h, emb)), emb)
        for level in self.up:
            for block, attention in level["blocks"]:
                h = attention(block(torch.cat([h, skips.pop()], dim=1), emb))
            h = level["resize"](h)
        return self.out(h)
