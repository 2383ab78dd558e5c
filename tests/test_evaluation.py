import json
import math
import shutil
from pathlib import Path

import pytest
import torch

import genloom as gl
from genloom.metrics.text import text_sample_metrics
from genloom.train.batches import held_out_indices
from tests.conftest import QUIET, TINY_VAE


def test_text_evaluation(text_run, tmp_path):
    text_run = shutil.copytree(text_run, tmp_path / "run")
    model = gl.load(text_run)
    scores = gl.evaluate(model, samples=4)
    assert set(scores) >= {"held_out_loss", "perplexity", "bits_per_character", "distinct_1", "distinct_2",
                           "self_bleu", "longest_copy_max"}
    assert scores["perplexity"] == pytest.approx(math.exp(scores["held_out_loss"]), rel=1e-3)
    assert scores["bits_per_character"] == pytest.approx(scores["held_out_loss"] / math.log(2), rel=1e-3)  # chars
    expected = text_sample_metrics(model.sample(4, seed=0), "")  # the evaluation's own samples: their diversity
    assert {k: scores[k] for k in ("distinct_1", "distinct_2", "self_bleu")} == {
        k: round(expected[k], 4) for k in ("distinct_1", "distinct_2", "self_bleu")}
    assert scores["held_out_loss"] < math.log(len(model.codec.chars))  # below a uniform guess
    assert scores == gl.evaluate(gl.load(text_run), samples=4, save=False)  # same seed, same numbers
    assert json.loads((Path(text_run) / "config.json").read_text())["evaluation"] == scores
    assert "evaluation: perplexity" in (Path(text_run) / "report.html").read_text()


