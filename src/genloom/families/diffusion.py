"""Denoising diffusion (Ho et al. 2020): learn to undo Gaussian noise at every level, then sample by walking
from noise to data with DDPM, DDIM or DPM-Solver++; classifier-free guidance (Ho & Salimans 2022) steers a
conditional model towards its labels. On tables, as TabDDPM: Gaussian diffusion on the continuous values
(quantile-transformed by the codec) and multinomial diffusion on the one-hot spans, one MLP denoising both.
Its latent space is the noise: encode is deterministic DDIM inversion (data to noise), decode DDIM sampling
with eta = 0 (noise to data), both on default_steps("ddim") steps and without clipping x_0."""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch

from ..errors import GenloomError
from ..layout import Layout
from ..nets import build_backbone
from .base import Family, LossStep
from .configs import DiffusionConfig, DiffusionSampling
from .multinomial import MultinomialDiffusion
from .samplers import DDIMSampler, DDPMSampler, DPMSolverSampler
from .schedules import NoiseSchedule

ANOMALY_LEVELS = 20  # noise levels an anomaly score averages the denoising loss over

# each takes (schedule, prediction, eta, clip, spacing): clip x_0 to [-1, 1] where the data lies there (not
# latents); DPM-Solver++ always starts at the noisiest step
SAMPLERS: dict[str, Callable[..., object]] = {
    "ddpm": lambda schedule, prediction, eta, clip, spacing: DDPMSampler(schedule, prediction, clip, spacing),
    "ddim": lambda schedule, prediction, eta, clip, spacing: DDIMSampler(schedule, prediction, eta, clip, spacing),
    "dpm-solver": lambda schedule, prediction, eta, clip, spacing: DPMSolverSampler(schedule, prediction, clip),
    "dpm-solver-sde": lambda schedule, prediction, eta, clip, spacing: DPMSolverSampler(schedule, prediction, clip,
                                                                                        stochastic=True),
}


