"""A StyleGAN2-style generator (Karras et al. 2019, 2020), sized for small images: a mapping network from z to
a style w, a learnt constant grown by modulated, demodulated convolutions with per-pixel noise, and an RGB
image summed over resolutions (the skip architecture). Style mixing and the truncation trick act on w."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..layout import Layout
from . import register_backbone
from .conv import MAX_WIDTH, halvings

W_AVERAGE_DECAY = 0.995  # of the running mean of w that truncation pulls towards, as StyleGAN's


class ModulatedConv(nn.Module):
    """A conv whose input channels are scaled by a style, and whose output is renormalised to unit variance
    (demodulation) for each example; written as scale-conv-rescale rather than one grouped conv with a weight
    per example (StyleGAN2's non-fused form: the same result, and faster on a CPU)."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, kernel: int = 3, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel) / math.sqrt(c_in * kernel * kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.style = nn.Linear(w_dim, c_in)
        # StyleGAN2's affine: unit-variance weights over w's dimensions and a bias of 1, so each channel starts at
        # its plain weight and a unit-scale w moves it by about 1 (torch's default init moved it by a tenth of that)
        nn.init.normal_(self.style.weight, std=1 / math.sqrt(w_dim))
        nn.init.ones_(self.style.bias)
        self.demodulate, self.padding = demodulate, kernel // 2

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = self.style(w)  # (N, c_in)
        x = F.conv2d(x * style[:, :, None, None], self.weight, padding=self.padding)
        if self.demodulate:  # 1 / ||weight * style|| over each output channel's inputs and taps
            norms = (self.weight.square().sum((2, 3))[None] * style.square()[:, None, :]).sum(2)
            x = x * torch.rsqrt(norms + 1e-8)[:, :, None, None]
        return x + self.bias[None, :, None, None]


class StyleLayer(nn.Module):
    """A modulated conv, per-pixel noise scaled by a learnt strength per channel (0 at first), and leaky ReLU.
    In training the noise is drawn anew; in eval mode it is the layer's fixed noise, so a seed gives the same
    image (StyleGAN2's 'const' noise mode)."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, size: tuple[int, int]):
        super().__init__()
        self.conv = ModulatedConv(c_in, c_out, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(c_out))
        self.register_buffer("fixed_noise", torch.randn(1, 1, *size))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.conv(x, w)
        noise = torch.randn_like(x[:, :1]) if self.training else self.fixed_noise
        return F.leaky_relu(x + self.noise_strength[None, :, None, None] * noise, 0.2)


@register_backbone(("image",), "style decoder")
class StyleGenerator(nn.Module):
    """(N, latent_dim) codes and an optional condition vector -> (N, C, H, W) images (unbounded). One style per
    resolution; with `mixing` > 0, that share of training batches takes the styles of a second code from a
    random resolution on (style mixing). `truncation` psi < 1 pulls every w towards the running mean of w."""

    def __init__(self, layout: Layout, latent_dim: int, width: int = 32, cond_dim: int = 0,
                 mapping_layers: int = 4, mixing: float = 0.9):
        super().__init__()
        channels, height, width_px = layout.shape
        levels = halvings(height, width_px)
        sizes = [(height >> level, width_px >> level) for level in range(levels, -1, -1)]  # smallest first
        widths = [min(width * 2 ** level, MAX_WIDTH) for level in range(levels, -1, -1)]
        self.latent_dim, self.mixing = latent_dim, mixing
        layers: list[nn.Module] = []
        for index in range(mapping_layers):
            layers += [nn.Linear(latent_dim + cond_dim if index == 0 else latent_dim, latent_dim), nn.LeakyReLU(0.2)]
            # He init for the leaky ReLU keeps w at z's scale; torch's default shrank it threefold per layer, and
            # with w near 0 every code made the same image (a 5-minute MNIST run collapsed to one digit)
            nn.init.kaiming_normal_(layers[-2].weight, a=0.2, nonlinearity="leaky_relu")
            nn.init.zeros_(layers[-2].bias)
        self.mapping = nn.Sequential(*layers)
        self.register_buffer("w_average", torch.zeros(latent_dim))
        self.constant = nn.Parameter(torch.randn(1, widths[0], *sizes[0]))
        self.blocks = nn.ModuleList()
        for index, (size, c_out) in enumerate(zip(sizes, widths)):
            c_in = widths[max(index - 1, 0)]
            convs = [StyleLayer(c_out, c_out, latent_dim, size)] if index == 0 else \
                [StyleLayer(c_in, c_out, latent_dim, size), StyleLayer(c_out, c_out, latent_dim, size)]
            self.blocks.append(nn.ModuleDict({"convs": nn.ModuleList(convs),
                                              "to_image": ModulatedConv(c_out, channels, latent_dim, 1, False)}))

    def styles(self, z: torch.Tensor, cond: torch.Tensor | None = None,
               truncation: float | torch.Tensor = 1.0) -> torch.Tensor:
        """w for each code: z normalised to unit length per dimension (StyleGAN's pixel norm), joined to the
        condition, through the mapping network; in training the running mean of w is kept for truncation."""
        z = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
        w = self.mapping(z if cond is None else torch.cat([z, cond], dim=1))
        if self.training:
            self.w_average.lerp_(w.detach().mean(0).to(self.w_average), 1 - W_AVERAGE_DECAY)
        if not torch.is_tensor(truncation) and truncation == 1:  # a tensor: an input of an exported graph
            return w
        return self.w_average.to(w) + truncation * (w - self.w_average.to(w))

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None,
                truncation: float | torch.Tensor = 1.0) -> torch.Tensor:
        w = self.styles(z, cond, truncation)
        per_block = [w] * len(self.blocks)
        if self.training and self.mixing > 0 and len(self.blocks) > 1 and torch.rand(()) < self.mixing:
            other = self.styles(torch.randn_like(z), cond)
            crossover = int(torch.randint(1, len(self.blocks), ()))
            per_block = [w] * crossover + [other] * (len(self.blocks) - crossover)
        x, image = self.constant.expand(z.shape[0], -1, -1, -1), None  # shape, not len: a traced graph keeps it free
        for block, style in zip(self.blocks, per_block):
            if image is not None:
                x, image = F.interpolate(x, scale_factor=2.0), F.interpolate(image, scale_factor=2.0, mode="bilinear")
            for layer in block["convs"]:
                x = layer(x, style)
            image = block["to_image"](x, style) + (image if image is not None else 0)
        return image
