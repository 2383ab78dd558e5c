"""How a numerical column becomes values a network can learn: CTGAN's modes, TabDDPM's quantiles, or the column's
own scale (for anomaly scores). Each
normaliser fits a typed state on the present values, encodes/decodes blocks of the tabular codec, and gives the
column's spread (what a value past the training range moves its encoding by)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from ..layout import Span

MAX_MODES, MIN_MODE_WEIGHT, GMM_ROWS = 10, 0.005, 20_000
# variational EM rounds: CTGAN's 100, fewer on many rows, whose posteriors sharpen in fewer rounds (rounds x rows
# at most GMM_ROW_ROUNDS): on Adult's six numerical columns (20,000 rows) 20 rounds keep the modes 100 keep and the
# log-likelihood to 0.005 nats, in a fifth of the time (2.0 s against 9.5 s on one thread, two threads or beside a
# busy core alike), and a VAE trained on them scores the same (quality 0.899 against 0.901, utility 0.888 against
# 0.885, three seeds); a few hundred rows need the 100 rounds for the Dirichlet process to prune the modes they do not use
GMM_MAX_ROUNDS, GMM_MIN_ROUNDS, GMM_ROW_ROUNDS = 100, 20, 400_000


@dataclass
class Modes:
    """A variational Gaussian mixture's kept modes."""

    means: list[float]
    stds: list[float]
    weights: list[float]


@dataclass
class Moments:
    """The training values' mean and standard deviation."""

    mean: float
    std: float


@dataclass
class Quantiles:
    """Evenly spaced quantiles of the training values."""

    quantiles: list[float]


