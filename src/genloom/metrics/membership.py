"""Membership inference against synthetic rows: can an attacker holding the synthetic data tell the rows the
model trained on (members) from other rows of the same population (non-members)? The distance attack: a row
closer to its nearest synthetic row is more likely a member (the distance of privacy.py), scored by its ROC AUC
over as many members as non-members (0.5: no leak, 1.0: every member found).

DOMIAS's density-ratio attack (van Breugel et al. 2023) is not here yet: with Gaussian KDE densities (the
estimator of the `domias` package's KDE path) it found exact copies of the training rows at an AUC of only
0.53-0.57 on test tables, as the kernels' width swamps a single row; it needs a sharper density model."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .privacy import closest_distances

ATTACK_ROWS = 1000  # members and non-members each, at most
SYNTHETIC_ROWS = 5000  # the synthetic rows an attack searches, at most


def membership_scores(synthetic: pd.DataFrame, training: pd.DataFrame, held_out: pd.DataFrame,
                      kinds: dict[str, str], seed: int = 0) -> dict[str, float]:
    """The distance attack's AUC with training rows as members and held-out rows as non-members (none when
    there are fewer than 10 held-out rows)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    count = min(ATTACK_ROWS, len(held_out), len(training))
    if count < 10:
        return {}
    pick = lambda frame, n: frame.iloc[np.sort(rng.choice(len(frame), n, replace=False))]  # noqa: E731
    queries = pd.concat([pick(training, count), pick(held_out, count)], ignore_index=True)
    measured = {c: k for c, k in kinds.items() if k != "identifier"}
    distance = closest_distances(queries, pick(synthetic, min(len(synthetic), SYNTHETIC_ROWS)), measured)
    return {"membership_auc_distance": float(roc_auc_score(np.r_[np.ones(count), np.zeros(count)], -distance))}
