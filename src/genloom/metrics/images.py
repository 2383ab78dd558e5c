"""Sample-quality metrics from feature vectors: FID, KID, Inception Score, precision and recall.

Pure functions of features (torch-fidelity's style), so any extractor can feed them: InceptionV3 when its
weights are on disk, or a network trained on the real images. Everything is computed in float64.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import GenloomError


def _features(x, name: str) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(torch.float64)
    if x.dim() != 2 or len(x) < 2:
        raise GenloomError(f"{name} must be at least two feature vectors, shape (N, D); got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise GenloomError(f"{name} contain NaN or infinite values")
    return x


def frechet_distance(real, fake) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017).

    tr(sqrt(S1 S2)) comes from the eigenvalues of S1 S2, which are real and non-negative in exact
    arithmetic; taking real parts of their square roots never fails on singular covariances (fewer
    samples than dimensions), where scipy's sqrtm can return an 'imaginary component'.

    With fewer samples than dimensions (hundreds of images against Inception's 2048 numbers) the trace is the
    sum of the singular values of A Bᵀ / sqrt(c), A and B the centred features, c = (n1 - 1)(n2 - 1): the
    nonzero eigenvalues of S1 S2 = Aᵀ A Bᵀ B / c are those of (A Bᵀ)(A Bᵀ)ᵀ / c. An n1 x n2 problem instead
    of a D x D one: 40 times faster at D = 2048."""
    real, fake = _features(real, "real features"), _features(fake, "generated features")
    if real.shape[1] != fake.shape[1]:
        raise GenloomError(f"feature sizes differ: {real.shape[1]} real, {fake.shape[1]} generated")
    mean_gap = (real.mean(0) - fake.mean(0)).square().sum()
    cov_real, cov_fake = torch.cov(real.T), torch.cov(fake.T)
    if max(len(real), len(fake)) <= real.shape[1]:
        products = (real - real.mean(0)) @ (fake - fake.mean(0)).T
        cross = torch.linalg.svdvals(products).sum() / math.sqrt((len(real) - 1) * (len(fake) - 1))
    else:
        cross = torch.linalg.eigvals(cov_real @ cov_fake).sqrt().real.sum()
    return float(mean_gap + cov_real.trace() + cov_fake.trace() - 2 * cross)


def kernel_distance(real, fake, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
                    coef: float = 1.0, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel,
    averaged over random subsets; returns (mean, standard deviation)."""
    real, fake = _features(real, "real features"), _features(fake, "generated features")
    size = min(subset_size, len(real), len(fake))
    gamma = 1.0 / real.shape[1]
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=generator)[:size]]
        y = fake[torch.randperm(len(fake), generator=generator)[:size]]
        k_xx, k_yy, k_xy = ((gamma * a @ b.T + coef) ** degree for a, b in ((x, x), (y, y), (x, y)))
        off_diagonal = (k_xx.sum() - k_xx.trace() + k_yy.sum() - k_yy.trace()) / (size * (size - 1))
        scores.append(off_diagonal - 2 * k_xy.mean())
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.std(unbiased=False))


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
    """exp(E KL(p(y|x) || p(y))) over class logits (Salimans et al. 2016); returns (mean, std) over splits."""
    logits = _features(logits, "class logits")
    scores = []
    for chunk in logits.chunk(splits):
        log_p = chunk.log_softmax(dim=1)
        log_marginal = log_p.exp().mean(0).log()
        scores.append((log_p.exp() * (log_p - log_marginal)).sum(1).mean().exp())
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.std(unbiased=False))


def precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): the share of generated samples inside the
    real data's k-nearest-neighbour balls, and of real samples inside the generated data's."""
    real, fake = _features(real, "real features"), _features(fake, "generated features")
    if min(len(real), len(fake)) <= k:
        raise GenloomError(f"precision/recall with k={k} needs more than {k} samples on each side")

    def covered(support: torch.Tensor, queries: torch.Tensor) -> float:
        radii = torch.cdist(support, support).kthvalue(k + 1, dim=1).values  # k+1: skip the point itself
        return float((torch.cdist(queries, support) <= radii).any(dim=1).double().mean())

    return covered(real, fake), covered(fake, real)
