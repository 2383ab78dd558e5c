"""Generative adversarial networks: DCGAN-style with the non-saturating loss (Goodfellow et al. 2014) and
WGAN-GP (Gulrajani et al. 2017); spectral normalisation (Miyato et al. 2018) and a projection discriminator
(Miyato & Koyama 2018) for class-conditional generation. On tables, CTGAN's (Xu et al. 2019) conditional
vector with training-by-sampling. PacGAN (Lin et al. 2018), for tables and images: the critic judges `pac`
examples at once (rows side by side, images stacked as channels), which makes a generator that repeats
itself easy to spot."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenloomError
from ..layout import Layout
from ..nets import build_backbone
from .base import Family, LossStep
from .configs import GANConfig, StyleGANConfig, StyleSampling

# Latent inversion (encode): Adam on z from a few random starts, the best start kept per example.
INVERSION_STEPS = 200
INVERSION_STARTS = 4
INVERSION_LR = 0.1
PRIOR_WEIGHT = 1e-3      # times ||z||^2 / latent_dim: keeps z where the prior N(0, I) puts codes
INVERSION_CHUNK = 256    # examples inverted together


class Discriminator(nn.Module):
    """Backbone features h(x); score = w.h + embed(y).h, the projection form of a conditional critic.
    On tables, each row comes with its condition vector; `pac` examples are scored as one (rows joined end
    to end, images stacked as channels)."""

    def __init__(self, layout: Layout, config: GANConfig, pac: int, condition_width: int, features: int = 128):
        super().__init__()
        self.pac = pac
        channels_or_values, *rest = layout.shape
        packed = replace(layout, shape=((channels_or_values + condition_width) * pac, *rest))
        self.features = build_backbone("encoder", packed, features, width=config.width, norm=not config.spectral_norm)
        self.score = nn.Linear(features, 1)
        self.projection = nn.Embedding(layout.num_classes, features) if config.conditional else None
        if config.spectral_norm:
            for module in list(self.modules()):
                if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear, nn.Embedding)):
                    nn.utils.parametrizations.spectral_norm(module)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None,
                conditions: torch.Tensor | None = None) -> torch.Tensor:
        if conditions is not None:
            x = torch.cat([x, conditions], dim=1)
        h = F.leaky_relu(self.features(x.reshape(len(x) // self.pac, -1, *x.shape[2:])), 0.2)
        score = self.score(h).squeeze(1)
        if self.projection is not None:
            score = score + (self.projection(labels) * h).sum(1)
        return score


class GAN(Family):
    """G(z, y) against D(x, y); the loop steps D then G on each batch, and samples from the EMA of G."""

    name = "gan"
    tools = frozenset({"encode", "decode"})
    private_part = "discriminator"  # DP-SGD on the critic, as DP-GAN (Xie et al. 2018) and DP-CTGAN
    validates = False  # neither loss says how good the samples are; the image metrics do
    generator_role = "decoder"  # the backbone that plays G

    @staticmethod
    def generator_options(config: GANConfig) -> dict[str, Any]:
        """Options of G's backbone beyond its size and condition."""
        return {}

    def _generator_backbone(self, config: GANConfig) -> tuple[str, dict[str, Any]]:
        """The role of G's backbone and its options: the family's own, or the quantum circuits."""
        if config.backbone == "quantum":
            return "quantum decoder", {"qubits": config.qubits, "depth": config.circuit_depth}
        return self.generator_role, self.generator_options(config)

    def __init__(self, layout: Layout, config: GANConfig):
        super().__init__(layout, config)
        self.output = layout.reconstruction()  # its activation: tanh for images; Gumbel-softmax spans for tables
        if not self.output.adversarial:
            raise GenloomError(f"a GAN cannot learn {layout.kind} data: its discrete tokens give the critic no "
                               "gradient to pass back; use the autoregressive or vae family")
        self.pac = config.pac
        self.categories = layout.category_conditions() if config.category_conditions else None
        condition_width = self.categories.width if self.categories is not None else 0
        self.label_embedding = nn.Embedding(layout.num_classes, config.label_dim) if self.conditional else None
        cond_dim = (config.label_dim if self.conditional else 0) + condition_width
        role, options = self._generator_backbone(config)
        self.generator = build_backbone(role, layout, config.latent_dim, width=config.width, cond_dim=cond_dim,
                                        **options)
        self.discriminator = Discriminator(layout, config, self.pac, condition_width)

    @property
    def privacy_refusal(self) -> str | None:
        """What keeps DP-SGD on the critic from protecting each training example, with its fix (or None): each
        example's gradient must reach the critic alone, once per batch, through layers Opacus differentiates per
        example, and nothing else may be learnt from the data."""
        config = self.config
        reasons = [
            (self.pac > 1, f"PacGAN's critic judges packs of {self.pac} examples, and DP-SGD bounds each example's "
                           "gradient: give pac 1 (CLI: --pac 1)"),
            (config.loss == "wasserstein-gp" or config.r1_weight > 0,
             "Opacus gives no per-example gradients of a gradient penalty: use the non-saturating loss without R1 "
             "(CLI: --loss non-saturating --r1-weight 0)"),
            (config.spectral_norm, "Opacus gives no per-example gradients through spectrally normalised weights: "
                                   "give spectral_norm false (CLI: --no-spectral-norm)"),
            (config.d_steps > 1, "every critic step on a batch spends privacy, and the noise is set for one: leave "
                                 "d_steps at 1 (CLI: --d-steps 1)"),
            (self.conditional, "a conditional GAN's generator is given the batch's labels, which DP-SGD on the critic "
                               "does not protect: train it without conditional"),
            (self.categories is not None, "CTGAN's conditional vector follows the categories' counts in the training "
                                          "data, which DP-SGD does not protect: give category_conditions false (CLI: "
                                          "--no-category-conditions)"),
        ]
        return next((reason for refused, reason in reasons if refused), None)

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        generator = [p for name, p in self.named_parameters() if not name.startswith("discriminator.")]
        return {"discriminator": list(self.discriminator.parameters()), "generator": generator}

    def prepare(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor | None:
        """Tables: count the categories; batches follow training-by-sampling."""
        return self.categories.fit(x) if self.categories is not None else None

    def _generate(self, z: torch.Tensor, labels: torch.Tensor | None, conditions: torch.Tensor | None) -> torch.Tensor:
        """G's raw output for latents, class labels and category conditions (those the model uses)."""
        parts = [self.label_embedding(labels)] if self.conditional else []
        parts += [conditions] if conditions is not None else []
        return self.generator(z, torch.cat(parts, dim=1) if parts else None)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None,
               generator: torch.Generator | None = None, given: Sequence[int] = ()) -> torch.Tensor:
        """G(z, y): examples in the codec's layout. On tables, under the conditions `given` asks for (its first
        category), else drawn from `generator` as the data has them; without a generator (the latent tools),
        deterministically: under the conditions' mean, which `encode` inverts under too (a code cannot carry a
        row's own category), and without the Gumbel noise on categories (the codec decodes their argmax)."""
        conditions = None
        if self.categories is not None:
            conditions = self.categories.asking(given, len(z))
            if conditions is None and generator is not None:
                conditions = self.categories.draw(len(z), generator)
            conditions = (conditions if conditions is not None else self._mean_conditions(len(z))).to(z)
        return self.output.activate(self._generate(z, labels, conditions), generator, noise=generator is not None)

    @property
    def uniform_draws(self) -> int:
        """Uniforms per example that `sample_given` takes: the conditional vector's (where there is one), then the
        Gumbel noise's."""
        return (self.categories is not None) + math.prod(self.layout.shape)

    def sample_given(self, z: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """An unconditional model's samples for latents z with the rest of sample's draws given as uniforms
        (N, uniform_draws) in [0, 1): sample's arithmetic without a generator (what an exported table generator
        runs; an output drawn by arithmetic: table rows)."""
        conditions = None
        if self.categories is not None:
            conditions, uniforms = self.categories.drawn(uniforms[:, 0]).to(z), uniforms[:, 1:]
        return self.output.activated(self._generate(z, None, conditions), uniforms)

    def _mean_conditions(self, n: int) -> torch.Tensor:
        """n copies of the conditional vector's mean under sampling, a condition that asks for no category:
        a row's own category cannot be asked for, as decode sees only its code."""
        return self.categories.mean().expand(n, -1)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None, steps: int = INVERSION_STEPS,
               starts: int = INVERSION_STARTS, seed: int = 0) -> torch.Tensor:
        """Latent inversion: the z whose decode(z) is nearest x (mean squared error, plus PRIOR_WEIGHT
        ||z||^2 / latent_dim), by Adam from `starts` seeded random codes, the best kept per example.
        Deterministic; gradients reach z only, also under a caller's no_grad."""
        generator = torch.Generator().manual_seed(seed)
        return torch.cat([self._invert(x[start:start + INVERSION_CHUNK],
                                       labels[start:start + INVERSION_CHUNK] if labels is not None else None,
                                       steps, starts, generator)
                          for start in range(0, len(x), INVERSION_CHUNK)])

    def _invert(self, x: torch.Tensor, labels: torch.Tensor | None, steps: int, starts: int,
                generator: torch.Generator) -> torch.Tensor:
        n, dim = len(x), self.config.latent_dim
        with torch.inference_mode(False), torch.enable_grad():  # clones: a caller's inference tensors cannot be saved
            conditions = self._mean_conditions(n * starts).to(x).clone() if self.categories is not None else None
            labels = labels.repeat(starts).clone() if labels is not None else None
            target = x.repeat(starts, *[1] * (x.dim() - 1)).clone()  # every start of every example, in one batch

            def errors(z: torch.Tensor) -> torch.Tensor:
                made = self.output.activate(self._generate(z, labels, conditions), noise=False)
                return (made - target).square().flatten(1).mean(1)

            z = torch.randn(starts * n, dim, generator=generator).to(x.device).requires_grad_(True)
            optimiser = torch.optim.Adam([z], lr=INVERSION_LR)
            for _ in range(steps):
                loss = (errors(z) + PRIOR_WEIGHT * z.square().mean(1)).sum()  # rows apart: each z its own loss
                z.grad, = torch.autograd.grad(loss, z)  # not backward(): no gradient lands on the weights
                optimiser.step()
            with torch.no_grad():
                best = errors(z).view(starts, n).argmin(0)
        return z.detach().view(starts, n, dim)[best, torch.arange(n, device=x.device)]

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None,
                          conditions: torch.Tensor | None) -> torch.Tensor:
        """(||grad D(x_hat)|| - 1)^2 on random points between real and generated examples (one point and
        one gradient norm per pack of rows, as PacGAN's critic sees them)."""
        mix = torch.rand(len(real) // self.pac, device=real.device).repeat_interleave(self.pac)
        mix = mix.view(-1, *[1] * (real.dim() - 1))
        x_hat = (mix * real + (1 - mix) * fake).requires_grad_(True)
        grad, = torch.autograd.grad(self.discriminator(x_hat, labels, conditions).sum(), x_hat, create_graph=True)
        return (grad.reshape(len(grad) // self.pac, -1).norm(dim=1) - 1).square().mean()

    def check_batch_size(self, batch_size: int) -> None:
        if batch_size < self.pac:
            raise GenloomError(f"a batch of {batch_size} rows holds no whole pack of {self.pac}; use a batch size "
                               f"(and data) of at least {self.pac} rows (CLI: --batch-size), or a smaller --pac")

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        wasserstein = self.config.loss == "wasserstein-gp"
        keep = len(x) - len(x) % self.pac  # whole packs only (check_batch_size saw to at least one)
        x, labels = x[:keep], labels[:keep] if labels is not None else None
        conditions = self.categories.for_rows(x) if self.categories is not None else None

        def fake_rows() -> tuple[torch.Tensor, torch.Tensor]:
            raw = self._generate(torch.randn(len(x), self.config.latent_dim, device=x.device), labels, conditions)
            return raw, self.output.activate(raw)

        r1 = self.config.r1_weight > 0
        for _ in range(self.config.d_steps):
            with torch.no_grad():
                fake = fake_rows()[1]
            real = x.detach().requires_grad_(True) if r1 else x
            real_score = self.discriminator(real, labels, conditions)
            fake_score = self.discriminator(fake, labels, conditions)
            logs = {"d_real": real_score.mean().item(), "d_fake": fake_score.mean().item()}
            if wasserstein:
                penalty = self._gradient_penalty(x, fake, labels, conditions)
                loss = fake_score.mean() - real_score.mean() + self.config.gp_weight * penalty
                logs["gradient_penalty"] = penalty.item()
            else:
                loss = F.softplus(-real_score).mean() + F.softplus(fake_score).mean()
            if r1:  # the critic's gradient on real examples (one per pack), pushed towards zero
                grad, = torch.autograd.grad(real_score.sum(), real, create_graph=True)
                penalty = grad.float().square().reshape(len(grad) // self.pac, -1).sum(1).mean()
                loss = loss + 0.5 * self.config.r1_weight * penalty
                logs["r1"] = penalty.item()
            yield "discriminator", loss, logs
        raw, fake = fake_rows()
        fake_score = self.discriminator(fake, labels, conditions)
        loss = -fake_score.mean() if wasserstein else F.softplus(-fake_score).mean()
        logs = {}
        if conditions is not None:  # CTGAN: the generated row must hold the category it was asked for
            miss = self.categories.cross_entropy(raw, conditions).mean()
            loss, logs = loss + miss, {"condition_loss": miss.item()}
        yield "generator", loss, logs

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator, options: None = None,
               given: Sequence[int] = (), on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
        """As CTGAN's sampling from conditions: a given category becomes every row's conditional vector."""
        device = next(self.generator.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(device)
        if self.conditional and labels is None:
            labels = torch.randint(self.layout.num_classes, (n,), generator=generator).to(device)
        samples = self.decode(z, labels, generator, given)
        on_pass()
        return samples


class WGANGP(GAN):
    """The GAN with the Wasserstein loss and gradient penalty as its defaults (families/configs.py)."""

    name = "wgan-gp"


class StyleGAN(GAN):
    """The GAN with a StyleGAN2-style generator (nets/style.py): mapping network, modulated convolutions, noise
    inputs and style mixing in training, R1 on the critic; samples take the truncation trick."""

    name = "stylegan"
    generator_role = "style decoder"

    @staticmethod
    def generator_options(config: StyleGANConfig) -> dict[str, Any]:
        return {"mapping_layers": config.mapping_layers, "mixing": config.style_mixing}

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator,
               options: StyleSampling | None = None, given: Sequence[int] = (),
               on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
        truncation = (options or StyleSampling()).truncation
        device = next(self.generator.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(device)
        if self.conditional and labels is None:
            labels = torch.randint(self.layout.num_classes, (n,), generator=generator).to(device)
        condition = self.label_embedding(labels) if self.conditional else None
        samples = self.output.activate(self.generator(z, condition, truncation))
        on_pass()
        return samples
