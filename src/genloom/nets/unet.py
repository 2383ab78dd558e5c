"""The U-Net of DDPM (Ho et al. 2020), sized for small images: residual blocks that take a time (and class)
embedding, self-attention at the lowest resolution, skip connections between the two halves."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenloomError
from ..layout import Layout
from . import register_backbone
from .conv import MAX_WIDTH, group_norm, halvings


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of (N,) integer timesteps, as the Transformer's positions: (N, dim)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * frequencies[None]
    return torch.cat([angles.cos(), angles.sin()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the embedding added in between, and a 1x1 skip when widths differ."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float):
        super().__init__()
        self.in_layers = nn.Sequential(group_norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, c_out))
        self.out_layers = nn.Sequential(group_norm(c_out), nn.SiLU(), nn.Dropout(dropout),
                                        nn.Conv2d(c_out, c_out, 3, padding=1))
        nn.init.zeros_(self.out_layers[-1].weight)  # each block starts as the identity
        nn.init.zeros_(self.out_layers[-1].bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x) + self.emb(emb)[:, :, None, None]
        return self.skip(x) + self.out_layers(h)


class Attention(nn.Module):
    """Multi-head self-attention over the pixels of a feature map, with a residual connection."""

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.heads = heads if channels % heads == 0 else 1
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).transpose(3, 4).unbind(1)
        out = F.scaled_dot_product_attention(q, k, v)  # (n, heads, h*w, c/heads)
        return x + self.proj(out.transpose(2, 3).reshape(n, c, h, w))


@register_backbone(("image",), "denoiser")
class UNet(nn.Module):
    """(N, C, H, W) noisy images, (N,) timesteps and optional (N,) class ids -> (N, C, H, W).

    `levels` halvings give levels + 1 resolutions, each with `res_blocks` blocks on the way down and one
    more on the way up (DDPM's layout); attention follows the blocks at the lowest resolution.
    `num_classes` > 0 adds a class embedding with one extra id, `num_classes` itself, meaning "no class"
    (the unconditional half of classifier-free guidance)."""

    def __init__(self, layout: Layout, width: int = 32, res_blocks: int = 1, levels: int | None = None,
                 attention: bool = True, dropout: float = 0.0, num_classes: int = 0):
        super().__init__()
        channels, height, width_px = layout.shape
        possible = halvings(height, width_px, smallest=2)
        levels = min(possible, 3) if levels is None else levels
        if levels > possible:
            raise GenloomError(f"the U-Net cannot halve {height}x{width_px} images {levels} time(s) (at most "
                               f"{possible}): choose depth {possible} or fewer, or resize the images (--image-size) "
                               "to sides divisible by 4")
        widths = [min(width * (1 if r == 0 else 2), MAX_WIDTH) for r in range(levels + 1)]
        emb_dim = 4 * width
        self.time_dim = 2 * max(1, width // 2)  # sines and cosines come in pairs
        self.time_mlp = nn.Sequential(nn.Linear(self.time_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_embedding = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
        self.stem = nn.Conv2d(channels, widths[0], 3, padding=1)

        def attend(r: int, c: int) -> nn.Module:
            return Attention(c) if attention and r == levels else nn.Identity()

        self.down, skips, c_in = nn.ModuleList(), [widths[0]], widths[0]
        for r, c_out in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(res_blocks):
                blocks.append(nn.ModuleList([ResBlock(c_in, c_out, emb_dim, dropout), attend(r, c_out)]))
                skips.append(c_in := c_out)
            halve = nn.Conv2d(c_out, c_out, 3, 2, 1) if r < levels else nn.Identity()
            if r < levels:
                skips.append(c_out)
            self.down.append(nn.ModuleDict({"blocks": blocks, "resize": halve}))
        self.middle = nn.ModuleList([ResBlock(c_in, c_in, emb_dim, dropout),
                                     Attention(c_in) if attention else nn.Identity(),
                                     ResBlock(c_in, c_in, emb_dim, dropout)])
        self.up = nn.ModuleList()
        for r, c_out in reversed(list(enumerate(widths))):
            blocks = nn.ModuleList()
            for _ in range(res_blocks + 1):
                blocks.append(nn.ModuleList([ResBlock(c_in + skips.pop(), c_out, emb_dim, dropout), attend(r, c_out)]))
                c_in = c_out
            double = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_out, c_out, 3, padding=1))
            self.up.append(nn.ModuleDict({"blocks": blocks, "resize": double if r > 0 else nn.Identity()}))
        self.out = nn.Sequential(group_norm(c_in), nn.SiLU(), nn.Conv2d(c_in, channels, 3, padding=1))
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
