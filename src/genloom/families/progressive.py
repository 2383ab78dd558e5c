"""Progressive distillation (Salimans & Ho 2022): a student learns to take in one DDIM step what its teacher takes
in two, so that a few halvings turn a 32-step sampler into a 4-step one. The student predicts v whatever its
teacher predicted: an epsilon model's x_0 at the noisiest step divides by sqrt(abar) ~ 5e-5, which a sampler of
many steps survives by clipping and a sampler of four cannot.

Written here rather than taken from diffusers, which ships distilled pipelines but no distillation trainer; the
steps are the paper's Algorithm 2 on the trailing grid (samplers.trailing_timesteps) that the student samples on."""
from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import torch

from .base import Family, FrozenReference, LossStep
from .diffusion import Diffusion
from .samplers import trailing_timesteps
from .schedules import predictions_at


class ProgressiveStage(Family):
    """One halving. The student's DDIM step from t to the next point of its `steps`-point grid is trained to land
    where two DDIM steps of the teacher land (on the grid of twice as many points); the loss is the squared error
    of the student's x_0 against the x_0 that would land there, weighted by max(SNR, 1) (the paper's truncated
    SNR weighting)."""

    name = "progressive-distillation"
    takes_given_rows = True  # as its student does

    def __init__(self, student: Diffusion, teacher: Diffusion, steps: int):
        super().__init__(student.layout, student.config)
        self.student, self.reference = student, FrozenReference(teacher)
        self.guidance = teacher.own_guidance  # the student learns the guided teacher, and samples unguided
        grid = trailing_timesteps(2 * steps, student.schedule.steps)  # the teacher's, noisiest first
        self.register_buffer("starts", grid[0::2], persistent=False)
        self.register_buffer("middles", grid[1::2], persistent=False)
        self.register_buffer("ends", torch.cat([grid[2::2], torch.tensor([-1])]), persistent=False)  # -1: clean
        # alpha-bar of every timestep, and 1 (the clean data) at index -1
        abar = torch.cat([student.schedule.alphas_cumprod, torch.ones(1, dtype=torch.float64)]).float()
        self.register_buffer("abar", abar, persistent=False)

    @property
    def teacher(self) -> Diffusion:
        return self.reference.module

    def _level(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """alpha-bar at each example's step, shaped to broadcast over x."""
        return self.abar[t].view(-1, *[1] * (x.dim() - 1))

    def _teacher_step(self, z: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
                      labels: torch.Tensor | None) -> torch.Tensor:
        """The teacher's DDIM step (eta = 0) from z at t to s, its x_0 clipped as its sampler clips it."""
        abar_t, abar_s = self._level(t, z), self._level(s, z)
        output = self.teacher.denoise(z, t, labels, self.guidance)
        x0, eps = predictions_at(z, output, abar_t, self.teacher.config.prediction)
        if self.layout.bounded:
            x0 = x0.clamp(-1, 1)
        return abar_s.sqrt() * x0 + (1 - abar_s).sqrt() * eps

    def distillation_loss(self, x: torch.Tensor, labels: torch.Tensor | None,
                          generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-example loss at a random step of the student's grid (from `generator`, for a fixed held-out score)."""
        self.check_given(labels)
        pick = torch.randint(len(self.starts), (len(x),), generator=generator).to(x.device)
        noise = torch.randn(x.shape, generator=generator).to(x) if generator is not None else torch.randn_like(x)
        t, middle, end = self.starts[pick], self.middles[pick], self.ends[pick]
        abar_t, abar_end = self._level(t, x), self._level(end, x)
        z = abar_t.sqrt() * x + (1 - abar_t).sqrt() * noise
        with torch.no_grad():
            landed = self._teacher_step(self._teacher_step(z, t, middle, labels), middle, end, labels)
            # the x_0 whose DDIM step from z lands there: z_end = a_e x0 + s_e (z - a_t x0) / s_t, solved for x0
            ratio = ((1 - abar_end) / (1 - abar_t)).sqrt()
            target = (landed - ratio * z) / (abar_end.sqrt() - ratio * abar_t.sqrt())
        output = self.student.denoise(z, t, labels, 1.0)
        x0, _ = predictions_at(z, output, abar_t, self.student.config.prediction)
        weight = (abar_t / (1 - abar_t)).clamp(min=1).flatten()
        return weight * (x0.float() - target.float()).square().flatten(1).mean(1)

    def losses(self, x: torch.Tensor, labels: torch.Tensor | None) -> Iterator[LossStep]:
        yield "model", self.distillation_loss(x, labels).mean(), {}

    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        loss = self.distillation_loss(x, labels, torch.Generator().manual_seed(0))
        return {"distillation_loss": loss.mean().item()}

    def sampling_passes(self, options: Any = None) -> int:
        """The student's."""
        return self.student.sampling_passes(options)

    def sample(self, n: int, labels: torch.Tensor | None, generator: torch.Generator, options: Any = None,
               given: Sequence[int] = (), on_pass: Callable[[], None] = lambda: None) -> torch.Tensor:
        """The student's samples."""
        return self.student.sample(n, labels, generator, options, given, on_pass)
