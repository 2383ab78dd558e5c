"""AnomalyDetector: a likelihood and a latent neighbourhood that separate ODDS anomalies from normal rows, with PyOD's
and scikit-learn's conventions (thresholds, flags, signs, parameters, pipelines) and a run that keeps its threshold."""
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import genloom as gl

THYROID = Path(__file__).resolve().parents[2] / "shared" / "data" / "anomaly" / "thyroid.npz"


@pytest.fixture(scope="module")
def thyroid():
    """ODDS thyroid, semi-supervised: fit on 60% of the normal rows, test on the rest and every anomaly."""
    data = np.load(THYROID)
    x, y = data["x"], data["y"].ravel()
    normal = np.random.default_rng(0).permutation(np.flatnonzero(y == 0))
    train = normal[: int(0.6 * len(normal))]
    test = np.setdiff1d(np.arange(len(y)), train)
    return x[train], x[test], y[test]


@pytest.fixture(scope="module")
def detector(thyroid):
    return gl.AnomalyDetector(steps=200, contamination=0.05).fit(thyroid[0])


def test_the_likelihood_finds_the_anomalies(detector, thyroid):
    _, x_test, y_test = thyroid
    assert roc_auc_score(y_test, detector.decision_function(x_test)) > 0.9  # chance is 0.5


def test_pyod_and_sklearn_conventions(detector, thyroid):
    x_train, x_test, _ = thyroid
    assert detector.labels_.mean() == pytest.approx(0.05, abs=0.005)  # the threshold flags `contamination`
    scores = detector.decision_function(x_test)
    assert np.array_equal(detector.predict(x_test), (scores > detector.threshold_).astype(int))
    assert np.array_equal(detector.score_samples(x_test), -scores)  # scikit-learn's sign: lower is stranger
    assert clone(detector).get_params() == {"family": "vae", "contamination": 0.05, "steps": 200, "minutes": None,
                                            "seed": 0, "options": None, "views": None}
    assert detector.views_ == ("likelihood", "latent")  # the VAE's default


def test_it_works_inside_a_pipeline(thyroid):
    x_train, x_test, y_test = thyroid
    pipeline = Pipeline([("scale", StandardScaler()), ("detect", gl.AnomalyDetector(steps=100))]).fit(x_train)
    assert roc_auc_score(y_test, pipeline.decision_function(x_test)) > 0.8
    assert set(np.unique(pipeline.predict(x_test))) <= {0, 1}


def test_a_written_detector_keeps_its_threshold(thyroid, tmp_path):
    x_train, x_test, _ = thyroid
    fitted = gl.AnomalyDetector(steps=20, contamination=0.1).fit(x_train, out=tmp_path / "run")
    loaded = gl.AnomalyDetector.load(tmp_path / "run")
    assert loaded.threshold_ == fitted.threshold_ and loaded.contamination == 0.1
    np.testing.assert_allclose(loaded.decision_function(x_test[:20]), fitted.decision_function(x_test[:20]),
                               rtol=1e-5)


@pytest.mark.parametrize("options, message", [
    ({"contamination": 0}, "contamination is the share of anomalies expected, in (0, 0.5]; got 0"),
    ({"contamination": 0.6}, "in (0, 0.5]; got 0.6"),
    ({"family": "gan"}, "family 'gan' gives no anomaly score; choose vae, diffusion, autoregressive"),
    ({"views": ["likelihood", "nearest"]}, "unknown anomaly view 'nearest'; use one or more of likelihood, latent"),
    ({"views": []}, "give at least one anomaly view: likelihood, latent"),
    ({"family": "diffusion", "views": ["latent"]},
     "family 'diffusion' has no quick encoder for the 'latent' view; use the view 'likelihood' alone, or the family "
     "vae"),
])
def test_bad_detectors(options, message, thyroid):
    with pytest.raises(gl.GenloomError, match=re.escape(message)):
        gl.AnomalyDetector(steps=2, **options).fit(thyroid[0])


def test_scoring_other_columns_names_them(detector):
    with pytest.raises(gl.GenloomError, match="the table lacks column 'x0'"):
        detector.decision_function(pd.DataFrame({"a": [1.0]}))


def test_a_value_far_past_the_training_range_scores_further_out_than_the_edge(detector, thyroid):
    """The codec's bounds must not turn an outlier into the largest training value: the score keeps rising."""
    train = thyroid[0]
    edge = np.median(train, axis=0)
    edge[0] = train[:, 0].max()
    rows = np.stack([edge, edge, edge])
    rows[1, 0] += 2 * train[:, 0].std()
    rows[2, 0] += 20 * train[:, 0].std()
    scores = detector.decision_function(rows)
    assert scores[0] < scores[1] < scores[2]
    assert scores[2] - scores[0] > 3 and np.mean(detector.decision_scores_ > scores[2]) < 0.01  # far past the rest


def test_a_diffusion_model_scores_by_its_denoising_error(thyroid, tmp_path):
    x_train, x_test, y_test = thyroid
    detector = gl.AnomalyDetector(family="diffusion", steps=200).fit(x_train, out=tmp_path / "run")
    scores = detector.decision_function(x_test)
    assert roc_auc_score(y_test, scores) > 0.9  # chance is 0.5
    np.testing.assert_array_equal(scores, detector.decision_function(x_test))  # fixed noise at fixed levels
    record = gl.load(tmp_path / "run").record["anomaly"]
    assert record["score"] == ("standard score of denoising error averaged over 20 noise levels (each against the "
                               "training data's median and interquartile range); higher is more anomalous")