class ModeNormaliser:
    """CTGAN's mode-specific normalisation (Xu et al. 2019): a variational Gaussian mixture; each value is
    written as its mode (one-hot, drawn from the posterior as CTGAN does) and its offset within that
    mode's +-4 sigma (a number in (-1, 1)). Suits GANs and VAEs, whose outputs are bounded."""

    name = "modes"
    State = Modes
    saturates = True  # bounded: a value past the training range encodes like the range's edge

    @staticmethod
    def fit(present: np.ndarray, rng: np.random.Generator) -> Modes:
        from sklearn.exceptions import ConvergenceWarning  # scikit-learn is slow to import: only when fitting
        from sklearn.mixture import BayesianGaussianMixture

        fit_on = rng.choice(present, GMM_ROWS, replace=False) if len(present) > GMM_ROWS else present
        components = int(min(MAX_MODES, max(1, len(np.unique(fit_on)))))
        rounds = int(np.clip(GMM_ROW_ROUNDS // len(fit_on), GMM_MIN_ROUNDS, GMM_MAX_ROUNDS))
        gmm = BayesianGaussianMixture(n_components=components, weight_concentration_prior_type="dirichlet_process",
                                      weight_concentration_prior=0.001, max_iter=rounds, random_state=0)
        with warnings.catch_warnings():  # a mode that stops improving early is fine: we keep the weighty ones
            warnings.simplefilter("ignore", ConvergenceWarning)
            gmm.fit(fit_on.reshape(-1, 1))
        keep = gmm.weights_ > MIN_MODE_WEIGHT
        return Modes(gmm.means_[keep, 0].tolist(), np.sqrt(gmm.covariances_[keep, 0, 0]).tolist(),
                     (gmm.weights_[keep] / gmm.weights_[keep].sum()).tolist())

    @staticmethod
    def spans(state: Modes) -> list[Span]:
        return [Span("continuous", 1), Span("mode", len(state.means))]

    @staticmethod
    def encode(x: np.ndarray, state: Modes, rng: np.random.Generator) -> np.ndarray:
        means, stds = np.array(state.means), np.maximum(np.array(state.stds), 1e-6)
        log_p = np.log(state.weights) - np.log(stds) - 0.5 * ((x[:, None] - means) / stds) ** 2
        p = np.exp(log_p - log_p.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        mode = (p.cumsum(1) > rng.random((len(x), 1))).argmax(1)
        alpha = np.clip((x - means[mode]) / (4 * stds[mode]), -0.99, 0.99)
        return np.concatenate([alpha[:, None], np.eye(len(means))[mode]], axis=1).astype(np.float32)

    @staticmethod
    def spread(state: Modes) -> float:
        """The mixture's standard deviation."""
        weights, means, stds = (np.array(v) for v in (state.weights, state.means, state.stds))
        centre = (weights * means).sum()
        return float(np.sqrt((weights * (stds ** 2 + (means - centre) ** 2)).sum()))

    @staticmethod
    def decode(block: np.ndarray, state: Modes) -> np.ndarray:
        mode = block[:, 1:1 + len(state.means)].argmax(1)
        return np.clip(block[:, 0], -1, 1) * 4 * np.array(state.stds)[mode] + np.array(state.means)[mode]


class QuantileNormaliser:
    """A quantile transform to a standard normal (TabDDPM's, as scikit-learn's QuantileTransformer), scaled
    by 1/4 into (-1, 1): one continuous value whose distribution matches a diffusion model's Gaussian
    noise. Repeated values (a spike at 0) keep their whole quantile range and decode to exactly themselves."""

    name = "quantile"
    State = Quantiles
    saturates = True
    QUANTILES, SCALE = 1000, 4.0

    @classmethod
    def fit(cls, present: np.ndarray, rng: np.random.Generator) -> Quantiles:
        levels = np.linspace(0, 1, min(cls.QUANTILES, len(present)))
        return Quantiles(np.quantile(present, levels).tolist())

    @staticmethod
    def spans(state: Quantiles) -> list[Span]:
        return [Span("continuous", 1)]

    @classmethod
    def encode(cls, x: np.ndarray, state: Quantiles, rng: np.random.Generator) -> np.ndarray:
        quantiles = np.array(state.quantiles)
        levels = np.linspace(0, 1, len(quantiles))
        # up and down interpolation averaged, as scikit-learn does, so a run of equal quantiles maps to its middle
        u = 0.5 * (np.interp(x, quantiles, levels) - np.interp(-x, -quantiles[::-1], -levels[::-1]))
        z = ndtri(np.clip(u, 1e-7, 1 - 1e-7)) / cls.SCALE
        return np.clip(z, -0.999, 0.999)[:, None].astype(np.float32)

    @staticmethod
    def spread(state: Quantiles) -> float:
        """A robust standard deviation: the interquartile range over a normal's (1.349)."""
        quantiles = np.array(state.quantiles)
        low, high = np.interp([0.25, 0.75], np.linspace(0, 1, len(quantiles)), quantiles)
        return float(high - low) / 1.349

    @classmethod
    def decode(cls, block: np.ndarray, state: Quantiles) -> np.ndarray:
        quantiles = np.array(state.quantiles)
        return np.interp(ndtr(np.clip(block[:, 0], -1, 1) * cls.SCALE), np.linspace(0, 1, len(quantiles)), quantiles)


class StandardNormaliser:
    """The standard score over 4, unbounded: distances keep the column's own scale, where the quantile transform
    squeezes a long tail into a normal's and the modes cut it at 4 sigma. What an anomaly score wants (a value far
    out stays far out); on ODDS satellite and pima a VAE's likelihood rose from 0.74 and 0.69 AUROC to 0.82 and 0.74
    with it (benchmarks/results/anomaly.md). Made for the anomaly detector's VAE: a generator's outputs are bounded
    (a tanh, diffusion's clamp), so what it samples stays within 4 standard deviations of the mean."""

    name = "standard"
    State = Moments
    saturates = False
    SCALE = 4.0

    @staticmethod
    def fit(present: np.ndarray, rng: np.random.Generator) -> Moments:
        return Moments(float(present.mean()), float(present.std()) or 1.0)

    @staticmethod
    def spans(state: Moments) -> list[Span]:
        return [Span("continuous", 1)]

    @classmethod
    def encode(cls, x: np.ndarray, state: Moments, rng: np.random.Generator) -> np.ndarray:
        return ((x - state.mean) / (cls.SCALE * state.std))[:, None].astype(np.float32)

    @staticmethod
    def spread(state: Moments) -> float:
        return state.std

    @classmethod
    def decode(cls, block: np.ndarray, state: Moments) -> np.ndarray:
        return block[:, 0].astype(np.float64) * cls.SCALE * state.std + state.mean


NORMALISERS = {cls.name: cls for cls in (ModeNormaliser, QuantileNormaliser, StandardNormaliser)}
