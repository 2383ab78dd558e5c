"""The layout of images and the pieces families take from it: the decoder likelihood of 8-bit pixels and
the pixel tokens of the autoregressive family."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch.special import log_ndtr

from ..layout import Layout


def _log_ndtr_difference(upper: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """log(Phi(upper) - Phi(lower)) for upper > lower, stable in both tails."""
    flip = lower > 0  # use the mirrored form 1-Phi when both bounds sit in the upper tail
    a, b = torch.where(flip, -lower, upper), torch.where(flip, -upper, lower)
    log_a, log_b = log_ndtr(a), log_ndtr(b)
    return log_a + torch.log1p(-torch.exp(log_b - log_a).clamp(max=1 - 1e-6))


def discretised_gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor,
                                  levels: int = 256) -> torch.Tensor:
    """Per-example log-probability (nats) of x on a grid of `levels` values in [-1, 1].

    A Gaussian density on 8-bit data would give an unbounded, positive "ELBO"; integrating over
    each pixel's bin (as Ho et al.'s DDPM decoder does) gives a true bound in nats.
    """
    half_bin = 1.0 / (levels - 1)
    inv_scale = torch.exp(-log_scale)
    upper = (x + half_bin - mean) * inv_scale
    lower = (x - half_bin - mean) * inv_scale
    log_prob = torch.where(
        x < -1 + half_bin, log_ndtr(upper),
        torch.where(x > 1 - half_bin, log_ndtr(-lower), _log_ndtr_difference(upper, lower)))
    return log_prob.flatten(1).sum(1)


class ImageReconstruction:
    """8-bit pixels: a discretised Gaussian around the decoder's output, one scale per channel."""

    discrete = True  # a probability, not a density: the ELBO bounds log p(x) and bits per dimension mean something
    adversarial = True

    def __init__(self, shape: tuple[int, ...]):
        self.scale_shape = (shape[0], 1, 1)

    def log_prob(self, x: torch.Tensor, output: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        return discretised_gaussian_log_prob(x.float(), output.float(), log_scale.expand_as(output).float())

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        return output.clamp(-1, 1)

    def sample(self, output: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.mean(output)  # a VAE's images are its decoder's means, as is usual

    def activate(self, output: torch.Tensor, generator: torch.Generator | None = None,
                 noise: bool = True) -> torch.Tensor:
        """A generator's output in the codec's [-1, 1] range (DCGAN's tanh); it has no noise to leave out."""
        return torch.tanh(output)


class PixelTokens:
    """Images in [-1, 1] <-> (N, H*W*C) tokens in raster order, channels last, as PixelCNN and Image GPT
    read them; token k stands for the 256/K 8-bit values of the k-th equal bin (so a level's probability
    spreads evenly over its values)."""

    grammar = None  # any level may follow any other
    end_token = None  # every position is part of the example

    def __init__(self, shape: tuple[int, ...], levels: int):
        self.shape, self.levels = tuple(shape), levels
        self.length, self.vocab_size = math.prod(shape), levels

    def fit(self, x: torch.Tensor) -> None:
        """Nothing to learn: the bins are fixed."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        eight_bit = ((x.float() + 1) * 127.5).round()
        levels = (eight_bit * self.levels / 256).floor().clamp(0, self.levels - 1).long()
        return levels.permute(0, 2, 3, 1).flatten(1)

    def decode(self, tokens: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        channels, height, width = self.shape
        bin_width = 256 / self.levels
        x = ((tokens.float() + 0.5) * bin_width - 0.5) / 127.5 - 1  # the bin's centre
        return x.view(-1, height, width, channels).permute(0, 3, 1, 2)

    def allowed(self, vocab_size: int) -> torch.Tensor:
        """(length, vocab_size): every pixel is a level, never a class or start token."""
        return (torch.arange(vocab_size) < self.levels).expand(self.length, vocab_size)

    def likelihood_scores(self, log_prob: torch.Tensor) -> dict[str, float]:
        """Bits per 8-bit value of images whose tokens have log-probability `log_prob` (each level's mass
        spread evenly over its 256/K values)."""
        bits = -log_prob.mean().item() / (self.length * math.log(2))
        return {"bits_per_dim": bits + math.log2(256 / self.levels)}


@dataclass(frozen=True)
class ImageLayout(Layout):
    """(C, H, W) images in [-1, 1], with `num_classes` labels."""

    kind: str = field(default="image", init=False)

    def reconstruction(self) -> ImageReconstruction:
        return ImageReconstruction(self.shape)

    def tokens(self, levels: int, bins: int) -> PixelTokens:
        return PixelTokens(self.shape, levels)
