"""Membership inference against synthetic rows: can an attacker holding the synthetic data tell the rows the
model trained on (members) from other rows of the same population (non-members)? Each attack scores as many
members as non-members, and its ROC AUC says how well (0.5: no leak, 1.0: every member found).

- The distance attack: a row closer to its nearest synthetic row is more likely a member (the distance of
  privacy.py). It finds copies and near copies.
- DOMIAS (van Breugel et al. 2023): a row where the synthetic rows are denser than the population is more likely
  a member, scored by p_synthetic(x) / p_reference(x), the second density fitted to held-out rows that are not
  queried (the attacker's reference data). It finds a generator that overfits locally, around its training rows,
  without copying them; dividing by the population's density keeps it from taking dense regions for members.

The densities are Gaussian kernel estimates, as in the KDE path of the `domias` package, but with the kernel's
width chosen by leave-one-out likelihood on rows encoded with numbers standardised and categories one-hot:
`domias` takes scipy's gaussian_kde with Scott's width over the raw columns, which found exact copies of the
training rows at an AUC of only 0.53-0.57 on test tables (kernels that wide swamp a single row). Its other path,
a BNAF flow per density, trains for minutes, too long for every evaluation."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..data.tables import as_numbers
from .privacy import closest_distances

ATTACK_ROWS = 1000  # members and non-members each, at most
SYNTHETIC_ROWS = 5000  # the synthetic rows an attack searches or fits its density to, at most
REFERENCE_ROWS = 5000  # held-out rows that are not queried, for the population's density, at most
BANDWIDTHS = np.geomspace(0.02, 2.0, 11)  # kernel widths tried, in standard deviations of the encoded columns
LIKELIHOOD_ROWS = 500  # the rows whose likelihood chooses a kernel width, at most
MAX_CATEGORIES = 50  # one-hot columns of a categorical column, at most: the rarer categories share the last


def membership_scores(synthetic: pd.DataFrame, training: pd.DataFrame, held_out: pd.DataFrame,
                      kinds: dict[str, str], seed: int = 0) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The AUC of the distance attack and of DOMIAS with training rows as members and held-out rows as
    non-members (up to ATTACK_ROWS, at most half the held-out rows), the other held-out rows DOMIAS's reference
    (so no query is in it); and every query's scores, for the ROC curves. Nothing with under 20 held-out rows."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    count = min(ATTACK_ROWS, len(held_out) // 2, len(training))
    if count < 10:
        return {}, {}
    pick = lambda frame, rows: frame.iloc[np.sort(rows)]  # noqa: E731
    held = rng.permutation(len(held_out))
    queries = pd.concat([pick(training, rng.choice(len(training), count, replace=False)),
                         pick(held_out, held[:count])], ignore_index=True)
    reference = pick(held_out, held[count:count + REFERENCE_ROWS])
    synthetic = pick(synthetic, rng.choice(len(synthetic), min(len(synthetic), SYNTHETIC_ROWS), replace=False))
    measured = {c: k for c, k in kinds.items() if k != "identifier"}
    attacks = {"distance": -closest_distances(queries, synthetic, measured),
               "domias": density_ratio(queries, synthetic, reference, measured)}
    is_member = np.r_[np.ones(count), np.zeros(count)]
    scores = {f"membership_auc_{name}": float(roc_auc_score(is_member, score)) for name, score in attacks.items()}
    return scores, {"is_member": is_member, **attacks}


def density_ratio(queries: pd.DataFrame, synthetic: pd.DataFrame, reference: pd.DataFrame,
                  kinds: dict[str, str]) -> np.ndarray:
    """DOMIAS's score of each query row, log p_synthetic(x) - log p_reference(x), both densities kernel
    estimates over the rows as `row_encoder` encodes them (fitted on the synthetic and reference rows, which the
    attacker holds)."""
    encoder = row_encoder(kinds).fit(_readable(pd.concat([synthetic, reference]), kinds))
    encode = lambda frame: torch.tensor(encoder.transform(_readable(frame, kinds)), dtype=torch.float32)  # noqa: E731
    points = encode(queries)
    return kde_log_density(points, encode(synthetic)) - kde_log_density(points, encode(reference))


def row_encoder(kinds: dict[str, str]):
    """scikit-learn's encoding of table rows for a density: numbers and dates standardised (a missing one at the
    mean, with a column saying it is missing), categories one-hot (missing is a category)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numbers = [c for c, k in kinds.items() if k in ("numerical", "datetime")]
    categories = [c for c, k in kinds.items() if k in ("categorical", "boolean")]
    numeric = make_pipeline(SimpleImputer(add_indicator=True, keep_empty_features=True), StandardScaler())
    one_hot = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES, sparse_output=False)
    return ColumnTransformer([("numbers", numeric, numbers), ("categories", one_hot, categories)])


def _readable(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """The columns of `kinds` as scikit-learn's encoders read them: numbers (dates in seconds) or text."""
    return pd.DataFrame({c: as_numbers(frame[c], k) if k in ("numerical", "datetime") else frame[c].astype(str)
                         for c, k in kinds.items()})


def kde_log_density(queries: torch.Tensor, points: torch.Tensor, bandwidth: float | None = None) -> np.ndarray:
    """The log density at `queries` of a Gaussian kernel estimate on `points`, the kernel's width (unless
    given) the one of BANDWIDTHS under which up to LIKELIHOOD_ROWS of the points are likeliest given the others
    (leave-one-out likelihood).

    scikit-learn's KernelDensity gives the same (tested), but its trees take a minute on the hundred one-hot
    dimensions of Adult, where a matrix of squared distances takes a second."""
    if bandwidth is None:
        chosen = torch.randperm(len(points), generator=torch.Generator().manual_seed(0))[:LIKELIHOOD_ROWS]
        squared = torch.cdist(points[chosen], points).square()
        squared[torch.arange(len(chosen)), chosen] = math.inf  # leave each one out
        bandwidth = max(BANDWIDTHS, key=lambda width: _log_density(squared, width, points.shape[1]).mean().item())
    return _log_density(torch.cdist(queries, points).square(), bandwidth, points.shape[1]).double().numpy()


def _log_density(squared: torch.Tensor, bandwidth: float, dimensions: int) -> torch.Tensor:
    """log of the mean over the columns of `squared` (squared distances) of a Gaussian kernel of that width."""
    kernels = torch.logsumexp(-squared / (2 * bandwidth ** 2), dim=1) - math.log(squared.shape[1])
    return kernels - dimensions / 2 * math.log(2 * math.pi * bandwidth ** 2)
