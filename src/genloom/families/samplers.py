"""Diffusion samplers with one contract, as diffusers' schedulers: `timesteps(n)` and `step(output, t, x)`.
Their tensors and single steps equal diffusers' DDPMScheduler and DDIMScheduler (tested)."""
from __future__ import annotations

import torch

from ..errors import GenloomError
from .schedules import NoiseSchedule


def _check_count(count: int, schedule: NoiseSchedule) -> None:
    if not 1 <= count <= schedule.steps:
        raise GenloomError(f"sampler steps must lie in 1..{schedule.steps}; got {count}")


class _EvenlySpaced:
    """Steps (steps // count) apart, as diffusers' timestep_spacing names them: 'leading' ends at 0 and starts
    below the noisiest step; 'trailing' starts at the noisiest step (Lin et al. 2024), from noise the model has
    seen there, which matters when the steps are few (a distilled student's)."""

    schedule: NoiseSchedule
    spacing: str
    step_size = 1
    next_on_grid: dict[int, int] = {}  # each timestep's successor (-1: the clean data), once timesteps() has run

    def timesteps(self, count: int | None = None) -> torch.Tensor:
        count = self.schedule.steps if count is None else count
        _check_count(count, self.schedule)
        self.step_size = self.schedule.steps // count
        grid = (trailing_timesteps(count, self.schedule.steps) if self.spacing == "trailing" else
                torch.arange(0, count).mul(self.step_size).flip(0))
        self.next_on_grid = dict(zip(grid.tolist(), [*grid[1:].tolist(), -1]))
        return grid


def trailing_timesteps(count: int, steps: int) -> torch.Tensor:
    """round(k * steps / count) - 1 for k = count .. 1: the noisiest step first; each grid holds the grid of
    half as many steps at its even places."""
    return (torch.arange(count, 0, -1, dtype=torch.float64) * steps / count).round().long() - 1


