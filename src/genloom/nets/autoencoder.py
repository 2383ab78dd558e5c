"""The convolutional autoencoder of latent families, as Stable Diffusion's and VQGAN's (smaller): residual blocks
and stride-2 halvings from an image to a grid of latent vectors `compression` times smaller per side, and back.
Unlike conv.py's encoder and decoder, which end in one vector per image, the latent keeps its grid, so a U-Net or
a transformer over grid positions can model it."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import GenloomError
from ..layout import Layout
from . import register_backbone
from .conv import MAX_WIDTH, group_norm


class ResidualBlock(nn.Module):
    """GroupNorm-SiLU-conv twice with a skip."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.layers = nn.Sequential(group_norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1),
                                    group_norm(c_out), nn.SiLU(), nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.layers(x)


def latent_grid(layout: Layout, compression: int) -> tuple[int, int]:
    """The latent grid's (height, width) for images of the layout, or a one-line error when a side does not
    divide by the compression."""
    _, height, width = layout.shape
    if height % compression or width % compression:
        raise GenloomError(f"the autoencoder compresses {compression}x per side, which does not divide "
                           f"{height}x{width} images: resize them (--image-size) to sides divisible by "
                           f"{compression}, or choose a compression that divides both sides")
    return height // compression, width // compression


def _widths(width: int, compression: int) -> list[int]:
    return [min(width * 2 ** level, MAX_WIDTH) for level in range(int(math.log2(compression)) + 1)]


@register_backbone(("image",), "latent encoder")
class LatentEncoder(nn.Module):
    """(N, C, H, W) images -> (N, out_channels, H / compression, W / compression). Each halving is a stride-2
    conv followed by a residual block at the new size: no block runs at full resolution, where one would cost
    as much as the rest of the network (MNIST at 28x28 on a CPU)."""

    def __init__(self, layout: Layout, out_channels: int, width: int = 32, compression: int = 4):
        super().__init__()
        latent_grid(layout, compression)
        widths = _widths(width, compression)
        layers: list[nn.Module] = [nn.Conv2d(layout.shape[0], widths[0], 3, padding=1)]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), ResidualBlock(c_out, c_out)]
        layers += [group_norm(widths[-1]), nn.SiLU(), nn.Conv2d(widths[-1], out_channels, 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@register_backbone(("image",), "latent decoder")
class LatentDecoder(nn.Module):
    """(N, in_channels, h, w) latent grids -> (N, C, h * compression, w * compression) images (unbounded): the
    encoder mirrored, a residual block at each size but the full one, and a nearest upsampling and conv between."""

    def __init__(self, layout: Layout, in_channels: int, width: int = 32, compression: int = 4):
        super().__init__()
        widths = _widths(width, compression)[::-1]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, padding=1)]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [ResidualBlock(c_in, c_in), nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(c_in, c_out, 3, padding=1)]
        layers += [group_norm(widths[-1]), nn.SiLU(), nn.Conv2d(widths[-1], layout.shape[0], 3, padding=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(z)