def test_image_evaluation(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    model = gl.load(run)
    scores = gl.evaluate(model)
    digits = gl.load_data("digits")
    held_out = held_out_indices(len(digits), 0.1)[1]  # the tenth that fit held out
    x, labels = model.codec.encode(digits.values[held_out]), torch.from_numpy(digits.labels[held_out])
    with torch.no_grad():
        log_likelihood, kl, _ = model.ema_net.elbo_terms(x, labels, torch.Generator().manual_seed(0))
    elbo = (log_likelihood - kl.sum(1)).mean().item()
    assert scores["elbo"] == pytest.approx(elbo, abs=1e-3)
    assert scores["bits_per_dim"] == pytest.approx(-elbo / (64 * math.log(2)), rel=1e-4)
    assert 0 < scores["fid_train_vs_held_out"] < min(scores["fid"], scores["fid_noise"])  # real data is the floor
    assert scores["inception_score"] > 1.2  # samples that all look like one class would score 1
    assert (run / "feature_net.safetensors").exists()  # trained once, reused: the same numbers again
    assert gl.evaluate(gl.load(run), save=False) == scores
    assert "not InceptionV3" in json.loads((run / "config.json").read_text())["feature_extractor"]


def test_a_run_on_mnist_is_scored_against_its_test_split(tmp_path, monkeypatch):
    import genloom.evaluation

    model = gl.Model("vae", **TINY_VAE).fit("mnist", steps=2, out=tmp_path / "run", **QUIET)
    seen = {}

    def record_the_parts(model, held_out, training, samples, seed, progress, **options):
        seen["held_out"], seen["training"] = held_out, training
        return {}

    parts = genloom.evaluation.EVALUATORS["image"][1]
    monkeypatch.setitem(genloom.evaluation.EVALUATORS, "image", (record_the_parts, parts))
    gl.evaluate(model, save=False)
    test = gl.load_data("mnist-test")
    assert torch.equal(seen["held_out"][0], model.codec.encode(test.values))  # all 10,000 test digits
    assert torch.equal(seen["held_out"][1], torch.from_numpy(test.labels))
    assert len(seen["training"][0]) == 54_000  # the part of the 60,000 that fit trained on


def test_evaluation_errors(text_run):
    with pytest.raises(gl.GenloomError, match="cannot evaluate a model of text data on image data"):
        gl.evaluate(gl.load(text_run), "digits")
    with pytest.raises(gl.GenloomError, match="samples must be a whole number of at least 2; got 1"):
        gl.evaluate(gl.load(text_run), samples=1)


def test_evaluating_on_other_data_scores_all_of_it(text_run, tmp_path):
    (tmp_path / "other.txt").write_text(gl.load_data("shakespeare").values[:20_000])
    model = gl.load(text_run)
    scores = gl.evaluate(model, tmp_path / "other.txt", samples=3, save=False)
    tokens = model.codec.encode(gl.load_data("shakespeare").values[:20_000])
    window = model.ema_net.context_length + 1
    batch = torch.stack([tokens[s:s + window] for s in range(0, len(tokens) - window + 1, window - 1)][:200])
    with torch.no_grad():  # all of the other text, scored window by window
        expected = -model.ema_net.log_prob(batch).sum().item() / (len(batch) * (window - 1))
    assert scores["held_out_loss"] == pytest.approx(expected, abs=1e-3) and "longest_copy_max" in scores


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


def test_protected_groups_are_scored_and_recorded(biased_table_run, monkeypatch):
    def other_scores(synthetic, train, real, kinds, target, formats, seed):  # tested on their own, and slow
        return {"quality": 1.0}, {}
    monkeypatch.setattr("genloom.metrics.tabular.table_scores", other_scores)
    model = gl.load(biased_table_run)
    scores = gl.evaluate(model, protected="sex", save=False, progress=False)
    assert list(scores)[1:] == ["parity_difference_sex_real", "parity_difference_sex_synthetic",
                                "equalized_odds_difference_sex_real", "equalized_odds_difference_sex_synthetic"]
    assert scores["parity_difference_sex_real"] > 0.5  # the real rows' income follows sex: so do the predictions
    assert model.record["fairness"] == {"protected": ["sex"], "target": "income", "positive": "high"}
    gl.evaluate(model, save=False, progress=False)  # a new evaluation without protected columns: none recorded
    assert "fairness" not in model.record


def test_molecule_evaluation_scores_samples_against_held_out_molecules(molecule_run, tmp_path):
    run = shutil.copytree(molecule_run, tmp_path / "run")
    model = gl.load(run)
    scores = gl.evaluate(model, samples=100)  # a few valid among them: FCD needs two
    assert set(scores) >= {"validity", "unique", "novelty", "int_div1", "int_div2", "filters", "snn", "fcd",
                           "logP_wasserstein", "SA_wasserstein", "QED_wasserstein", "weight_wasserstein",
                           "nll_per_molecule"}
    uniform = model.codec.length * math.log(len(model.codec.vocabulary))  # every token a uniform guess
    assert scores["nll_per_molecule"] < 0.6 * uniform
    assert scores == gl.evaluate(gl.load(run), samples=100, save=False)  # same seed, same numbers
    figures = json.loads((run / "config.json").read_text())["figures"]
    assert set(figures) == {"evaluation/properties.png", "evaluation/molecules.png"}
    report = (run / "report.html").read_text()
    assert "evaluation: validity" in report and report.count("data:image/png;base64") >= 3  # samples and both figures


def test_molecules_the_run_never_saw_are_scored_without_its_likelihood(molecule_run, tmp_path, capsys):
    iodides = tmp_path / "iodides.smi"  # MOSES holds no iodine: a token the run never saw
    iodides.write_text("CCI\nIc1ccccc1\nCC(I)CO\n", encoding="utf-8")
    scores = gl.evaluate(molecule_run, iodides, samples=20, save=False)
    assert "validity" in scores and "novelty" in scores and "nll_per_molecule" not in scores
    assert "no held-out likelihood ('CCI' holds tokens the model never saw: I" in capsys.readouterr().err


def test_signal_evaluation_recognises_the_conditional_samples(signal_run, tmp_path):
    run = shutil.copytree(signal_run, tmp_path / "run")
    model = gl.load(run)
    scores = gl.evaluate(model)
    assert set(scores) >= {"fd", "fd_train_vs_held_out", "fd_noise", "classifier_accuracy", "conditional_accuracy",
                           "denoising_loss"}
    assert scores["classifier_accuracy"] == 1.0  # two tones far apart: the classifier never confuses them
    assert scores["conditional_accuracy"] >= 0.8  # the model says each tone at its pitch (chance: 0.5)
    assert scores["fd"] < scores["fd_noise"] and scores["fd_train_vs_held_out"] < scores["fd_noise"]
    record = json.loads((run / "config.json").read_text())
    assert "real training recordings to predict their class labels" in record["feature_extractor"]
    assert (run / "evaluation" / "spectrograms.png").exists() and gl.evaluate(gl.load(run), save=False) == scores
    report = (run / "report.html").read_text()
    assert "evaluation: conditional_accuracy" in report and report.count("<audio controls") == 8



def test_a_resampled_spoken_digits_run_is_scored_against_its_test_split_at_its_rate(tmp_path, monkeypatch):
    import genloom.evaluation

    data = gl.load_data("spoken_digits", sample_rate=4000)
    model = gl.Model("vae", **TINY_VAE).fit(data, steps=1, out=tmp_path / "run", codec_options={"mels": 8}, **QUIET)
    seen = {}

    def record_the_parts(model, held_out, training, samples, seed, progress, **options):
        seen["held_out"] = held_out
        return {}

    parts = genloom.evaluation.EVALUATORS["signal"][1]
    monkeypatch.setitem(genloom.evaluation.EVALUATORS, "signal", (record_the_parts, parts))
    gl.evaluate(model, save=False)
    assert len(seen["held_out"][0]) == 300 and seen["held_out"][0].rate == 4000  # the 300 test recordings, resampled
