"""The layout of signals and the pieces families take from it: a Gaussian likelihood of values in [-1, 1] (a VAE's
decoder, a GAN's tanh), and tokens for the autoregressive family: a waveform's 8-bit mu-law levels (WaveNet's), or
a spectrogram's intensity levels frame by frame."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..layout import Layout
from .image_layout import PixelTokens

MU_LAW_LEVELS = 256  # WaveNet's 8-bit companded samples


def mu_law(x: torch.Tensor, levels: int = MU_LAW_LEVELS) -> torch.Tensor:
    """Values in [-1, 1] -> integer levels 0..levels-1 after mu-law companding (ITU-T G.711), which spends its levels
    where speech spends its time: near silence."""
    mu = levels - 1
    companded = torch.sign(x) * torch.log1p(mu * x.abs().clamp(max=1)) / math.log1p(mu)
    return ((companded + 1) / 2 * mu + 0.5).floor().long().clamp(0, mu)


def inverse_mu_law(levels_: torch.Tensor, levels: int = MU_LAW_LEVELS) -> torch.Tensor:
    """Integer levels -> values in [-1, 1] (each level's centre in the companded domain)."""
    mu = levels - 1
    companded = 2 * levels_.float() / mu - 1
    return torch.sign(companded) * ((1 + mu) ** companded.abs() - 1) / mu


class MuLawTokens:
    """Waveforms (N, 1, L) in [-1, 1] <-> (N, L) tokens of 8-bit mu-law, one a sample."""

    grammar = None  # any level may follow any other
    end_token = None  # every position is part of the example

    def __init__(self, length: int):
        self.length, self.vocab_size = length, MU_LAW_LEVELS

    def fit(self, x: torch.Tensor) -> None:
        """Nothing to learn: the levels are fixed."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return mu_law(x.float().flatten(1))

    def decode(self, tokens: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return inverse_mu_law(tokens)[:, None]

    def allowed(self, vocab_size: int) -> torch.Tensor:
        return (torch.arange(vocab_size) < MU_LAW_LEVELS).expand(self.length, vocab_size)

    def likelihood_scores(self, log_prob: torch.Tensor) -> dict[str, float]:
        """Bits per 8-bit sample."""
        return {"bits_per_sample": -log_prob.mean().item() / (self.length * math.log(2))}


class GaussianReconstruction:
    """Values in [-1, 1] (a waveform's samples, a spectrogram's levels): a Gaussian around the decoder's output with
    one learnt scale; a density, so its ELBO is not in bits of anything."""

    discrete = False
    adversarial = True
    scale_shape = (1,)

    def log_prob(self, x: torch.Tensor, output: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        log_scale = log_scale.float()
        squared = ((x.float() - output.float()) * torch.exp(-log_scale)).square()
        return -(0.5 * squared + log_scale + 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        return output.clamp(-1, 1)

    def sample(self, output: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.mean(output)  # the decoder's mean, as an image VAE's

    def activate(self, output: torch.Tensor, generator: torch.Generator | None = None,
                 noise: bool = True) -> torch.Tensor:
        return torch.tanh(output)


@dataclass(frozen=True)
class SignalLayout(Layout):
    """(1, L) waveforms, or (1, frames, mels) log-mel spectrograms (time down, frequency across), in [-1, 1], with
    `num_classes` labels."""

    kind: str = field(default="signal", init=False)

    def reconstruction(self) -> GaussianReconstruction:
        return GaussianReconstruction()

    def tokens(self, levels: int, bins: int) -> MuLawTokens | PixelTokens:
        """A waveform's mu-law samples; a spectrogram's `levels` intensities, frame after frame."""
        return MuLawTokens(self.shape[1]) if len(self.shape) == 2 else PixelTokens(self.shape, levels)
