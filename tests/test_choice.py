"""family="auto": which family a table, an image set or a text gets, and that the run records why."""
import json

import numpy as np
import pandas as pd
import pytest

import genloom as gl
from genloom.choice import TRANSFORMER_MIN_EPOCHS, TRANSFORMER_MIN_ROWS, choose_family, transformer_epochs
from genloom.cli import main


def test_small_tables_get_the_vae_whatever_the_budget():
    choice = choose_family("table", 344, 7, {"minutes": 60}, threads=2)
    assert choice.family == "vae" and "344 rows" in choice.reason


def test_a_large_table_gets_the_transformer_only_when_it_can_pass_over_the_rows_often():
    # Adult: 26,049 rows of 15 columns; a minute on 2 threads is about four passes, 10 minutes about forty
    short = choose_family("table", 26_049, 15, {"minutes": 1}, threads=2)
    long = choose_family("table", 26_049, 15, {"minutes": 10}, threads=2)
    assert short.family == "vae" and "about 4 passes" in short.reason
    assert long.family == "autoregressive"
    assert choose_family("table", 26_049, 15, {"minutes": 10}, threads=1).family == "vae"  # half the speed


def test_passes_count_the_tightest_budget_given():
    assert transformer_epochs(10_000, 9, {"steps": 400}, 1) == pytest.approx(400 * 500 / 10_000)
    assert transformer_epochs(10_000, 9, {}, 1) == pytest.approx(2000 * 500 / 10_000)  # the default 2,000 steps
    assert transformer_epochs(10_000, 9, {"steps": 400, "epochs": 3}, 1) == 3
    assert choose_family("table", TRANSFORMER_MIN_ROWS, 9, {"epochs": TRANSFORMER_MIN_EPOCHS}, 1).family == \
        "autoregressive"
    assert choose_family("table", TRANSFORMER_MIN_ROWS, 9, {"epochs": TRANSFORMER_MIN_EPOCHS - 1}, 1).family == "vae"


@pytest.mark.parametrize("kind, family", [("image", "vae"), ("text", "autoregressive")])
def test_images_and_text_get_their_kinds_default(kind, family):
    assert choose_family(kind, 1000, 0, {}, threads=1).family == family


def test_a_fitted_auto_model_records_the_choice_and_info_shows_it(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["a", "b"], 200)})
    model = gl.Model().fit(frame, steps=3, out=tmp_path / "run", progress=False)
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert model.family_name == record["family"] == "vae"
    assert record["family_choice"]["asked"] == "auto" and record["family_choice"]["family"] == "vae"
    assert record["family_choice"]["reason"].startswith("a small table (200 rows < 5,000)")
    assert main(["info", str(tmp_path / "run")]) == 0
    assert "vae (auto: a small table (200 rows" in capsys.readouterr().out


def test_a_resumed_auto_run_keeps_its_family(tmp_path):
    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=100)})
    gl.Model().fit(frame, steps=2, out=tmp_path / "run", progress=False)
    resumed = gl.Model().fit(frame, steps=4, out=tmp_path / "run", resume=True, progress=False)
    assert resumed.record["family"] == "vae" and resumed.record["steps_trained"] == 4
    assert resumed.record["family_choice"]["family"] == "vae"
