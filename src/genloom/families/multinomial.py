"""Multinomial diffusion (Hoogeboom et al. 2021) on one-hot spans, as TabDDPM (Kotelnikov et al. 2023) uses it
for the categorical part of a row: q(x_t | x_0) = Cat(abar_t x_0 + (1 - abar_t) / K), sharing the Gaussian
part's noise schedule. The network predicts x_0; training matches the posterior q(x_s | x_t, x_0) with the
one its prediction implies (a KL divergence), and sampling draws from that posterior at the sampler's steps."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .schedules import NoiseSchedule


class MultinomialDiffusion:
    """Corruption, loss and reverse step for rows of concatenated one-hot spans of the given widths."""

    def __init__(self, schedule: NoiseSchedule, widths: list[int]):
        self.alphas_cumprod, self.widths = schedule.alphas_cumprod, widths

    def _abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """abar at integer steps t (N,) as a column; 1 (no noise) where t < 0."""
        abar = self.alphas_cumprod.to(like.device)[t.clamp(min=0)].to(like.dtype)
        return torch.where(t < 0, torch.ones_like(abar), abar)[:, None]

    def _spans(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(x, self.widths, dim=1)

    def _probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """The network's x_0 logits as one distribution per span."""
        return torch.cat([F.softmax(span, dim=1) for span in self._spans(logits.float())], dim=1)

    def _draw(self, probabilities: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One category per span (Gumbel-max over log-probabilities), as one-hots."""
        uniform = (torch.rand_like(probabilities) if generator is None  # training: drawn where the batch is
                   else torch.rand(probabilities.shape, generator=generator).to(probabilities)).clamp(1e-20, 1)
        scores = probabilities.clamp(min=1e-30).log() - torch.log(-torch.log(uniform))
        return torch.cat([F.one_hot(span.argmax(1), span.shape[1]) for span in self._spans(scores)], dim=1).to(scores)

    def corrupt(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x_t drawn from q(x_t | x_0)."""
        abar = self._abar(t, x0)
        probabilities = torch.cat([abar * span + (1 - abar) / span.shape[1] for span in self._spans(x0)], dim=1)
        return self._draw(probabilities, generator)

    def posterior(self, x_t: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """q(x_s | x_t, x_0) for s < t, with x_0 one-hot or a distribution: the product of
        q(x_t | x_s) = Cat(abar_t/abar_s x_s + ...) and q(x_s | x_0), normalised in each span."""
        abar_t, abar_s = self._abar(t, x_t), self._abar(s, x_t)
        step = abar_t / abar_s
        parts = []
        for current, start in zip(self._spans(x_t), self._spans(x0)):
            k = current.shape[1]
            unnormalised = (step * current + (1 - step) / k) * (abar_s * start + (1 - abar_s) / k)
            parts.append(unnormalised / unnormalised.sum(1, keepdim=True))
        return torch.cat(parts, dim=1)

    def loss(self, x0: torch.Tensor, x_t: torch.Tensor, logits: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Per row, averaged over spans: KL(q(x_{t-1} | x_t, x_0) || q(x_{t-1} | x_t, predicted x_0)), and at
        t = 0 the negative log-likelihood of x_0 under the prediction."""
        predicted = self._probabilities(logits)
        true_posterior = self.posterior(x_t, x0, t, t - 1)
        model_posterior = self.posterior(x_t, predicted, t, t - 1)
        kl = true_posterior * (true_posterior.clamp(min=1e-30).log() - model_posterior.clamp(min=1e-30).log())
        nll = -x0 * predicted.clamp(min=1e-30).log()
        per_value = torch.where((t == 0)[:, None], nll, kl)
        return per_value.sum(1) / len(self.widths)

    def step(self, x_t: torch.Tensor, logits: torch.Tensor, t: int, s: int,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """x_s drawn from the posterior given the predicted x_0; at the end (s < 0), x_0 itself."""
        predicted = self._probabilities(logits)
        if s < 0:
            return self._draw(predicted, generator)
        steps = torch.full((len(x_t),), t, device=x_t.device), torch.full((len(x_t),), s, device=x_t.device)
        return self._draw(self.posterior(x_t, predicted, *steps), generator)

    def prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """x_T: every category equally likely."""
        return self._draw(torch.ones(n, sum(self.widths)), generator)
