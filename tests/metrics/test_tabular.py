import numpy as np
import pandas as pd
import pytest

from genloom.errors import GenloomError
from genloom.metrics.tabular import (FeatureMatrix, association_matrix, detection_auc, sdmetrics_metadata,
                                     sdmetrics_reports, utility)

KINDS = {"id": "identifier", "size": "numerical", "colour": "categorical", "day": "datetime"}


def _rows(n, seed, shift=0.0, link=True):
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "blue", "green"], n)
    size = np.where(colour == "red", 10.0, 20.0) * link + rng.normal(shift, 2, n)
    day = (pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")).strftime("%Y-%m-%d")
    return pd.DataFrame({"id": np.arange(n) + seed * 10_000, "size": size, "colour": colour, "day": day})


def test_metadata_uses_sdmetrics_names_and_date_formats():
    assert sdmetrics_metadata(KINDS, {"day": "%Y-%m-%d"}) == {"columns": {
        "id": {"sdtype": "id"}, "size": {"sdtype": "numerical"}, "colour": {"sdtype": "categorical"},
        "day": {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"}}}


def test_quality_is_high_for_the_same_distribution_and_lower_without_the_link():
    metadata = sdmetrics_metadata(KINDS, {"day": "%Y-%m-%d"})
    same = sdmetrics_reports(_rows(400, 0), _rows(400, 1), metadata)
    unlinked = sdmetrics_reports(_rows(400, 0), _rows(400, 1, shift=15.0, link=False), metadata)
    assert same["quality"] > 0.8 and same["diagnostic"] > 0.99
    assert unlinked["column_shapes"] < same["column_shapes"] - 0.1
    assert same["quality"] == pytest.approx((same["column_shapes"] + same["column_pair_trends"]) / 2, abs=1e-6)


def test_detection_tells_shifted_rows_apart_only():
    real = _rows(400, 0)
    features = FeatureMatrix(real, KINDS)
    assert detection_auc(real, _rows(400, 1), features) < 0.65
    assert detection_auc(real, _rows(400, 1, shift=8.0), features) > 0.9


def test_utility_ranks_a_learnable_target_and_not_a_shuffled_one():
    train, test = _rows(600, 0), _rows(400, 1)
    features = FeatureMatrix(train, KINDS)
    assert utility(train, test, "colour", features) > 0.75  # red is told from the rest; blue and green are not
    shuffled = train.assign(colour=np.random.default_rng(2).permutation(train["colour"]))
    assert utility(shuffled, test, "colour", features) < 0.65
    assert utility(train, test, "size", features) > 0.8  # R^2 for a number
    with pytest.raises(GenloomError, match="one value of 'colour'"):
        utility(train, test.assign(colour="red"), "colour", features)


def test_association_is_symmetric_one_for_a_copy_and_small_for_noise():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=500), "b": rng.choice(["x", "y"], 500)})
    frame["a_copy"], frame["b_copy"] = frame["a"] * 2, frame["b"]
    kinds = {"a": "numerical", "b": "categorical", "a_copy": "numerical", "b_copy": "categorical"}
    matrix = association_matrix(frame, kinds)
    np.testing.assert_allclose(matrix.to_numpy(), matrix.to_numpy().T)
    assert matrix.loc["a", "a_copy"] == pytest.approx(1.0) and matrix.loc["b", "b_copy"] == pytest.approx(1.0)
    assert matrix.loc["a", "b"] < 0.2
