"""Convolutional encoder and decoder for images of any size that halves cleanly a few times, and for signals:
the same networks in one dimension (a waveform) or two (an image, a spectrogram), as the layout's shape says."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..layout import Layout
from . import register_backbone

MAX_WIDTH = 256  # channels stop doubling here, so large images do not explode the parameter count
CONVOLUTIONS: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d}  # by the number of spatial dimensions


def halvings(*sides: int, smallest: int = 4) -> int:
    """How many stride-2 steps keep every side whole and at least `smallest` long."""
    levels = 0
    while all(side % 2 == 0 for side in sides) and min(sides) // 2 >= smallest:
        sides, levels = tuple(side // 2 for side in sides), levels + 1
    return levels


def convolution(dims: int, *args, **kwargs) -> nn.Module:
    """A 1-D or 2-D convolution (`dims` spatial dimensions) with nn.Conv2d's arguments."""
    return CONVOLUTIONS[dims](*args, **kwargs)


def group_norm(channels: int) -> nn.GroupNorm:
    """The conv nets' normalisation: 8 groups where the width allows."""
    return nn.GroupNorm(math.gcd(8, channels), channels)


def _conv_block(dims: int, c_in: int, c_out: int, stride: int = 1, norm: bool = True) -> nn.Sequential:
    normalise = group_norm(c_out) if norm else nn.Identity()
    return nn.Sequential(convolution(dims, c_in, c_out, 3, stride, 1), normalise, nn.SiLU())


class _ConvShape:
    """The widths and the smallest feature map shared by the encoder and the decoder. A waveform's side is long
    and narrow: it halves down to 8 samples at most six times (a 5,120-sample one to 80)."""

    def __init__(self, layout: Layout, width: int):
        sides = layout.shape[1:]
        self.dims = len(sides)
        self.levels = halvings(*sides) if self.dims == 2 else min(halvings(*sides, smallest=8), 6)
        self.widths = [min(width * 2 ** i, MAX_WIDTH) for i in range(self.levels + 1)]
        self.bottom = (self.widths[-1], *(side >> self.levels for side in sides))
        self.flat = math.prod(self.bottom)


@register_backbone(("image", "signal"), "encoder")
class ConvEncoder(nn.Module):
    """(N, C, H, W) images or (N, C, L) signals and an optional condition vector -> (N, out_features). norm=False
    drops the group norms (a spectrally normalised discriminator wants none)."""

    def __init__(self, layout: Layout, out_features: int, width: int = 32, cond_dim: int = 0, norm: bool = True):
        super().__init__()
        shape = _ConvShape(layout, width)
        layers = [_conv_block(shape.dims, layout.shape[0], shape.widths[0], norm=norm)]
        for c_in, c_out in zip(shape.widths, shape.widths[1:]):
            layers += [_conv_block(shape.dims, c_in, c_out, stride=2, norm=norm),
                       _conv_block(shape.dims, c_out, c_out, norm=norm)]
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(shape.flat + cond_dim, 4 * out_features), nn.SiLU(),
                                  nn.Linear(4 * out_features, out_features))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(x)
        return self.head(h if cond is None else torch.cat([h, cond], dim=1))


@register_backbone(("image", "signal"), "decoder")
class ConvDecoder(nn.Module):
    """(N, in_features) vectors and an optional condition vector -> (N, C, H, W) images or (N, C, L) signals
    (unbounded)."""

    def __init__(self, layout: Layout, in_features: int, width: int = 32, cond_dim: int = 0):
        super().__init__()
        shape = _ConvShape(layout, width)
        self.bottom = shape.bottom
        self.head = nn.Sequential(nn.Linear(in_features + cond_dim, 4 * in_features), nn.SiLU(),
                                  nn.Linear(4 * in_features, shape.flat), nn.SiLU())
        layers = []
        for c_in, c_out in zip(shape.widths[::-1], shape.widths[::-1][1:]):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), _conv_block(shape.dims, c_in, c_out),
                       _conv_block(shape.dims, c_out, c_out)]
        self.features = nn.Sequential(_conv_block(shape.dims, shape.widths[-1], shape.widths[-1]), *layers,
                                      convolution(shape.dims, shape.widths[0], layout.shape[0], 3, 1, 1))

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.head(z if cond is None else torch.cat([z, cond], dim=1))
        return self.features(h.view(-1, *self.bottom))
