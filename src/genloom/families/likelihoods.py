"""How a network's raw output becomes data of the layout's kind: the VAE's reconstruction likelihood, mean and
sample, and the GAN generator's output activation; one class per data kind."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Normal
from torch.special import log_ndtr

from ..errors import GenloomError
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

    def __init__(self, layout: Layout):
        self.scale_shape = (layout.shape[0], 1, 1)

    def log_prob(self, x: torch.Tensor, output: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        return discretised_gaussian_log_prob(x.float(), output.float(), log_scale.expand_as(output).float())

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        return output.clamp(-1, 1)

    def sample(self, output: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.mean(output)  # a VAE's images are its decoder's means, as is usual

    def activate(self, output: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A generator's output in the codec's [-1, 1] range (DCGAN's tanh)."""
        return torch.tanh(output)


class TableReconstruction:
    """Rows made of spans (TVAE's likelihood): a Gaussian on each continuous value after tanh, with one
    learnt scale per value, and a categorical distribution on each one-hot span."""

    discrete = False

    def __init__(self, layout: Layout):
        self.spans = layout.spans
        self.scale_shape = layout.shape

    def _split(self, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(t, [width for _, width in self.spans], dim=1)

    def log_prob(self, x: torch.Tensor, output: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(len(x), device=x.device)
        parts = zip(self.spans, self._split(x.float()), self._split(output.float()),
                    self._split(log_scale.expand_as(output).float()))
        for (kind, _), target, out, scale in parts:
            if kind == "continuous":
                total = total + Normal(torch.tanh(out), scale.exp()).log_prob(target).sum(1)
            else:
                total = total + (target * F.log_softmax(out, dim=1)).sum(1)
        return total

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        """tanh of the continuous values, probabilities of the categories (the codec decodes the argmax)."""
        return torch.cat([torch.tanh(out) if kind == "continuous" else F.softmax(out, dim=1)
                          for (kind, _), out in zip(self.spans, self._split(output))], dim=1)

    def sample(self, output: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Categories drawn from their probabilities (so rare ones appear), continuous values at their mean."""
        parts = []
        for (kind, width), out in zip(self.spans, self._split(output)):
            if kind == "continuous":
                parts.append(torch.tanh(out))
            else:
                drawn = torch.multinomial(F.softmax(out.float(), dim=1).cpu(), 1, generator=generator).squeeze(1)
                parts.append(F.one_hot(drawn, width).to(out))
        return torch.cat(parts, dim=1)

    def activate(self, output: torch.Tensor, generator: torch.Generator | None = None,
                 temperature: float = 0.2) -> torch.Tensor:
        """A generator's output as rows (CTGAN's): tanh on continuous values, Gumbel-softmax at a low
        temperature on each one-hot span, so generated spans look as one-hot as the real ones."""
        parts = []
        for (kind, _), out in zip(self.spans, self._split(output)):
            if kind == "continuous":
                parts.append(torch.tanh(out))
            else:
                uniform = torch.rand(out.shape, generator=generator).to(out.device).clamp(1e-10, 1 - 1e-10)
                parts.append(F.softmax((out - torch.log(-torch.log(uniform))) / temperature, dim=1))
        return torch.cat(parts, dim=1)


RECONSTRUCTIONS = {"image": ImageReconstruction, "table": TableReconstruction}


def reconstruction_for(layout: Layout) -> ImageReconstruction | TableReconstruction:
    """The decoder likelihood that suits the layout's data kind."""
    if layout.kind not in RECONSTRUCTIONS:
        raise GenloomError(f"no reconstruction likelihood for {layout.kind} data; "
                           f"kinds with one: {', '.join(RECONSTRUCTIONS)}")
    return RECONSTRUCTIONS[layout.kind](layout)
