"""Denoising diffusion (Ho et al. 2020): learn to undo Gaussian noise at every level, then sample by walking
from noise to data with DDPM, DDIM or DPM-Solver++; classifier-free guidance (Ho & Salimans 2022) steers a
conditional model towards its labels. On tables, as TabDDPM: Gaussian diffusion on the continuous values
(quantile-transformed by the codec) and multinomial diffusion on the one-hot spans, one MLP denoising both."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Iterator, Sequence

import torch

from ..errors import GenloomError
from ..layout import Layout
from ..nets import build_backbone
from .base import Family, LossStep, register_family
from .multinomial import MultinomialDiffusion
from .samplers import DDIMSampler, DDPMSampler, DPMSolverSampler
from .schedules import NoiseSchedule

PREDICTIONS = ("epsilon", "v")
TABLE_SAMPLE_STEPS = 100


@dataclass
class DiffusionConfig:
    schedule: str = "cosine"          # noise schedule: "linear" (DDPM) or "cosine" (improved DDPM)
    timesteps: int = 1000             # noise levels in training
    prediction: str = "epsilon"       # what the network predicts: the noise, or v (Salimans & Ho 2022)
    width: int = 32                   # U-Net channels at full resolution (twice that below)
    res_blocks: int = 1               # residual blocks per resolution
    depth: int | None = None          # halvings in the U-Net (default: as many as fit, at most 3)
    attention: bool = True            # self-attention at the lowest resolution
    dropout: float = 0.0
    conditional: bool = False         # class-conditional, with classifier-free guidance at sampling
    label_dropout: float = 0.1        # share of training labels replaced by "no class" (conditional only)

    def check(self) -> None:
        if self.prediction not in PREDICTIONS:
            raise GenloomError(f"unknown prediction '{self.prediction}'; use one of {', '.join(PREDICTIONS)}")
        NoiseSchedule.named(self.schedule, 2)
        if self.timesteps < 2 or self.width < 1 or self.res_blocks < 1:
            raise GenloomError("timesteps must be at least 2, width and res_blocks at least 1")
        if not 0 <= self.label_dropout < 1 or not 0 <= self.dropout < 1:
            raise GenloomError("label_dropout and dropout must lie in [0, 1)")


SAMPLERS: dict[str, Callable[..., object]] = {
    "ddpm": lambda schedule, prediction, eta: DDPMSampler(schedule, prediction),
    "ddim": lambda schedule, prediction, eta: DDIMSampler(schedule, prediction, eta=eta),
    "dpm-solver": lambda schedule, prediction, eta: DPMSolverSampler(schedule, prediction),
}


@dataclass
class DiffusionSampling:
    # "ddpm" (ancestral), "ddim" or "dpm-solver" (DPM-Solver++ 2M); default dpm-solver for images, ddpm for
    # tables, whose categories come out better from 100 small steps than from 20 large ones (benchmarked)
    sampler: str | None = None
    steps: int | None = None          # network evaluations (default: 20; images with ddpm: every timestep; tables: 100)
    eta: float = 0.0                  # DDIM's noise: 0 deterministic, 1 as DDPM
    guidance: float = 1.0             # classifier-free guidance scale; 1 = plain conditional sampling

    def check(self) -> None:
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise GenloomError(f"unknown sampler '{self.sampler}'; use one of {', '.join(SAMPLERS)}")
        if self.eta != 0 and self.sampler != "ddim":
            raise GenloomError("eta applies to the ddim sampler only")
        if not self.guidance >= 0:
            raise GenloomError(f"guidance must be >= 0; got {self.guidance}")


@register_family
class Diffusion(Family):
    """A denoiser eps(x_t, t, y) trained with the simple MSE loss at uniformly drawn noise levels."""

    name = "diffusion"
    Config = DiffusionConfig
    SampleOptions = DiffusionSampling
    train_defaults: ClassVar[dict] = {"lr": 1e-3, "ema_decay": 0.999, "warmup_steps": 100}
    codec_defaults_by_kind: ClassVar[dict[str, dict]] = {"table": {"numbers": "quantile"}}

    def __init__(self, layout: Layout, config: DiffusionConfig):
        super().__init__(layout, config)
        self.schedule = NoiseSchedule.named(config.schedule, config.timesteps)
        self.denoiser = build_backbone("denoiser", layout, width=config.width, res_blocks=config.res_blocks,
                                       levels=config.depth, attention=config.attention, dropout=config.dropout,
                                       num_classes=layout.num_classes if self.conditional else 0)
        self.register_buffer("alphas_cumprod", self.schedule.alphas_cumprod.float(), persistent=False)
        # one-hot spans of a table diffuse multinomially; everything else (all of an image) is Gaussian
        in_one_hot = torch.tensor([kind != "continuous" for kind, width in layout.spans for _ in range(width)],
                                  dtype=torch.bool)
        positions = torch.arange(len(in_one_hot))
        self.register_buffer("continuous_positions", positions[~in_one_hot], persistent=False)
        self.register_buffer("one_hot_positions", positions[in_one_hot], persistent=False)
        widths = [width for (kind, width) in layout.spans if kind != "continuous"]
        self.categories = MultinomialDiffusion(self.schedule, widths) if widths else None

    @property
    def no_class(self) -> int:
        """The label id meaning "unconditional"."""
        return self.layout.num_classes

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

    def noise_loss(self, x: torch.Tensor, labels: torch.Tensor | None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-example loss at a random noise level: the MSE of the Gaussian part's prediction, plus the
        multinomial part's KL on a table's one-hot spans."""
        continuous, one_hot = self._split(x)
        if generator is None:
            t = torch.randint(self.config.timesteps, (len(x),), device=x.device)
            noise = torch.randn_like(continuous)
        else:  # a fixed CPU generator: the same held-out score on every device
            t = torch.randint(self.config.timesteps, (len(x),), generator=generator).to(x.device)
            noise = torch.randn(continuous.shape, generator=generator).to(x)
        noisy, target = self.corrupt(continuous, noise, t)
        noisy_one_hot = self.categories.corrupt(one_hot, t, generator) if one_hot is not None else None
        if self.conditional and self.training:
            dropped = torch.rand(len(x), device=x.device) < self.config.label_dropout
            labels = labels.masked_fill(dropped, self.no_class)
        output, logits = self._split(self.denoiser(self._join(noisy, noisy_one_hot), t, labels))
        loss = (output.float() - target.float()).square().flatten(1).mean(1) if output.shape[1] else 0
        if one_hot is not None:
            loss = loss + self.categories.loss(one_hot, noisy_one_hot, logits, t)
        return loss

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        yield "model", self.noise_loss(x, labels).mean(), {}

    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        loss = self.noise_loss(x, labels, torch.Generator().manual_seed(0))
        return {"denoising_loss": loss.mean().item()}

    def _denoise(self, x: torch.Tensor, t: int, labels: torch.Tensor | None, guidance: float) -> torch.Tensor:
        """The network's output at step t, guided: uncond + s (cond - uncond) in one doubled batch."""
        steps = torch.full((len(x),), t, device=x.device, dtype=torch.long)
        if labels is None or guidance == 1.0:
            return self.denoiser(x, steps, labels)
        unconditional = torch.full_like(labels, self.no_class)
        cond, uncond = self.denoiser(x.repeat(2, *[1] * (x.dim() - 1)), steps.repeat(2),
                                     torch.cat([labels, unconditional])).chunk(2)
        return uncond + guidance * (cond - uncond)

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator,
               options: DiffusionSampling | None = None, given: Sequence[int] = ()) -> torch.Tensor:
        options = options or DiffusionSampling()
        if options.guidance != 1.0 and not (self.conditional and self.config.label_dropout > 0):
            raise GenloomError("guidance needs a conditional model trained with label_dropout > 0 (train with "
                               "conditional=True, CLI --conditional); with this one, leave guidance at 1")
        device = self.alphas_cumprod.device
        if self.conditional and labels is None:
            labels = torch.randint(self.layout.num_classes, (n,), generator=generator).to(device)
        table = self.layout.kind == "table"
        name = options.sampler or ("ddpm" if table else "dpm-solver")
        sampler = SAMPLERS[name](self.schedule, self.config.prediction, options.eta)
        default_steps = TABLE_SAMPLE_STEPS if table else (self.config.timesteps if name == "ddpm" else 20)
        steps = options.steps if options.steps is not None else min(default_steps, self.config.timesteps)
        shape = self.layout.shape if self.categories is None else (len(self.continuous_positions),)
        continuous = torch.randn(n, *shape, generator=generator).to(device)
        one_hot = self.categories.prior(n, generator).to(device) if self.categories is not None else None
        timesteps = sampler.timesteps(steps).tolist()
        for t, s in zip(timesteps, [*timesteps[1:], -1]):
            output, logits = self._split(self._denoise(self._join(continuous, one_hot), t, labels, options.guidance))
            continuous = sampler.step(output, t, continuous, generator)
            if one_hot is not None:
                one_hot = self.categories.step(one_hot, logits, t, s, generator)
        return self._join(continuous, one_hot).clamp(-1, 1)
