"""Noise schedules of diffusion models: beta_t per step and the cumulative alpha-bar_t."""
from __future__ import annotations

import math

import torch

from ..errors import GenloomError


class NoiseSchedule:
    """q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), with the betas of Ho et al. (linear) or
    Nichol & Dhariwal (cosine), in float64 and exactly as diffusers builds them."""

    def __init__(self, betas: torch.Tensor):
        self.betas = betas.to(torch.float64)
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)

    @property
    def steps(self) -> int:
        return len(self.betas)

    @classmethod
    def linear(cls, steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "NoiseSchedule":
        return cls(torch.linspace(beta_start, beta_end, steps, dtype=torch.float32))

    @classmethod
    def cosine(cls, steps: int = 1000, max_beta: float = 0.999) -> "NoiseSchedule":
        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = [min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), max_beta) for i in range(steps)]
        return cls(torch.tensor(betas, dtype=torch.float32))

    @classmethod
    def named(cls, name: str, steps: int = 1000) -> "NoiseSchedule":
        makers = {"linear": cls.linear, "cosine": cls.cosine}
        if name not in makers:
            raise GenloomError(f"unknown noise schedule '{name}'; use one of {', '.join(makers)}")
        return makers[name](steps)

    def predictions(self, x_t: torch.Tensor, output: torch.Tensor, t: int,
                    prediction: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's output at step t as (predicted x_0, predicted noise), for epsilon- or v-prediction;
        t < 0 stands for the clean data (abar = 1), where DDIM inversion starts."""
        abar = self.alphas_cumprod[t].to(x_t.dtype) if t >= 0 else torch.ones((), dtype=x_t.dtype)
        return predictions_at(x_t, output, abar, prediction)


def predictions_at(x_t: torch.Tensor, output: torch.Tensor, abar: torch.Tensor,
                   prediction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted x_0, predicted noise) from a network's output at the noise level abar (a scalar, or one per
    example shaped to broadcast over x_t)."""
    if prediction == "epsilon":
        return (x_t - (1 - abar).sqrt() * output) / abar.sqrt(), output
    if prediction == "v":  # Salimans & Ho 2022
        return abar.sqrt() * x_t - (1 - abar).sqrt() * output, abar.sqrt() * output + (1 - abar).sqrt() * x_t
    raise GenloomError(f"unknown prediction type '{prediction}'; use epsilon or v")