class Diffusion(Family):
    """A denoiser eps(x_t, t, y) trained with the simple MSE loss at uniformly drawn noise levels."""

    name = "diffusion"
    takes_given_rows = True
    tools = frozenset({"encode", "decode", "anomaly_score"})
    anomaly_measure = f"denoising error averaged over {ANOMALY_LEVELS} noise levels"

    def __init__(self, layout: Layout, config: DiffusionConfig):
        super().__init__(layout, config)
        self.schedule = NoiseSchedule.named(config.schedule, config.timesteps)
        self.denoiser = build_backbone("denoiser", layout, width=config.width, res_blocks=config.res_blocks,
                                       levels=config.depth, attention=config.attention, dropout=config.dropout,
                                       num_classes=layout.num_classes if self.conditional else 0)
        self.register_buffer("alphas_cumprod", self.schedule.alphas_cumprod.float(), persistent=False)
        # one-hot spans of a table diffuse multinomially; everything else (all of an image) is Gaussian
        in_one_hot = torch.tensor([span.one_hot for span in layout.spans for _ in range(span.width)],
                                  dtype=torch.bool)
        positions = torch.arange(len(in_one_hot))
        self.register_buffer("continuous_positions", positions[~in_one_hot], persistent=False)
        self.register_buffer("one_hot_positions", positions[in_one_hot], persistent=False)
        widths = [span.width for span in layout.spans if span.one_hot]
        self.categories = MultinomialDiffusion(self.schedule, widths) if widths else None

    @property
    def no_class(self) -> int:
        """The label id meaning "unconditional"."""
        return self.layout.num_classes

    @property
    def own_guidance(self) -> float:
        """The guidance it samples with when none is asked: its config's, where it learnt to be guided."""
        return self.config.guidance if self.conditional and self.config.label_dropout > 0 else 1.0

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(Gaussian part, one-hot part) of examples: all of an image; a table row's two kinds of values."""
        if self.categories is None:
            return x, None
        return x[:, self.continuous_positions], x[:, self.one_hot_positions]

    def _join(self, continuous: torch.Tensor, one_hot: torch.Tensor | None) -> torch.Tensor:
        if one_hot is None:
            return continuous
        x = continuous.new_empty(len(continuous), self.layout.shape[0])
        x[:, self.continuous_positions], x[:, self.one_hot_positions] = continuous, one_hot
        return x

    def corrupt(self, x: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x_t drawn from q(x_t | x_0) with the given noise, and what the network should answer there."""
        abar = self.alphas_cumprod[t].view(-1, *[1] * (x.dim() - 1))
        x_t = abar.sqrt() * x + (1 - abar).sqrt() * noise
        return x_t, noise if self.config.prediction == "epsilon" else abar.sqrt() * noise - (1 - abar).sqrt() * x

    def noise_loss(self, x: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator | None = None,
                   t: torch.Tensor | None = None) -> torch.Tensor:
        """Per-example loss at a random noise level (or at `t`): the MSE of the Gaussian part's prediction, plus
        the multinomial part's KL on a table's one-hot spans."""
        self.check_given(labels)
        continuous, one_hot = self._split(x)
        if generator is None:
            t = torch.randint(self.config.timesteps, (len(x),), device=x.device) if t is None else t
            noise = torch.randn_like(continuous)
        else:  # a fixed CPU generator: the same held-out score on every device
            t = torch.randint(self.config.timesteps, (len(x),), generator=generator).to(x.device) if t is None else t
            noise = torch.randn(continuous.shape, generator=generator).to(x)
        noisy, target = self.corrupt(continuous, noise, t)
        noisy_one_hot = self.categories.corrupt(one_hot, t, generator) if one_hot is not None else None
        if self.conditional and self.training:
            dropped = torch.rand(len(x), device=x.device) < self.config.label_dropout
            labels = labels.masked_fill(dropped, self.no_class)
        if self.given_rows and self.training and self.config.condition_noise:
            labels = labels + self.config.condition_noise * torch.randn_like(labels)
        output, logits = self._split(self.denoiser(self._join(noisy, noisy_one_hot), t, labels))
        loss = (output.float() - target.float()).square().flatten(1).mean(1) if output.shape[1] else 0
        if one_hot is not None:
            loss = loss + self.categories.loss(one_hot, noisy_one_hot, logits, t)
        return loss

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        yield "model", self.noise_loss(x, labels).mean(), {}

    def anomaly_score(self, x: torch.Tensor, labels: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """The denoising loss averaged over ANOMALY_LEVELS noise levels spread over the schedule, with fixed noise:
        what the denoiser finds hard to denoise is unlike what it learnt (the ELBO is a weighted sum of these
        losses; unweighted, they are in the training loss's units, not nats)."""
        levels = torch.linspace(0, self.config.timesteps - 1, ANOMALY_LEVELS).round().long().tolist()
        return torch.stack([self.noise_loss(x, labels, generator, torch.full((len(x),), level, device=x.device))
                            for level in levels]).mean(0)

    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        loss = self.noise_loss(x, labels, torch.Generator().manual_seed(0))
        return {"denoising_loss": loss.mean().item()}

    def default_steps(self, sampler: str) -> int:
        """Network evaluations when none are asked: the run's sample_steps, else 20 (every timestep for
        ddpm); never more than the timesteps it was trained with."""
        steps = self.config.sample_steps or (self.config.timesteps if sampler == "ddpm" else 20)
        return min(steps, self.config.timesteps)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return tuple(self.layout.shape)

    def _ddim(self, steps: int | None) -> tuple[DDIMSampler, list[int]]:
        """The deterministic DDIM sampler of the latent tools and its timesteps, noisiest first. It does not clip
        its x_0 predictions as sampling does: clipping maps many points to one and has no inverse (on a small
        digits model it made the round trip's error 10 to 60 times larger)."""
        if self.categories is not None:
            raise GenloomError("a diffusion model's encode and decode need a table without category columns: the "
                               "categories diffuse multinomially, which has no deterministic inverse; use a VAE "
                               "(or a GAN) for this table's latent space")
        sampler = DDIMSampler(self.schedule, self.config.prediction, eta=0.0, clip=False,
                              spacing=self.config.timestep_spacing)
        return sampler, sampler.timesteps(steps or self.default_steps("ddim")).tolist()

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None, steps: int | None = None) -> torch.Tensor:
        """DDIM inversion (eta = 0): the noise that `decode` walks back to (nearly) x, of x's shape, on the steps
        `sample(sampler="ddim")` takes by default (or `steps`). Each step evaluates the network at the point it
        leaves rather than the one it reaches, so the round trip is close, not exact."""
        self.check_given(labels)
        sampler, timesteps = self._ddim(steps)
        for t in reversed(timesteps):
            x = sampler.invert_step(self.denoise(x, t, labels, 1.0), t, x)
        return x

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None, steps: int | None = None) -> torch.Tensor:
        """Examples sampled by DDIM with eta = 0 from the noise z: what `sample(sampler="ddim", eta=0)` makes
        when it draws z, but for its clipping of x_0."""
        self.check_given(labels)
        sampler, timesteps = self._ddim(steps)
        return self._walk(sampler, timesteps, z, None, labels, 1.0, None)

    def denoise(self, x: torch.Tensor, t: int | torch.Tensor, labels: torch.Tensor | None,
                guidance: float) -> torch.Tensor:
        """The network's output at step t (one for all, or one per example), guided: uncond + s (cond - uncond)
        in one doubled batch."""
        steps = torch.full((len(x),), t, device=x.device, dtype=torch.long) if isinstance(t, int) else t
        if labels is None or guidance == 1.0:
            return self.denoiser(x, steps, labels)
        unconditional = torch.full_like(labels, self.no_class)
        cond, uncond = self.denoiser(x.repeat(2, *[1] * (x.dim() - 1)), steps.repeat(2),
                                     torch.cat([labels, unconditional])).chunk(2)
        return uncond + guidance * (cond - uncond)

    def sampling_passes(self, options: DiffusionSampling | None = None) -> int:
        options = options or DiffusionSampling()
        if options.steps is not None:
            return options.steps
        return self.default_steps(options.sampler or self.config.sampler)

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator,
               options: DiffusionSampling | None = None, given: Sequence[int] = (),
               on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
        options = options or DiffusionSampling()
        self.check_given(labels)
        if options.guidance not in (None, 1.0) and not (self.conditional and self.config.label_dropout > 0):
            raise GenloomError("guidance needs a conditional model trained with label_dropout > 0 (train with "
                               "conditional=True, CLI --conditional); with this one, leave guidance at 1")
        guidance = self.own_guidance if options.guidance is None else options.guidance
        device = self.alphas_cumprod.device
        if self.conditional and labels is None:
            labels = torch.randint(self.layout.num_classes, (n,), generator=generator).to(device)
        name = options.sampler or self.config.sampler
        sampler = SAMPLERS[name](self.schedule, self.config.prediction, options.eta, self.layout.bounded,
                                 self.config.timestep_spacing)
        steps = options.steps if options.steps is not None else self.default_steps(name)
        shape = self.layout.shape if self.categories is None else (len(self.continuous_positions),)
        continuous = torch.randn(n, *shape, generator=generator).to(device)
        one_hot = self.categories.prior(n, generator).to(device) if self.categories is not None else None
        return self._walk(sampler, sampler.timesteps(steps).tolist(), continuous, one_hot, labels, guidance,
                          generator, on_pass)

    def _walk(self, sampler: DDPMSampler | DDIMSampler | DPMSolverSampler, timesteps: list[int],
              continuous: torch.Tensor, one_hot: torch.Tensor | None, labels: torch.Tensor | None, guidance: float,
              generator: torch.Generator | None, on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
        """From noise at the first of `timesteps` to data, one sampler step (and multinomial step) per timestep."""
        for t, s in zip(timesteps, [*timesteps[1:], -1]):
            output, logits = self._split(self.denoise(self._join(continuous, one_hot), t, labels, guidance))
            continuous = sampler.step(output, t, continuous, generator)
            if one_hot is not None:
                one_hot = self.categories.step(one_hot, logits, t, s, generator)
            on_pass()
        x = self._join(continuous, one_hot)
        return x.clamp(-1, 1) if self.layout.bounded else x
