"""Variational autoencoder (Kingma & Welling 2014) with beta (Higgins et al. 2017), class conditioning and a
property head on the latent for design by gradient steps in latent space (Gomez-Bombarelli et al. 2018)."""
from __future__ import annotations

import math
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from ..errors import GenloomError
from ..layout import Layout
from ..nets import build_backbone
from .base import Family, LossStep
from .configs import VAEConfig

LANGEVIN_STEP = 0.05  # of unadjusted Langevin dynamics: some 1% too wide on N(0, I), mixed in 100 steps
DECODER_ROLES = {"parallel": "decoder", "autoregressive": "autoregressive decoder"}  # the config's decoder -> role


class VAE(Family):
    """Encoder q(z|x,y), decoder p(x|z,y) with the layout's likelihood (images: a discretised Gaussian), prior
    N(0, I)."""

    name = "vae"
    tools = frozenset({"encode", "decode", "log_prob", "anomaly_score", "design"})
    takes_given_rows = True  # a conditional VAE of the other columns: encoder and decoder read the given ones

    def __init__(self, layout: Layout, config: VAEConfig):
        super().__init__(layout, config)
        cond_dim = config.label_dim if self.conditional else layout.condition_width
        self.label_embedding = nn.Embedding(layout.num_classes, cond_dim) if self.conditional else None
        self.encoder = build_backbone("encoder", layout, 2 * config.latent_dim, width=config.width, cond_dim=cond_dim)
        # an autoregressive decoder reads the example's tokens before each one (teacher forcing) and writes its
        # own in sampling; a parallel one writes every position from the code at once
        self.reads_tokens = config.decoder == "autoregressive"
        if config.word_dropout and not self.reads_tokens:
            raise GenloomError("word_dropout masks what an autoregressive decoder reads: add --decoder autoregressive "
                               "(decoder=\"autoregressive\"), or drop --word-dropout")
        reading = {"word_dropout": config.word_dropout} if self.reads_tokens else {}
        self.decoder = build_backbone(DECODER_ROLES[config.decoder], layout, config.latent_dim, width=config.width,
                                      cond_dim=cond_dim, **reading)
        self.kl_weight = config.beta  # beta, or less while the KL warms up (begin_step)
        self.reconstruction = layout.reconstruction()
        self.log_scale = nn.Parameter(torch.full(self.reconstruction.scale_shape, math.log(0.1)))
        self.property_head = self._property_head(layout, config)
        # the property's mean and spread over the training rows: the head predicts it in standard units
        self.register_buffer("property_scale", torch.tensor([0.0, 1.0]))

    @staticmethod
    def _property_head(layout: Layout, config: VAEConfig) -> nn.Module | None:
        if config.property is None:
            return None
        if layout.property_position is None:
            raise GenloomError(f"a property head predicts a numerical table column or a molecule property; this data "
                               f"has no {config.property!r}: drop the property option, or train on data with it")
        hidden = 2 * config.width
        return nn.Sequential(nn.Linear(config.latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                             nn.Linear(hidden, 1))

    def prepare(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        if self.property_head is not None:
            values = x[:, self.layout.property_position].double()
            self.property_scale.copy_(torch.stack([values.mean(), values.std().clamp_min(1e-6)]))

    def _standard_property(self, x: torch.Tensor) -> torch.Tensor:
        """The property of encoded rows, in standard units."""
        mean, spread = self.property_scale
        return (x[:, self.layout.property_position].float() - mean) / spread

    def predict_property(self, z: torch.Tensor) -> torch.Tensor:
        """The head's property for latent codes, in standard units of the encoded property."""
        return self.property_head(z).squeeze(1)

    def _condition(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        """What encoder and decoder read beside x or z: the label's embedding, or the given columns' values (which
        every use of the model needs)."""
        self.check_given(labels)
        if self.conditional:
            return self.label_embedding(labels)
        return labels if self.given_rows else None

    def posterior(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x, y). With a property head the encoder does not see the property (its
        slot holds the training mean), so the head predicts it from the other columns, as a judge of designed
        rows would, and raising the prediction changes those columns rather than the property's own value."""
        if self.property_head is not None:
            x = x.clone()
            x[:, self.layout.property_position] = self.property_scale[0].to(x.dtype)
        mean, log_var = self.encoder(x, self._condition(labels)).chunk(2, dim=1)
        return mean, log_var.clamp(-12, 8)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The posterior mean: the point in latent space that represents x."""
        return self.posterior(x, labels)[0]

    @property
    def uniform_draws(self) -> int:
        """Uniforms per example that `sample_given` takes."""
        return self.reconstruction.draw_count

    def sample_given(self, z: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """An unconditional model's samples for codes z with the rest of sample's draws given as uniforms
        (N, uniform_draws) in [0, 1): sample's arithmetic without a generator (what an exported table generator
        runs; a decoder whose output is a distribution drawn by arithmetic: table rows)."""
        return self.reconstruction.drawn(self.decoder(z, None), uniforms)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's mean example for latent z (an autoregressive decoder's: each token the likeliest after
        those before it), in the codec's layout."""
        return self._decoded(z, self._condition(labels))

    def _decoded(self, z: torch.Tensor, condition: torch.Tensor | None, generator: torch.Generator | None = None,
                 temperature: float = 1.0) -> torch.Tensor:
        """Examples for codes z: the decoder's mean (no generator) or a draw from its distribution (an
        autoregressive decoder's at `temperature`)."""
        if self.reads_tokens:
            return self.reconstruction.with_slot(self.decoder.generate(
                z, condition, lambda logits: self.reconstruction.pick(logits / temperature, generator)))
        output = self.decoder(z, condition)
        return self.reconstruction.mean(output) if generator is None else self.reconstruction.sample(output, generator)

    def _output(self, z: torch.Tensor, condition: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        """The decoder's output that x's likelihood is read from: an autoregressive decoder reads x's tokens."""
        return self.decoder(z, condition, x) if self.reads_tokens else self.decoder(z, condition)

    def elbo_terms(self, x: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator | None = None,
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-example reconstruction log-likelihood and KL(q || prior) of each latent dimension (B, latent_dim),
        both in nats, and the code drawn."""
        mean, log_var = self.posterior(x, labels)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
        z = mean + torch.exp(0.5 * log_var) * noise
        output = self._output(z, self._condition(labels), x)
        log_likelihood = self.reconstruction.log_prob(x, output, self.log_scale.clamp(-7, 2))
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var)
        return log_likelihood, kl.float(), z

    def log_prob(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-example importance-weighted lower bound on log p(x) in nats (Burda et al. 2016), from the config's
        importance_samples codes drawn from q(z | x): tighter than the ELBO (its one-code case) and steadier, which
        a score needs: one code's ELBO is noisy enough to cost an anomaly detector 0.01 to 0.05 AUROC on ODDS
        tables (benchmarks/anomaly.py)."""
        mean, log_var = self.posterior(x, labels)
        spread, condition = torch.exp(0.5 * log_var), self._condition(labels)
        weights = []
        samples = self.config.importance_samples
        for _ in range(samples):
            noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
            z = mean + spread * noise
            log_likelihood = self.reconstruction.log_prob(x, self._output(z, condition, x), self.log_scale.clamp(-7, 2))
            log_prior_over_posterior = 0.5 * (noise.pow(2) + log_var - z.pow(2)).sum(1)  # the 2 pi terms cancel
            weights.append(log_likelihood + log_prior_over_posterior.float())
        return torch.logsumexp(torch.stack(weights), dim=0) - math.log(samples)

    def begin_step(self, progress: float) -> None:
        """The KL weight for this share of the budget: beta, or a share of it while it warms up."""
        warmup = self.config.kl_warmup
        self.kl_weight = self.config.beta * (min(1.0, progress / warmup) if warmup > 0 else 1.0)

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        log_likelihood, kl, z = self.elbo_terms(x, labels)
        # free bits: each dimension's KL, averaged over the batch, costs nothing up to free_bits nats
        penalised = kl.mean(0).clamp_min(self.config.free_bits).sum()
        loss = -log_likelihood.mean() + self.kl_weight * penalised
        numbers = {"recon": -log_likelihood.mean().item(), "kl": kl.sum(1).mean().item()}
        if self.property_head is not None:  # on a drawn code, so the head holds around each row's code too
            error = (self.predict_property(z) - self._standard_property(x)).pow(2).mean()
            loss = loss + self.config.property_weight * error
            numbers["property_mse"] = error.item()
        yield "model", loss, numbers

    def design(self, n: int, maximize: bool, prior_weight: float, steps: int, generator: torch.Generator,
               temperature: float = 1.0) -> torch.Tensor:
        """n rows designed toward a higher (or lower) property, decoded to their mean row from codes drawn by
        Langevin dynamics from the prior tilted by the head: exp(+-head(z) / prior_weight) N(z; 0, I). Sampling
        rather than ascending to the optimum keeps n designs n different rows; a larger prior_weight keeps them
        nearer the prior, where rows look like the training rows. An autoregressive decoder's designs are drawn
        from it at `temperature` instead: its mean (each token the likeliest) maps most codes to a few molecules
        (13% of 1,000 designs unique after 5 minutes on moses). The property of each row is the head's estimate
        from the row's other columns (re-encoded), not the decoder's, which runs to the edge of its range."""
        if self.property_head is None:
            raise GenloomError("this VAE has no property head: train it with property='COLUMN' "
                               "(CLI: genloom train DATA --family vae --property COLUMN)")
        if temperature != 1 and not self.reads_tokens:
            raise GenloomError("temperature draws an autoregressive decoder's tokens; this VAE decodes each design "
                               "to its mean: drop temperature, or train with decoder='autoregressive' (molecules)")
        device = self.log_scale.device
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(device)
        push = (1.0 if maximize else -1.0) / max(prior_weight, 1e-6)
        with torch.enable_grad():
            for _ in range(steps):
                z.requires_grad_()
                log_density = push * self.predict_property(z) - 0.5 * z.pow(2).sum(1)
                gradient, = torch.autograd.grad(log_density.sum(), z)
                noise = torch.randn(z.shape, generator=generator).to(device)
                z = (z + 0.5 * LANGEVIN_STEP * gradient + math.sqrt(LANGEVIN_STEP) * noise).detach()
        with torch.no_grad():
            rows = self._decoded(z, None, generator, temperature) if self.reads_tokens else self.decode(z)
            rows[:, self.layout.property_position] = self.estimate_property(rows)
            return rows

    def estimate_property(self, x: torch.Tensor) -> torch.Tensor:
        """The head's property of encoded rows (from their other columns), in the encoded property's units."""
        mean, spread = self.property_scale
        return (self.predict_property(self.encode(x)) * spread + mean).clamp(-1, 1).to(x.dtype)

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator, options: None = None,
               given: Sequence[int] = (), on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
        device = self.log_scale.device
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(device)
        if self.conditional and labels is None:
            labels = torch.randint(self.layout.num_classes, (n,), generator=generator).to(device)
        samples = self._decoded(z, self._condition(labels), generator)
        on_pass()
        return samples

    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        log_likelihood, kl, _ = self.elbo_terms(x, labels, torch.Generator().manual_seed(0))
        elbo = log_likelihood - kl.sum(1)
        scores = {"elbo": elbo.mean().item()}
        if self.reconstruction.discrete:
            scores["bits_per_dim"] = (-elbo.mean() / (math.prod(self.layout.shape) * math.log(2))).item()
        if self.property_head is not None:  # 1 - squared error / variance, from the posterior mean
            error = (self.predict_property(self.encode(x, labels)) - self._standard_property(x)).pow(2).mean()
            scores["property_r2"] = 1 - error.item()
        return scores
