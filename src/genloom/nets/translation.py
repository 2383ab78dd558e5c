"""The networks of image-to-image translation, as CycleGAN's (Zhu et al. 2017), sized for small images: a
residual generator that halves the image once, transforms it with residual blocks and doubles it back, and a
PatchGAN critic that scores overlapping patches rather than the whole image."""
from __future__ import annotations


import torch
from torch import nn

from ..layout import Layout
from . import register_backbone
from .autoencoder import ResidualBlock
from .conv import group_norm, halvings


@register_backbone(("image",), "translator")
class Translator(nn.Module):
    """(N, C, H, W) images -> (N, C, H, W) images of the other domain, in [-1, 1] (tanh). Sides that cannot halve
    (odd ones) are transformed at full size."""

    def __init__(self, layout: Layout, width: int = 32, blocks: int = 3):
        super().__init__()
        channels, height, width_px = layout.shape
        halve = halvings(height, width_px, smallest=2) > 0
        inner = 2 * width if halve else width
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), group_norm(width), nn.SiLU(),
            *([nn.Conv2d(width, inner, 3, stride=2, padding=1), group_norm(inner), nn.SiLU()] if halve else []),
            *[ResidualBlock(inner, inner) for _ in range(blocks)],
            *([nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(inner, width, 3, padding=1), group_norm(width),
               nn.SiLU()] if halve else []),
            nn.Conv2d(width, channels, 3, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_backbone(("image",), "patch critic")
class PatchCritic(nn.Module):
    """(N, C, H, W) images -> (N, h, w) scores, one per overlapping patch: strided convs while the sides stay at
    least 4 pixels (at most twice), then a 3x3 conv to one channel."""

    def __init__(self, layout: Layout, width: int = 32):
        super().__init__()
        channels, height, width_px = layout.shape
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(0.2)]
        c_in = width
        for _ in range(min(halvings(height, width_px, smallest=4), 2)):
            layers += [nn.Conv2d(c_in, 2 * c_in, 3, stride=2, padding=1), group_norm(2 * c_in), nn.LeakyReLU(0.2)]
            c_in *= 2
        layers.append(nn.Conv2d(c_in, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)
