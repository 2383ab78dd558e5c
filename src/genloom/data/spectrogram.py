"""Mel spectrograms of waveforms and their phase-free inversion (Griffin & Lim 1984, with the momentum of Perraudin
et al. 2013), in torch. By hand rather than with librosa, whose numba-compiled STFT costs some 20 s on the first
call in every process (measured here), longer than a short training budget; the tests hold these to librosa's
filter bank and Griffin-Lim."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

MIN_POWER = 1e-10  # the floor under a power before its logarithm


def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """The HTK mel scale (O'Shaughnessy 1987)."""
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@dataclass(frozen=True)
class MelScale:
    """Log-mel analysis at `rate`: frames of `n_fft` samples every `hop`, `mels` triangular bands from 0 Hz to
    half the rate. A signal of L samples (L a multiple of hop) gives L / hop frames."""

    rate: int
    hop: int = 128
    n_fft: int = 512
    mels: int = 32

    @cached_property
    def filterbank(self) -> torch.Tensor:
        """(mels, n_fft // 2 + 1) triangles, each rising from its lower neighbour's centre to its own and falling to
        its upper neighbour's, with a peak of 1 (librosa's filters.mel with htk=True, norm=None)."""
        bins = torch.linspace(0, self.rate / 2, self.n_fft // 2 + 1, dtype=torch.float64)
        edges = mel_to_hz(torch.linspace(0, float(hz_to_mel(torch.tensor(self.rate / 2.0))), self.mels + 2,
                                         dtype=torch.float64))
        lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
        rising, falling = (bins - lower) / (centre - lower), (upper - bins) / (upper - centre)
        return torch.minimum(rising, falling).clamp_min(0).float()

    def _window(self, device: torch.device) -> torch.Tensor:
        return torch.hann_window(self.n_fft, periodic=True, device=device)

    def _stft(self, waves: torch.Tensor) -> torch.Tensor:
        return torch.stft(waves, self.n_fft, self.hop, window=self._window(waves.device), center=True,
                          pad_mode="constant", return_complex=True)

    def power(self, waves: torch.Tensor) -> torch.Tensor:
        """(N, L) waveforms -> (N, L // hop, mels) mel power (the last, half-padded frame dropped)."""
        spectrum = self._stft(waves.float()).abs().square()[..., :waves.shape[-1] // self.hop]
        return (self.filterbank.to(waves.device) @ spectrum).transpose(1, 2)

    def decibels(self, waves: torch.Tensor) -> torch.Tensor:
        """(N, L) waveforms -> (N, L // hop, mels) log-mel power in dB."""
        return 10 * torch.log10(self.power(waves).clamp_min(MIN_POWER))

    def magnitudes(self, power: torch.Tensor) -> torch.Tensor:
        """(N, frames, mels) mel power -> (N, n_fft // 2 + 1, frames + 1) linear magnitudes: the least-squares
        inverse of the filter bank, clipped at 0 (librosa's mel_to_stft solves it with NNLS, slower), with the
        dropped last frame repeated."""
        inverse = torch.linalg.pinv(self.filterbank.to(power.device))
        magnitude = (inverse @ power.transpose(1, 2).float()).clamp_min(0).sqrt()
        return torch.cat([magnitude, magnitude[..., -1:]], dim=2)

    def griffin_lim(self, magnitudes: torch.Tensor, length: int, iterations: int = 32,
                    momentum: float = 0.99) -> torch.Tensor:
        """Waveforms (N, length) whose STFT magnitudes approach `magnitudes`, from zero phase (librosa's
        griffinlim with init=None)."""
        window = self._window(magnitudes.device)
        angles = torch.ones_like(magnitudes, dtype=torch.complex64)
        rebuilt = torch.zeros_like(angles)

        def inverse(phased: torch.Tensor) -> torch.Tensor:
            return torch.istft(phased, self.n_fft, self.hop, window=window, center=True, length=length)

        for _ in range(iterations):
            previous = rebuilt
            rebuilt = self._stft(inverse(magnitudes * angles))
            angles = rebuilt - (momentum / (1 + momentum)) * previous
            angles = angles / (angles.abs() + 1e-16)
        return inverse(magnitudes * angles)

    def waves(self, decibels: torch.Tensor, length: int, iterations: int = 32) -> torch.Tensor:
        """(N, frames, mels) log-mel power in dB -> (N, length) waveforms, by Griffin-Lim."""
        power = 10 ** (decibels.float() / 10)
        return self.griffin_lim(self.magnitudes(power), length, iterations)
