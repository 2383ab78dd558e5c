import numpy as np
import pandas as pd
import pytest

from genloom.metrics.privacy import closest_distances, exact_copy_share, privacy_scores

KINDS = {"age": "numerical", "score": "numerical", "flat": "numerical", "city": "categorical",
         "member": "boolean", "joined": "datetime"}


def _rows(n, seed):
    rng = np.random.default_rng(seed)
    score = rng.normal(0, 1, n)
    score[rng.random(n) < 0.2] = np.nan
    return pd.DataFrame({
        "age": rng.integers(18, 90, n), "score": score, "flat": np.full(n, 3.0),
        "city": rng.choice(["Paris", "Lyon", None], n), "member": rng.random(n) < 0.3,
        "joined": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")})


def test_distances_equal_sdmetrics_dcr():
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    synthetic, training = _rows(40, 1), _rows(60, 2)
    synthetic.loc[3, "flat"] = 4.0  # a constant column that differs counts fully
    metadata = {"columns": {c: {"sdtype": k} for c, k in KINDS.items()}}
    expected = calculate_dcr(synthetic, training, metadata).to_numpy()
    np.testing.assert_allclose(closest_distances(synthetic, training, KINDS), expected, atol=1e-6)


def test_a_table_of_identifiers_has_no_distances():
    from genloom.errors import GenloomError
    ids = pd.DataFrame({"id": [1, 2, 3]})
    with pytest.raises(GenloomError, match="this table has only identifiers"):
        closest_distances(ids, ids, {"id": "identifier"})


def test_copies_are_caught_and_fresh_rows_are_not():
    training, held_out, fresh = _rows(300, 0), _rows(300, 1), _rows(300, 2)
    copied, _ = privacy_scores(training.iloc[:200], training, held_out, KINDS)
    assert copied["exact_copies"] == 1.0 and copied["dcr_synthetic_median"] == 0.0 and copied["dcr_ratio"] == 0.0
    honest, distances = privacy_scores(fresh, training, held_out, KINDS)
    assert honest["exact_copies"] == honest["exact_copies_held_out"] == 0.0
    assert 0.7 < honest["dcr_ratio"] < 1.4
    assert len(distances["synthetic"]) == len(distances["held_out"]) == 300


def test_exact_copies_compare_every_given_column():
    a = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    b = pd.DataFrame({"x": [1, 2, 9], "y": ["a", "z", "c"]})
    assert exact_copy_share(a, b, ["x", "y"]) == pytest.approx(1 / 3)
    assert exact_copy_share(a, b, ["x"]) == pytest.approx(2 / 3)