class DDPMSampler(_EvenlySpaced):
    """Ancestral sampling (Ho et al. 2020) with the 'fixed small' posterior variance; x_0 clipped to [-1, 1]."""

    def __init__(self, schedule: NoiseSchedule, prediction: str = "epsilon", clip: bool = True,
                 spacing: str = "leading"):
        self.schedule, self.prediction, self.clip, self.spacing = schedule, prediction, clip, spacing

    def step(self, output: torch.Tensor, t: int, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        abar = self.schedule.alphas_cumprod.to(x.dtype)
        prev = self.next_on_grid.get(t, t - self.step_size)  # as diffusers' DDPM; its DDIM steps by step_size
        abar_t, abar_prev = abar[t], (abar[prev] if prev >= 0 else torch.ones((), dtype=x.dtype))
        alpha_t = abar_t / abar_prev
        x0, _ = self.schedule.predictions(x, output, t, self.prediction)
        if self.clip:
            x0 = x0.clamp(-1, 1)
        mean = ((abar_prev.sqrt() * (1 - alpha_t) / (1 - abar_t)) * x0
                + (alpha_t.sqrt() * (1 - abar_prev) / (1 - abar_t)) * x)
        if t == 0:
            return mean
        variance = ((1 - abar_prev) / (1 - abar_t) * (1 - alpha_t)).clamp(min=1e-20)
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return mean + variance.sqrt() * noise


class DDIMSampler(_EvenlySpaced):
    """Deterministic (eta = 0) or stochastic DDIM sampling (Song et al. 2021) on evenly spaced steps, and
    deterministic DDIM inversion, data to noise on the same steps (`invert_step`, as diffusers'
    DDIMInverseScheduler)."""

    def __init__(self, schedule: NoiseSchedule, prediction: str = "epsilon", eta: float = 0.0, clip: bool = True,
                 spacing: str = "leading"):
        if eta < 0:
            raise GenloomError(f"eta must be >= 0; got {eta}")
        self.schedule, self.prediction, self.eta, self.clip, self.spacing = schedule, prediction, eta, clip, spacing

    def step(self, output: torch.Tensor, t: int, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        abar = self.schedule.alphas_cumprod.to(x.dtype)
        prev = self.previous(t)
        abar_t, abar_prev = abar[t], (abar[prev] if prev >= 0 else torch.ones((), dtype=x.dtype))
        x0, eps = self.schedule.predictions(x, output, t, self.prediction)
        if self.clip:
            x0 = x0.clamp(-1, 1)
        std = self.eta * ((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)).sqrt()
        x_prev = self._towards(x0, eps, abar_prev, std)
        if self.eta > 0:
            x_prev = x_prev + std * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return x_prev

    def previous(self, t: int) -> int:
        """The step after t (-1: the clean data). diffusers' DDIM steps by steps // count even where its trailing
        grid's steps differ by one (count not dividing the steps); on the trailing grid this one keeps to the grid,
        where a distilled student learnt its steps."""
        return self.next_on_grid.get(t, t - self.step_size) if self.spacing == "trailing" else t - self.step_size

    def invert_step(self, output: torch.Tensor, t: int, x: torch.Tensor) -> torch.Tensor:
        """x at the step before t (the clean data before step 0) moved up to step t, with the network's
        output at t for x: the step's deterministic update run backwards, exact as the step size goes to 0."""
        x0, eps = self.schedule.predictions(x, output, self.previous(t), self.prediction)
        if self.clip:
            x0 = x0.clamp(-1, 1)
        return self._towards(x0, eps, self.schedule.alphas_cumprod[t].to(x.dtype))

    @staticmethod
    def _towards(x0: torch.Tensor, eps: torch.Tensor, abar: torch.Tensor,
                 std: torch.Tensor | float = 0.0) -> torch.Tensor:
        """The DDIM update: predicted x_0 and noise recombined at the noise level abar (less the fresh noise)."""
        return abar.sqrt() * x0 + (1 - abar - std ** 2).sqrt() * eps


class DPMSolverSampler:
    """DPM-Solver++(2M) (Lu et al. 2022): a second-order multistep solver in log-SNR time, good in 10-25
    steps; first order at the first and the last step, and the last step lands on sigma = 0. With `clip`,
    x_0 predictions are clipped to [-1, 1] (static thresholding): at the noisiest step of a cosine
    schedule an epsilon-model's x_0 divides by sqrt(abar) ~ 1e-3, and unclipped it wrecks the samples.
    `stochastic` solves the reverse SDE instead of the probability-flow ODE (SDE-DPM-Solver++(2M), diffusers'
    "sde-dpmsolver++"): fresh noise each step corrects a model's errors as ancestral sampling does, where the
    deterministic path keeps them (benchmarks/few_step.py)."""

    def __init__(self, schedule: NoiseSchedule, prediction: str = "epsilon", clip: bool = True,
                 stochastic: bool = False):
        self.schedule, self.prediction, self.clip, self.stochastic = schedule, prediction, clip, stochastic
        self._steps: list[int] = []
        self._x0_history: list[torch.Tensor] = []

    def timesteps(self, count: int) -> torch.Tensor:
        _check_count(count, self.schedule)
        steps = torch.linspace(0, self.schedule.steps - 1, count + 1, dtype=torch.float64).round().flip(0)[:-1]
        self._steps, self._x0_history = steps.long().tolist(), []
        return steps.long()

    def _alpha_sigma(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """sqrt(abar) and sqrt(1 - abar) at the index-th step; past the last step, the clean image."""
        if index >= len(self._steps):
            return torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)
        abar = self.schedule.alphas_cumprod[self._steps[index]]
        return abar.sqrt(), (1 - abar).sqrt()

    def step(self, output: torch.Tensor, t: int, x: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        if not self._steps:
            raise GenloomError("call timesteps(count) before step()")
        index = self._steps.index(t)
        x0, _ = self.schedule.predictions(x, output, t, self.prediction)
        if self.clip:
            x0 = x0.clamp(-1, 1)
        self._x0_history = [*self._x0_history[-1:], x0]
        (alpha_t, sigma_t), (alpha_s, sigma_s) = self._alpha_sigma(index + 1), self._alpha_sigma(index)
        lambda_t, lambda_s = alpha_t.log() - sigma_t.log(), alpha_s.log() - sigma_s.log()
        h = lambda_t - lambda_s
        first_order = index == 0 or index == len(self._steps) - 1
        derivative = x0
        if not first_order:  # the 2M correction from the previous x_0 prediction
            alpha_p, sigma_p = self._alpha_sigma(index - 1)
            ratio = (lambda_s - (alpha_p.log() - sigma_p.log())) / h
            derivative = x0 + 0.5 / ratio * (x0 - self._x0_history[0])
        if not self.stochastic:
            return ((sigma_t / sigma_s) * x - alpha_t * torch.expm1(-h) * derivative).to(x.dtype)
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        kept = -torch.expm1(-2 * h)  # 1 - exp(-2h): the share of x's noise replaced by fresh noise
        return ((sigma_t / sigma_s) * (-h).exp() * x + alpha_t * kept * derivative
                + sigma_t * kept.sqrt() * noise).to(x.dtype)
