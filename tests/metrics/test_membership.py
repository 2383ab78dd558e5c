"""The membership attack: it finds the rows a copying generator memorised, and finds nothing in rows drawn
afresh from the same population."""
import numpy as np
import pandas as pd
import pytest

from genloom.metrics.membership import membership_scores

KINDS = {"x": "numerical", "y": "numerical", "city": "categorical", "id": "identifier"}


def _population(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=rows), "y": rng.gamma(2.0, size=rows),
                         "city": rng.choice(["Paris", "Lyon", "Nice"], rows), "id": np.arange(rows) + 1000 * seed})


def test_copies_of_the_training_rows_are_found_and_fresh_rows_are_not():
    training, held_out = _population(800, 1), _population(400, 2)
    copies = membership_scores(training.copy(), training, held_out, KINDS)["membership_auc_distance"]
    blurred = training.assign(x=training["x"] + np.random.default_rng(0).normal(0, 0.05, len(training)))
    nearly = membership_scores(blurred, training, held_out, KINDS)["membership_auc_distance"]
    fresh = membership_scores(_population(800, 3), training, held_out, KINDS)["membership_auc_distance"]
    assert copies == 1.0
    assert 0.75 < nearly < 1.0  # near copies leak, less surely
    assert fresh == pytest.approx(0.5, abs=0.07)  # chance: the synthetic rows say nothing about who trained them


def test_too_few_held_out_rows_give_no_score():
    training = _population(100, 1)
    assert membership_scores(training, training, _population(5, 2), KINDS) == {}
