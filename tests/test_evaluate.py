import json
import math
import shutil
from pathlib import Path

import pytest

import genloom as gl
from tests.conftest import QUIET, TINY_VAE


def test_text_evaluation(text_run, tmp_path):
    text_run = shutil.copytree(text_run, tmp_path / "run")
    model = gl.load(text_run)
    scores = gl.evaluate(model, samples=4)
    assert set(scores) >= {"held_out_loss", "perplexity", "bits_per_character", "distinct_1", "distinct_2",
                           "self_bleu", "longest_copy_max"}
    assert scores["perplexity"] == pytest.approx(math.exp(scores["held_out_loss"]), rel=1e-3)
    assert scores["bits_per_character"] == pytest.approx(scores["held_out_loss"] / math.log(2), rel=1e-3)  # chars
    assert 0 < scores["distinct_1"] <= 1 and 0 <= scores["self_bleu"] <= 1
    assert scores == gl.evaluate(gl.load(text_run), samples=4, save=False)  # same seed, same numbers
    assert json.loads((Path(text_run) / "config.json").read_text())["evaluation"] == scores
    assert "evaluation: perplexity" in (Path(text_run) / "report.html").read_text()


def test_image_evaluation(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    scores = gl.evaluate(gl.load(run))
    assert scores["elbo"] < 0 and scores["bits_per_dim"] > 0
    assert 0 < scores["fid_train_vs_held_out"] < min(scores["fid"], scores["fid_noise"])  # real data is the floor
    assert 0 <= scores["precision"] <= 1 and 0 <= scores["recall"] <= 1 and 1 <= scores["inception_score"] <= 10
    assert (run / "feature_net.safetensors").exists()  # trained once, reused: the same numbers again
    assert gl.evaluate(gl.load(run), save=False) == scores
    assert "not InceptionV3" in json.loads((run / "config.json").read_text())["feature_extractor"]


def test_evaluation_errors(text_run):
    with pytest.raises(gl.GenloomError, match="cannot evaluate a model of text on images data"):
        gl.evaluate(gl.load(text_run), "digits")
    with pytest.raises(gl.GenloomError, match="samples must be at least 2"):
        gl.evaluate(gl.load(text_run), samples=1)


def test_evaluating_on_other_data_scores_all_of_it(text_run, tmp_path):
    (tmp_path / "other.txt").write_text(gl.load_data("shakespeare").values[:20_000])
    scores = gl.evaluate(gl.load(text_run), tmp_path / "other.txt", samples=3, save=False)
    assert scores["held_out_loss"] > 0 and "longest_copy_max" in scores


def test_a_table_target_must_be_a_column_to_predict(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user_id": np.arange(200), "size": rng.normal(0, 1, 200),
                          "colour": rng.choice(["a", "b"], 200)})
    model = gl.Model("vae", **TINY_VAE).fit(frame, steps=2, out=tmp_path / "r", **QUIET)
    assert model.codec.kinds["user_id"] == "identifier"
    with pytest.raises(gl.GenloomError, match="target column 'user_id' is an identifier; choose a column to predict"):
        gl.evaluate(model, frame, target="user_id")
    with pytest.raises(gl.GenloomError, match="target column 'shape' is not in the table; columns: user_id, size"):
        gl.evaluate(model, frame, target="shape")
