"""The membership attacks: they find the rows a copying or locally overfitting generator memorised, and find
nothing in rows drawn afresh from the same population; DOMIAS's kernel densities are scikit-learn's."""
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.neighbors import KernelDensity

from genloom.metrics.membership import kde_log_density, membership_scores

KINDS = {"x": "numerical", "y": "numerical", "city": "categorical", "id": "identifier"}


def _population(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=rows), "y": rng.gamma(2.0, size=rows),
                         "city": rng.choice(["Paris", "Lyon", "Nice"], rows), "id": np.arange(rows) + 1000 * seed})


def test_copies_of_the_training_rows_are_found_and_fresh_rows_are_not():
    training, held_out = _population(800, 1), _population(400, 2)
    copies, copy_curves = membership_scores(training.copy(), training, held_out, KINDS)
    noise = np.random.default_rng(0).normal(0, 0.05, (len(training), 2))
    nearly = membership_scores(training.assign(x=training["x"] + noise[:, 0], y=training["y"] + noise[:, 1]),
                               training, held_out, KINDS)[0]
    fresh = [membership_scores(_population(800, seed), training, held_out, KINDS, seed)[0] for seed in (3, 4, 5)]
    assert copies["membership_auc_distance"] == 1.0
    assert 0.75 < nearly["membership_auc_distance"] < 1.0  # near copies leak, less surely
    # DOMIAS measured 0.75 on the copies and 0.72-0.74 on the near copies (four noise seeds): a density sees a
    # single row less sharply than a distance does, but clearly above chance
    assert copies["membership_auc_domias"] > 0.68 and nearly["membership_auc_domias"] > 0.66
    # chance: the synthetic rows say nothing about who trained them (DOMIAS measured 0.49-0.55 over seeds 3-10,
    # the distance attack 0.44-0.54)
    for scores in fresh:
        assert scores["membership_auc_distance"] == pytest.approx(0.5, abs=0.07)
        assert scores["membership_auc_domias"] == pytest.approx(0.5, abs=0.07)
    assert np.mean([s["membership_auc_domias"] for s in fresh]) == pytest.approx(0.5, abs=0.04)
    assert copy_curves["is_member"].sum() == 200 and len(copy_curves["domias"]) == 400  # half the held-out rows


def _density(queries: np.ndarray, points: np.ndarray, bandwidth: float | None = None) -> np.ndarray:
    return kde_log_density(torch.tensor(queries, dtype=torch.float32), torch.tensor(points, dtype=torch.float32),
                           bandwidth)


def test_kernel_density_is_scikit_learns_and_its_width_fits_the_data():
    rng = np.random.default_rng(0)
    points, queries = rng.normal(size=(300, 3)), rng.normal(size=(50, 3))
    sklearn_density = KernelDensity(bandwidth=0.4).fit(points).score_samples(queries)
    assert _density(queries, points, bandwidth=0.4) == pytest.approx(sklearn_density, abs=1e-4)
    for scale in (0.1, 3.0):  # a width chosen by likelihood follows the data's scale; one fixed width fits neither
        points, queries = rng.normal(0, scale, (2000, 2)), rng.normal(0, scale, (200, 2))
        truth = multivariate_normal(np.zeros(2), scale ** 2 * np.eye(2)).logpdf(queries)
        assert np.mean(np.abs(_density(queries, points) - truth)) < 0.15  # measured 0.10 at both scales


def test_too_few_held_out_rows_give_no_score():
    training = _population(100, 1)
    assert membership_scores(training, training, _population(15, 2), KINDS) == ({}, {})
