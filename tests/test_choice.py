"""family="auto": which family a table, an image set or a text gets, and that the run records why."""
import json

import numpy as np
import pandas as pd
import pytest

import genloom as gl
from genloom.choice import (SETUP_SECONDS, THREAD_SPEEDUP_EXPONENT, TRANSFORMER_MIN_EPOCHS,
                            TRANSFORMER_TOKENS_PER_SECOND_AND_THREAD, choose_family, transformer_epochs)
from genloom.cli import main


def test_a_small_table_gets_the_vae_in_seconds_and_the_transformer_in_a_minute():
    # penguins: 344 rows of 7 columns; 3 s are all setting up and writing the run, a minute some 160 passes
    short = choose_family("table", 344, 7, {"minutes": 0.05}, threads=1)
    assert short.family == "vae" and "344 rows" in short.reason
    assert choose_family("table", 344, 7, {"minutes": 1}, threads=1).family == "autoregressive"


def test_a_large_table_gets_the_transformer_only_when_it_can_pass_over_the_rows_often():
    # Adult: 26,049 rows of 15 columns; a minute on 2 threads is about 1.6 passes, 15 minutes about 25
    short = choose_family("table", 26_049, 15, {"minutes": 1}, threads=2)
    long = choose_family("table", 26_049, 15, {"minutes": 15}, threads=2)
    assert short.family == "vae" and "about 1.6 passes" in short.reason
    assert long.family == "autoregressive"
    # a second thread adds about half a thread's speed, not a whole one
    assert choose_family("table", 26_049, 15, {"minutes": 15}, threads=1).family == "vae"
    assert transformer_epochs(26_049, 15, {"minutes": 15}, 2) / transformer_epochs(26_049, 15, {"minutes": 15}, 1) \
        == pytest.approx(2 ** THREAD_SPEEDUP_EXPONENT)


def test_passes_count_the_tightest_budget_given():
    assert transformer_epochs(10_000, 9, {"steps": 400}, 1) == pytest.approx(400 * 500 / 10_000)
    assert transformer_epochs(10_000, 9, {}, 1) == pytest.approx(2000 * 500 / 10_000)  # the default 2,000 steps
    assert transformer_epochs(10_000, 9, {"steps": 400, "epochs": 3}, 1) == 3
    assert choose_family("table", 500, 9, {"epochs": TRANSFORMER_MIN_EPOCHS}, 1).family == "autoregressive"
    assert choose_family("table", 500, 9, {"epochs": TRANSFORMER_MIN_EPOCHS - 1}, 1).family == "vae"
    # a budget in minutes counts only the time left for training (SETUP_SECONDS go to the codec and the run)
    assert transformer_epochs(1_000, 12, {"minutes": 1}, 1) == \
        pytest.approx((60 - SETUP_SECONDS) * TRANSFORMER_TOKENS_PER_SECOND_AND_THREAD / 13 / 1_000)


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
    # 3 steps of 64 rows: about one pass over the 200 rows
    reason = record["family_choice"]["reason"]
    assert reason.startswith("the budget gives the transformer about 1.0 passes over 200 rows")
    assert main(["info", str(tmp_path / "run")]) == 0
    assert "vae (auto: the budget gives the transformer about 1.0 passes" in capsys.readouterr().out


def test_a_resumed_auto_run_keeps_its_family(tmp_path):
    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=100)})
    gl.Model().fit(frame, steps=2, out=tmp_path / "run", progress=False)
    resumed = gl.Model().fit(frame, steps=4, out=tmp_path / "run", resume=True, progress=False)
    assert resumed.record["family"] == "vae" and resumed.record["steps_trained"] == 4
    assert resumed.record["family_choice"]["family"] == "vae"
