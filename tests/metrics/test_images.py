"""Our image metrics against torchmetrics and the classic scipy formula on the same features."""
import numpy as np
import pytest
import scipy.linalg
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from genloom.errors import GenloomError
from genloom.metrics.images import frechet_distance, inception_score, kernel_distance, precision_recall


class Features(torch.nn.Module):
    """Hands precomputed features to torchmetrics as if they came from its extractor."""

    def __init__(self, dim):
        super().__init__()
        self.num_features = dim

    def forward(self, x):
        return x


def calculate_frechet_distance(mu1, sigma1, mu2, sigma2):
    """pytorch-fid's formula (its module imports torchvision, which this project may not install)."""
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean.real))


def _sets(n=400, dim=16, shift=0.5, seed=0):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n, dim))
    fake = rng.normal(size=(n, dim)) @ rng.normal(scale=0.3, size=(dim, dim)) + shift
    return real, fake


def test_fid_matches_the_scipy_formula_and_torchmetrics():
    real, fake = _sets()
    ours = frechet_distance(real, fake)
    theirs = calculate_frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    metric = FrechetInceptionDistance(feature=Features(16), normalize=False).double()
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    assert ours == pytest.approx(theirs, rel=1e-3)
    assert ours == pytest.approx(float(metric.compute()), rel=1e-3)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)


def test_fid_with_fewer_samples_than_dimensions():
    real, fake = _sets(n=20, dim=64)
    value = frechet_distance(real, fake)
    theirs = calculate_frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    assert np.isfinite(value) and value > 0 and value == pytest.approx(theirs, rel=1e-6)
    assert frechet_distance(real[:5], real[:5]) == pytest.approx(0.0, abs=1e-9)


def test_kid_matches_torchmetrics():
    real, fake = _sets(n=300)
    metric = KernelInceptionDistance(feature=Features(16), subsets=1, subset_size=300).double()
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    mean, _ = metric.compute()
    ours, _ = kernel_distance(real, fake, subsets=1, subset_size=300)
    assert ours == pytest.approx(float(mean), rel=1e-6)


def test_inception_score_bounds():
    confident = torch.eye(10).repeat(10, 1) * 50       # every class, each predicted with certainty
    uniform = torch.zeros(100, 10)
    assert inception_score(confident, splits=1)[0] == pytest.approx(10.0, rel=1e-6)
    assert inception_score(uniform, splits=1)[0] == pytest.approx(1.0)


def test_precision_recall():
    real, _ = _sets(n=300)
    assert precision_recall(real, real + 1e-9) == pytest.approx((1.0, 1.0))
    far = real + 100
    assert precision_recall(real, far) == (0.0, 0.0)
    collapsed = np.repeat(real[:1], 300, axis=0)   # mode collapse: precise, no recall
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.05


def test_bad_features():
    with pytest.raises(GenloomError, match="feature sizes differ"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(GenloomError, match="NaN"):
        frechet_distance(np.full((5, 3), np.nan), np.zeros((5, 3)))
