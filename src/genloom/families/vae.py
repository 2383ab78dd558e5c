"""Variational autoencoder (Kingma & Welling 2014) with beta (Higgins et al. 2017) and class conditioning."""
from __future__ import annotations

import math
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from ..layout import Layout
from ..nets import build_backbone
from .base import Family, LossStep
from .configs import VAEConfig


class VAE(Family):
    """Encoder q(z|x,y), decoder p(x|z,y) with the layout's likelihood (images: a discretised Gaussian), prior
    N(0, I)."""

    name = "vae"
    tools = frozenset({"encode", "decode", "log_prob"})

    def __init__(self, layout: Layout, config: VAEConfig):
        super().__init__(layout, config)
        cond_dim = config.label_dim if self.conditional else 0
        self.label_embedding = nn.Embedding(layout.num_classes, cond_dim) if self.conditional else None
        self.encoder = build_backbone("encoder", layout, 2 * config.latent_dim, width=config.width, cond_dim=cond_dim)
        self.decoder = build_backbone("decoder", layout, config.latent_dim, width=config.width, cond_dim=cond_dim)
        self.reconstruction = layout.reconstruction()
        self.log_scale = nn.Parameter(torch.full(self.reconstruction.scale_shape, math.log(0.1)))

    def _condition(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        return self.label_embedding(labels) if self.conditional else None

    def posterior(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x, y)."""
        mean, log_var = self.encoder(x, self._condition(labels)).chunk(2, dim=1)
        return mean, log_var.clamp(-12, 8)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The posterior mean: the point in latent space that represents x."""
        return self.posterior(x, labels)[0]

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's mean example for latent z, in the codec's layout."""
        return self.reconstruction.mean(self.decoder(z, self._condition(labels)))

    def elbo_terms(self, x: torch.Tensor, labels: torch.Tensor | None,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example reconstruction log-likelihood and KL(q || prior), both in nats."""
        mean, log_var = self.posterior(x, labels)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
        z = mean + torch.exp(0.5 * log_var) * noise
        output = self.decoder(z, self._condition(labels))
        log_likelihood = self.reconstruction.log_prob(x, output, self.log_scale.clamp(-7, 2))
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(1)
        return log_likelihood, kl.float()

    def log_prob(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-example ELBO, a lower bound on log p(x), in nats (higher is more typical)."""
        log_likelihood, kl = self.elbo_terms(x, labels, generator)
        return log_likelihood - kl

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        log_likelihood, kl = self.elbo_terms(x, labels)
        loss = (-log_likelihood + self.config.beta * kl).mean()
        yield "model", loss, {"recon": -log_likelihood.mean().item(), "kl": kl.mean().item()}

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator, options: None = None,
               given: Sequence[int] = (), on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
        device = self.log_scale.device
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(device)
        if self.conditional and labels is None:
            labels = torch.randint(self.layout.num_classes, (n,), generator=generator).to(device)
        samples = self.reconstruction.sample(self.decoder(z, self._condition(labels)), generator)
        on_pass()
        return samples

    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        elbo = self.log_prob(x, labels, torch.Generator().manual_seed(0))
        if not self.reconstruction.discrete:
            return {"elbo": elbo.mean().item()}
        dims = math.prod(self.layout.shape)
        return {"elbo": elbo.mean().item(), "bits_per_dim": (-elbo.mean() / (dims * math.log(2))).item()}