def as_frame(x):
    """The table a 2-D array is to the detector: columns x0, x1, ..."""
    return pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])


def test_the_score_adds_each_views_standard_score(detector, thyroid):
    """The latent view is scikit-learn's LOF of the VAE's codes among the distinct training codes; each view is put
    on one scale by its training median and interquartile range, then they add up."""
    x_train, x_test, _ = thyroid
    model = detector.model_
    distinct, of_code = np.unique(model.encode(as_frame(x_train)), axis=0, return_inverse=True)
    lof = LocalOutlierFactor(novelty=True).fit(distinct)
    parts = {"likelihood": (model.anomaly_scores(as_frame(x_train)), model.anomaly_scores(as_frame(x_test))),
             "latent": (-lof.negative_outlier_factor_[of_code.ravel()],
                        -lof.score_samples(model.encode(as_frame(x_test))))}
    expected = 0
    for training, scores in parts.values():
        low, median, high = np.quantile(training, [0.25, 0.5, 0.75])
        expected = expected + (scores - median) / (high - low)
    np.testing.assert_allclose(detector.decision_function(x_test), expected, rtol=1e-4, atol=1e-4)


def test_a_vae_reads_a_tables_numbers_on_their_own_scale(detector):
    assert {column.numbers for column in detector.model_.codec.columns} == {"standard"}


def test_a_detector_written_before_the_views_scores_by_the_raw_likelihood(thyroid, tmp_path):
    x_train, x_test, _ = thyroid
    gl.AnomalyDetector(steps=20, views=["likelihood"]).fit(x_train, out=tmp_path / "run")
    config = tmp_path / "run" / "config.json"
    record = json.loads(config.read_text())
    for key in ("views", "typical"):
        del record["anomaly"][key]
    config.write_text(json.dumps(record))
    loaded = gl.AnomalyDetector.load(tmp_path / "run")
    np.testing.assert_allclose(loaded.decision_function(x_test[:20]),
                               loaded.model_.anomaly_scores(as_frame(x_test[:20])), rtol=1e-6)


def test_fit_predict_gives_the_training_flags(thyroid):
    detector = gl.AnomalyDetector(steps=20, contamination=0.1, views="latent")  # one view as a string
    flags = detector.fit_predict(thyroid[0][:300])
    assert detector.views_ == ("latent",) and np.array_equal(flags, detector.labels_)
    # scikit-learn's own fit_predict, fit(X).predict(X), would let each row be its own neighbour and flag fewer
    assert flags.sum() > detector.predict(thyroid[0][:300]).sum()


def test_a_detector_saved_elsewhere_keeps_its_reference_codes(thyroid, tmp_path):
    x_test = thyroid[1][:20]
    fitted = gl.AnomalyDetector(steps=20).fit(thyroid[0], out=tmp_path / "run")
    gl.load(tmp_path / "run").save(tmp_path / "copy")
    np.testing.assert_allclose(gl.AnomalyDetector.load(tmp_path / "copy").decision_function(x_test),
                               fitted.decision_function(x_test), rtol=1e-5)
    (tmp_path / "copy" / "anomaly_reference.safetensors").write_bytes(b"garbage")
    with pytest.raises(gl.GenloomError, match="is damaged: its anomaly_reference.safetensors cannot be read"):
        gl.AnomalyDetector.load(tmp_path / "copy")
    config = tmp_path / "run" / "config.json"
    record = json.loads(config.read_text())
    record["anomaly"]["views"] = ["likelihood", "nearest"]
    config.write_text(json.dumps(record))
    with pytest.raises(gl.GenloomError, match="is damaged: its anomaly record does not hold \\(unknown anomaly view"):
        gl.AnomalyDetector.load(tmp_path / "run")


def test_a_handful_of_examples_is_enough_and_one_is_not(thyroid):
    detector = gl.AnomalyDetector(steps=5).fit(thyroid[0][:12])  # the neighbourhood shrinks to 11 codes
    assert np.isfinite(detector.decision_function(thyroid[1][:10])).all()
    with pytest.raises(gl.GenloomError, match="learns what is normal from 2 examples or more; got 1"):
        gl.AnomalyDetector(steps=5).fit(thyroid[0][:1])


def test_repeated_codes_count_once_in_the_neighbourhood():
    """Rows of categories only repeat their codes: every leave-one-out factor among 20 equal codes would be 1 and
    any other code's endless."""
    from genloom.anomaly import LatentNeighbourhood

    rng = np.random.default_rng(0)
    codes = np.repeat(rng.normal(size=(30, 2)), 25, axis=0)
    neighbourhood = LatentNeighbourhood(codes)
    training = neighbourhood.training_scores()
    assert len(training) == len(codes) and training.std() > 0.01
    near, far = neighbourhood.scores(np.array([[0.1, 0.1], [8.0, 8.0]]))
    assert near < 3 < far < 1e3
