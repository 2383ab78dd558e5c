"""Experiment tracking, read back through the trackers' own readers: TensorBoard's event accumulator and
MLflow's client. A tracker that fails never costs the run."""
import io
import sys

import numpy as np
import pytest
from PIL import Image

import genloom as gl
from genloom.cli import main
from genloom.tracking import MLflow, TensorBoard, Tracker
from genloom.train.loop import read_metrics
from tests.conftest import QUIET, TINY_GPT, TINY_VAE

LOGGING = {"log_every": 10, "eval_every": 10, "sample_every": 15, "batch_size": 32}


def events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def logged(run, key):
    return [(line["step"], line[key]) for line in read_metrics(run / "metrics.jsonl") if key in line]


def test_tensorboard_holds_the_runs_numbers_samples_and_settings(tmp_path):
    run = tmp_path / "run"
    model = gl.Model("vae", **TINY_VAE).fit("digits", steps=30, out=run, trackers=["tensorboard"], **LOGGING, **QUIET)
    board = events(run / "tensorboard")
    for key in ("loss", "val_loss", "lr"):  # every logged value, at its step
        assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in board.Scalars(key)] == logged(run, key)
    speeds = board.Scalars("steps_per_s")
    assert [e.step for e in speeds] == [20, 30] and all(e.value > 0 for e in speeds)
    final = model.record["final_metrics"]
    assert board.Scalars("final/elbo")[-1].value == pytest.approx(final["elbo"], rel=1e-6)
    grids = board.Images("samples")
    assert [e.step for e in grids] == [15, 30, 30]  # two previews during training, then the final samples
    with Image.open(io.BytesIO(grids[-1].encoded_image_string)) as shown, Image.open(run / "samples" / "final.png") as png:
        assert np.array_equal(np.asarray(shown.convert("RGB")), np.asarray(png.convert("RGB")))
    assert "config/text_summary" in board.Tags()["tensors"]
    hparams = board.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in hparams and b"latent_dim" in hparams["_hparams_/session_start_info"]


def test_tensorboard_shows_text_samples_as_text(tmp_path):
    run = tmp_path / "run"
    gl.Model("autoregressive", **TINY_GPT).fit("shakespeare", steps=10, out=run, trackers=[TensorBoard(tmp_path / "tb")],
                                               log_every=5, sample_every=5, **QUIET)
    board = events(tmp_path / "tb")
    texts = board.Tensors("samples/text_summary")
    assert [e.step for e in texts] == [5, 10, 10]
    final = (run / "samples" / "final.txt").read_text()
    assert final[:40] in texts[-1].tensor_proto.string_val[0].decode()


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A SQLite store and an artifact folder of the test's own."""
    monkeypatch.chdir(tmp_path)  # MLflow puts a SQLite store's artifacts in ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_mlflow_reads_back_the_parameters_metrics_artifacts_and_card(tmp_path, mlflow_store):
    from mlflow import MlflowClient

    run = tmp_path / "run"
    model = gl.Model("vae", **TINY_VAE).fit("digits", steps=20, out=run, trackers=["mlflow"], **LOGGING, **QUIET)
    client = MlflowClient(mlflow_store)
    experiment = client.get_experiment_by_name("genloom")
    tracked, = client.search_runs([experiment.experiment_id])
    assert tracked.info.status == "FINISHED" and tracked.info.run_name == "run"
    assert tracked.data.params["family"] == "vae" and tracked.data.params["family_options.latent_dim"] == "4"
    assert tracked.data.params["train.steps"] == "20" and tracked.data.params["data"] == "digits"
    history = client.get_metric_history(tracked.info.run_id, "loss")
    assert [(m.step, pytest.approx(m.value, rel=1e-6)) for m in history] == logged(run, "loss")
    assert tracked.data.metrics["final_elbo"] == pytest.approx(model.record["final_metrics"]["elbo"], rel=1e-6)
    assert tracked.data.tags["mlflow.note.content"] == (run / "MODEL_CARD.md").read_text()
    stored = {item.path for item in client.list_artifacts(tracked.info.run_id, "run")}
    assert {"run/config.json", "run/model.safetensors", "run/report.html", "run/metrics.jsonl"} <= stored
    samples = {item.path for item in client.list_artifacts(tracked.info.run_id, "samples")}
    assert samples == {"samples/step-000015.png", "samples/final.png"}


def test_the_command_line_tracks_with_mlflow_when_its_uri_is_set(tmp_path, mlflow_store, capsys):
    from mlflow import MlflowClient

    code = main(["train", "digits", "--family", "vae", "--latent-dim", "4", "--width", "8", "--steps", "3",
                 "--out", str(tmp_path / "cli-run"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    experiment = MlflowClient(mlflow_store).get_experiment_by_name("genloom")
    assert [r.info.run_name for r in MlflowClient(mlflow_store).search_runs([experiment.experiment_id])] == ["cli-run"]


def test_an_mlflow_server_that_does_not_answer_is_a_warning_and_the_run_goes_on(tmp_path, capsys):
    run = tmp_path / "run"
    gl.Model("vae", **TINY_VAE).fit("digits", steps=5, out=run, trackers=[MLflow("http://127.0.0.1:9")], **QUIET)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == ["genloom: warning: mlflow tracking stopped: the MLflow server at http://127.0.0.1:9 does not "
                        "answer (Connection refused); the run folder keeps everything"]
    assert (run / "model.safetensors").exists() and gl.load(run).record["steps_trained"] == 5


class FailsOnSecondLine(Tracker):
    name = "flaky"

    def __init__(self):
        self.lines = []

    def metrics(self, line):
        self.lines.append(line)
        if len(self.lines) == 2:
            raise OSError("disk full")


def test_a_tracker_that_fails_mid_run_is_dropped_with_one_warning(tmp_path, capsys):
    flaky = FailsOnSecondLine()
    run = tmp_path / "run"
    gl.Model("vae", **TINY_VAE).fit("digits", steps=40, out=run, trackers=[flaky], log_every=10, **QUIET)
    assert len(flaky.lines) == 2  # not called again after it failed
    assert capsys.readouterr().err.count("flaky tracking stopped: disk full") == 1
    assert [step for step, _ in logged(run, "loss")] == [10, 20, 30, 40]  # the run's own log is whole


@pytest.mark.parametrize("module, flag", [("mlflow", "--mlflow"), ("tensorboard", "--tensorboard")])
def test_a_missing_tracking_extra_names_the_pip_install(tmp_path, monkeypatch, capsys, module, flag):
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    code = main(["train", "digits", flag, "--steps", "1", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err == (f"genloom: error: {flag} needs the tracking extra ({module} is missing): "
                                 "pip install 'genloom[tracking]'\n")
    assert not (tmp_path / "run").exists()


def test_an_mlflow_uri_without_mlflow_installed_warns_and_trains(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    code = main(["train", "digits", "--family", "vae", "--steps", "1", "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 0 and (tmp_path / "run" / "model.safetensors").exists()
    assert "MLFLOW_TRACKING_URI is set, but the run is not tracked: --mlflow needs the tracking extra" in capsys.readouterr().err
