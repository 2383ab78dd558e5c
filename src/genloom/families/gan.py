"""Generative adversarial networks: DCGAN-style with the non-saturating loss (Goodfellow et al. 2014) and
WGAN-GP (Gulrajani et al. 2017); spectral normalisation (Miyato et al. 2018) and a projection discriminator
(Miyato & Koyama 2018) for class-conditional generation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenloomError
from ..layout import Layout
from ..nets import build_backbone
from .base import Family, LossStep, register_family
from .likelihoods import reconstruction_for

LOSSES = ("non-saturating", "wasserstein-gp")


@dataclass
class GANConfig:
    latent_dim: int = 32
    width: int = 32                   # channels of the first conv layer of G and D, doubled at each halving
    loss: str = "non-saturating"      # or "wasserstein-gp"
    gp_weight: float = 10.0           # weight of the gradient penalty (wasserstein-gp)
    d_steps: int = 1                  # discriminator updates per generator update
    spectral_norm: bool = True        # spectrally normalise D's layers (and drop its group norms)
    conditional: bool = False         # class-conditional G (label embedding) and D (projection)
    label_dim: int = 16

    def check(self) -> None:
        if min(self.latent_dim, self.width, self.d_steps) < 1:
            raise GenloomError("latent_dim, width and d_steps must be at least 1")
        if self.loss not in LOSSES:
            raise GenloomError(f"unknown GAN loss '{self.loss}'; use one of {', '.join(LOSSES)}")
        if not self.gp_weight >= 0:
            raise GenloomError(f"gp_weight must be >= 0; got {self.gp_weight}")


class Discriminator(nn.Module):
    """Backbone features h(x); score = w.h + embed(y).h, the projection form of a conditional critic."""

    def __init__(self, layout: Layout, config: GANConfig, features: int = 128):
        super().__init__()
        self.features = build_backbone("encoder", layout, features, width=config.width, norm=not config.spectral_norm)
        self.score = nn.Linear(features, 1)
        self.projection = nn.Embedding(layout.num_classes, features) if config.conditional else None
        if config.spectral_norm:
            for module in list(self.modules()):
                if isinstance(module, (nn.Conv2d, nn.Linear, nn.Embedding)):
                    nn.utils.parametrizations.spectral_norm(module)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        h = F.leaky_relu(self.features(x), 0.2)
        score = self.score(h).squeeze(1)
        if self.projection is not None:
            score = score + (self.projection(labels) * h).sum(1)
        return score


@register_family
class GAN(Family):
    """G(z, y) against D(x, y); the loop steps D then G on each batch, and samples from the EMA of G."""

    name = "gan"
    Config = GANConfig
    validates = False  # neither loss says how good the samples are; the image metrics do
    # DCGAN's Adam (beta1 0.5) at a constant rate; the weight average of G is kept (Karras et al. 2018).
    train_defaults: ClassVar[dict] = {"lr": 2e-4, "adam_beta1": 0.5, "adam_beta2": 0.999, "warmup_steps": 0,
                                      "min_lr_ratio": 1.0, "ema_decay": 0.999, "grad_clip": 10.0}

    def __init__(self, layout: Layout, config: GANConfig):
        super().__init__(layout, config)
        cond_dim = config.label_dim if self.conditional else 0
        self.label_embedding = nn.Embedding(layout.num_classes, cond_dim) if self.conditional else None
        self.generator = build_backbone("decoder", layout, config.latent_dim, width=config.width, cond_dim=cond_dim)
        self.discriminator = Discriminator(layout, config)
        self.output = reconstruction_for(layout)  # tanh for images; tanh and Gumbel-softmax spans for tables

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        generator = [p for name, p in self.named_parameters() if not name.startswith("discriminator.")]
        return {"discriminator": list(self.discriminator.parameters()), "generator": generator}

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """G(z, y): examples in the codec's layout."""
        cond = self.label_embedding(labels) if self.conditional else None
        return self.output.activate(self.generator(z, cond), generator)

    def _fake(self, n: int, labels: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        return self.decode(torch.randn(n, self.config.latent_dim, device=device), labels)

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """(||grad D(x_hat)|| - 1)^2 on random points between real and generated examples."""
        mix = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device)
        x_hat = (mix * real + (1 - mix) * fake).requires_grad_(True)
        grad, = torch.autograd.grad(self.discriminator(x_hat, labels).sum(), x_hat, create_graph=True)
        return (grad.flatten(1).norm(dim=1) - 1).square().mean()

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        wasserstein = self.config.loss == "wasserstein-gp"
        for _ in range(self.config.d_steps):
            with torch.no_grad():
                fake = self._fake(len(x), labels, x.device)
            real_score, fake_score = self.discriminator(x, labels), self.discriminator(fake, labels)
            logs = {"d_real": real_score.mean().item(), "d_fake": fake_score.mean().item()}
            if wasserstein:
                penalty = self._gradient_penalty(x, fake, labels)
                loss = fake_score.mean() - real_score.mean() + self.config.gp_weight * penalty
                logs["gradient_penalty"] = penalty.item()
            else:
                loss = F.softplus(-real_score).mean() + F.softplus(fake_score).mean()
            yield "discriminator", loss, logs
        fake_score = self.discriminator(self._fake(len(x), labels, x.device), labels)
        yield "generator", (-fake_score.mean() if wasserstein else F.softplus(-fake_score).mean()), {}

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator,
               options: None = None) -> torch.Tensor:
        device = next(self.generator.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(device)
        if self.conditional and labels is None:
            labels = torch.randint(self.layout.num_classes, (n,), generator=generator).to(device)
        return self.decode(z, labels, generator)


@dataclass
class WGANGPConfig(GANConfig):
    loss: str = "wasserstein-gp"
    d_steps: int = 2
    spectral_norm: bool = False       # the gradient penalty already bounds the critic


@register_family
class WGANGP(GAN):
    """The GAN with the Wasserstein loss and gradient penalty as its defaults (Adam betas (0, 0.9) as the paper)."""

    name = "wgan-gp"
    Config = WGANGPConfig
    train_defaults: ClassVar[dict] = {**GAN.train_defaults, "adam_beta1": 0.0, "adam_beta2": 0.9}
