"""Run folders: what is written, what is refused when read back."""
import json
import shutil

import pytest

import genloom as gl
from genloom.runs.folder import TRAINER_FILES


def test_a_run_holds_its_pages_weights_and_trainer_files(trained_run):
    names = {path.name for path in gl.load(trained_run).run_dir.iterdir()}
    assert {"config.json", "codec.json", "model.safetensors", "ema.safetensors", "report.html", "MODEL_CARD.md",
            "loss_curve.svg", "samples", *TRAINER_FILES} <= names


def test_saving_elsewhere_carries_the_trainer_files_along(trained_run, tmp_path):
    gl.load(trained_run).save(tmp_path / "copy")
    for name in TRAINER_FILES:
        assert (tmp_path / "copy" / name).read_bytes() == (gl.load(trained_run).run_dir / name).read_bytes()
    assert (gl.load(tmp_path / "copy").sample(4, seed=2) == gl.load(trained_run).sample(4, seed=2)).all()


def test_a_run_that_kept_a_weight_average_is_not_sampled_without_it(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    (run / "ema.safetensors").unlink()
    with pytest.raises(gl.GenloomError, match="lacks ema.safetensors, the weight average it samples from "
                                              r"\(ema_decay 0.999\); restore the file, or train the run again"):
        gl.load(run)


def test_without_a_weight_average_the_weights_themselves_sample(tmp_path):
    model = gl.Model("vae", latent_dim=2, width=4).fit("digits", steps=2, ema_decay=0.0, out=tmp_path / "r",
                                                       progress=False)
    (tmp_path / "r" / "ema.safetensors").unlink()  # with ema_decay 0 it equals the weights
    assert (gl.load(tmp_path / "r").sample(3, seed=0) == model.sample(3, seed=0)).all()


def test_a_codec_that_belongs_to_other_weights_is_named(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    codec = json.loads((run / "codec.json").read_text())
    (run / "codec.json").write_text(json.dumps({**codec, "image_size": [5, 5], "channels": 3}))
    with pytest.raises(gl.GenloomError, match=r"do not fit the model that config.json and codec.json describe "
                                              r"\(image data of 3x5x5\): log_scale is 1x1x1 in the file, 3x1x1 for "
                                              "that model"):
        gl.load(run)
