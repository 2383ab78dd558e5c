"""family="auto": which family a table, an image set or a text gets, and that the run records why."""
import json

import numpy as np
import pandas as pd
import pytest

import genloom as gl
import genloom.choice as choice
from genloom.choice import (REFERENCE_WIDTH, SETUP_SECONDS, TRANSFORMER_MIN_EPOCHS,
                            TRANSFORMER_TOKENS_PER_SECOND_AND_THREAD, NumberColumns, choose_family,
                            probed_tokens_per_second, transformer_epochs, transformer_speed)
from genloom.cli import main
from genloom.data.tables import column_kinds
from genloom.defaults import THREAD_SPEEDUP_EXPONENT, family_config


def test_a_small_table_gets_the_vae_in_seconds_and_the_transformer_in_a_minute():
    # penguins: 344 rows of 7 columns; 3 s leave one for training (some 5 passes), a minute some 270 passes
    short = choose_family("table", 344, 7, {"minutes": 0.05}, threads=1)
    assert short.family == "vae" and "344 rows" in short.reason and "measured" not in short.reason
    assert choose_family("table", 344, 7, {"minutes": 1}, threads=1).family == "autoregressive"


def test_a_large_table_gets_the_transformer_only_when_it_can_pass_over_the_rows_often():
    # Adult: 26,049 rows of 15 columns, whose transformer is 64 wide; by the fixed constants a minute on 2 threads
    # is about 6.5 passes, 6 minutes about 40
    short = choose_family("table", 26_049, 15, {"minutes": 1}, threads=2, probe=False)
    long = choose_family("table", 26_049, 15, {"minutes": 6}, threads=2, probe=False)
    assert short.family == "vae" and "about 6.5 passes" in short.reason
    assert long.family == "autoregressive"
    assert long.reason.startswith(f"26,049 rows and about "
                                  f"{transformer_epochs(26_049, 15, {'minutes': 6}, transformer_speed(26_049, 2)):.0f}"
                                  " passes")
    # a second thread adds about half a thread's speed, not a whole one: 1.8 minutes are about 11.9 passes on two
    # threads, 8.1 on one
    assert choose_family("table", 26_049, 15, {"minutes": 1.8}, threads=2, probe=False).family == "autoregressive"
    assert choose_family("table", 26_049, 15, {"minutes": 1.8}, threads=1, probe=False).family == "vae"


def test_the_narrower_transformer_of_a_large_table_is_counted_faster():
    assert family_config("autoregressive", "table", {}, 26_049).n_embd == 64
    assert family_config("autoregressive", "table", {}, 19_999).n_embd == REFERENCE_WIDTH
    assert transformer_speed(19_999, 1) == TRANSFORMER_TOKENS_PER_SECOND_AND_THREAD
    assert transformer_speed(26_049, 1) == pytest.approx(TRANSFORMER_TOKENS_PER_SECOND_AND_THREAD * 2 ** 1.3)
    assert transformer_speed(26_049, 2) == pytest.approx(transformer_speed(26_049, 1) * 2 ** THREAD_SPEEDUP_EXPONENT)


def test_passes_count_the_tightest_budget_given():
    speed = TRANSFORMER_TOKENS_PER_SECOND_AND_THREAD
    assert transformer_epochs(10_000, 9, {"steps": 400}, speed) == pytest.approx(400 * 500 / 10_000)
    assert transformer_epochs(10_000, 9, {}, speed) == pytest.approx(2000 * 500 / 10_000)  # the default 2,000 steps
    assert transformer_epochs(10_000, 9, {"steps": 400, "epochs": 3}, speed) == 3
    assert choose_family("table", 500, 9, {"epochs": TRANSFORMER_MIN_EPOCHS}, 1).family == "autoregressive"
    assert choose_family("table", 500, 9, {"epochs": TRANSFORMER_MIN_EPOCHS - 1}, 1).family == "vae"
    # a budget in minutes counts only the time left for training (SETUP_SECONDS go to the codec and the run)
    assert transformer_epochs(1_000, 12, {"minutes": 1}, speed) == \
        pytest.approx((60 - SETUP_SECONDS) * speed / 13 / 1_000)


def test_a_budget_in_doubt_is_settled_by_the_speed_measured_here(monkeypatch):
    # penguins in 4.8 s: the fixed constants give about 13 passes, within PROBE_MARGIN of the 10 needed
    measured = []
    monkeypatch.setattr(choice, "probed_tokens_per_second", lambda *a: measured.append(a) or 32_000)
    fast = choose_family("table", 344, 7, {"minutes": 0.08}, threads=1)
    assert measured == [(344, 7, 1)] and fast.family == "autoregressive" and "32,000 tokens/s, measured" in fast.reason
    monkeypatch.setattr(choice, "probed_tokens_per_second", lambda *a: 2_000)
    assert choose_family("table", 344, 7, {"minutes": 0.08}, threads=1).family == "vae"
    # a clear case, or a budget in steps, is not probed
    monkeypatch.setattr(choice, "probed_tokens_per_second", lambda *a: pytest.fail("probed a clear case"))
    choose_family("table", 344, 7, {"minutes": 1}, threads=1)
    choose_family("table", 344, 7, {"steps": 300}, threads=1)


def test_the_probe_predicts_the_speed_a_real_fit_trains_at(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=3_000) for i in range(5)} | {"c": rng.choice(list("abc"), 3_000)})
    predicted = probed_tokens_per_second(len(frame), frame.shape[1], threads=1)
    model = gl.Model("autoregressive").fit(frame, steps=40, out=tmp_path / "run", progress=False, threads=1,
                                           eval_every=10_000)
    batch = model.record["train"]["batch_size"]
    trained = 40 * batch * (frame.shape[1] + 1) / model.record["train_seconds"]
    # the same net and batch: the two agree but for the machine's load, and a broken count (rows for tokens, a
    # net of another size) would be several times off
    assert predicted / 1.6 < trained < predicted * 1.6


def test_a_small_table_of_continuous_numbers_gets_the_vae_whatever_the_budget():
    # breast_cancer: 30 of its 31 columns continuous, 456 rows: the transformer would draw them as 16 quantile bins
    choice = choose_family("table", 456, 31, {"minutes": 60}, threads=2, numbers=NumberColumns(30, 30))
    assert choice.family == "vae" and choice.reason.startswith("30 of 31 columns are continuous numbers")
    assert "16 quantile bins on 456 rows" in choice.reason
    # a third of them continuous: the budget decides
    assert choose_family("table", 456, 31, {"minutes": 60}, threads=2,
                         numbers=NumberColumns(30, 10)).family == "autoregressive"
    assert choose_family("table", 456, 31, {"minutes": 0.05}, threads=2, numbers=NumberColumns(30, 10)).family == "vae"


def test_a_larger_table_of_numbers_gets_diffusion_and_one_of_mixed_columns_the_budgets_family():
    # pendigits: 16 of 17 columns numbers, 5,496 rows
    choice = choose_family("table", 5_496, 17, {"minutes": 1}, threads=1, numbers=NumberColumns(16, 16))
    assert choice.family == "diffusion" and choice.reason == "16 of 17 columns are numbers, on 5,496 rows: " \
                                                             "diffusion scores best, sampled by dpm-solver in 20 steps"
    assert choice.options == {"sampler": "dpm-solver", "sample_steps": 20}
    # from 1,000 rows and 80% of the columns (14 of 17), not below either
    assert choose_family("table", 1_000, 17, {"epochs": 100}, 1, numbers=NumberColumns(14, 0)).family == "diffusion"
    assert choose_family("table", 1_000, 17, {"epochs": 100}, 1, numbers=NumberColumns(13, 0)).family == \
        "autoregressive"
    assert choose_family("table", 999, 17, {"epochs": 100}, 1, numbers=NumberColumns(16, 0)).family == \
        "autoregressive"
    # a table of mixed columns (taxis: 6 numbers of 14) gets the budget's family
    for epochs, family in ((100, "autoregressive"), (2, "vae")):
        assert choose_family("table", 5_112, 14, {"epochs": epochs}, 1, numbers=NumberColumns(6, 4)).family == family


def test_number_columns_count_the_codecs_numbers_and_those_with_many_distinct_values():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"height": rng.normal(170, 10, 100), "children": rng.integers(0, 5, 100),
                          "user_id": np.arange(100), "name": np.arange(100).astype(str),
                          "ratio": np.repeat(rng.random(40), 3)[:100], "smoker": rng.random(100) < 0.5,
                          "income": np.where(rng.random(100) < 0.75, np.nan, rng.normal(size=100))})
    # height: 100 values in 100 rows; children: 5; ratio: 34, above 0.3 of 100; income: as many values as rows that
    # have one; an identifier, strings and booleans are no numbers
    assert NumberColumns.of(frame, column_kinds(frame)) == NumberColumns(numbers=4, continuous=3)
    frame["ratio"] = np.repeat(rng.random(25), 4)  # 25 values: not continuous
    assert NumberColumns.of(frame, column_kinds(frame)) == NumberColumns(numbers=4, continuous=2)
    # a column the metadata calls categorical is no number
    assert NumberColumns.of(frame, column_kinds(frame, {"height": "categorical"})) == NumberColumns(3, 1)


def test_an_auto_model_on_a_larger_table_of_numbers_trains_diffusion(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=1_200), "y": rng.integers(0, 9, 1_200), "c": rng.choice(["a", "b"],
                                                                                                      1_200)})
    frame["z"] = frame["x"] * 2  # 3 of 4 columns numbers: not enough
    assert gl.Model().fit(frame, steps=2, progress=False).family_name != "diffusion"
    frame["w"] = frame["y"] + 1  # 4 of 5: diffusion
    model = gl.Model().fit(frame, steps=2, out=tmp_path / "run", progress=False)
    assert model.family_name == "diffusion"
    assert model.record["family_choice"]["reason"] == "4 of 5 columns are numbers, on 1,200 rows: diffusion " \
                                                      "scores best, sampled by dpm-solver in 20 steps"
    # with its fast sampler, which a table's diffusion does not take when asked for by name
    assert (model.config.sampler, model.config.sample_steps) == ("dpm-solver", 20)
    assert gl.load(tmp_path / "run").config.sample_steps == 20
    assert gl.Model("diffusion").fit(frame, steps=2, progress=False).config.sampler == "ddpm"
    # an option the user gives stands, and auto's sampling goes as a whole: DDPM asked for takes its own 100 steps
    assert gl.Model(sample_steps=50).fit(frame, steps=2, progress=False).config.sample_steps == 50
    ddpm = gl.Model(sampler="ddpm").fit(frame, steps=2, progress=False).config
    assert (ddpm.sampler, ddpm.sample_steps) == ("ddpm", 100)


def test_an_auto_model_on_a_small_continuous_table_trains_the_vae(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200), "c": rng.choice(["a", "b"], 200)})
    model = gl.Model().fit(frame, steps=2, out=tmp_path / "run", progress=False)
    # the continuous columns decide before the budget does
    assert model.family_name == "vae"
    assert model.record["family_choice"]["reason"].startswith("2 of 3 columns are continuous numbers")


@pytest.mark.parametrize("kind, family", [("image", "vae"), ("text", "autoregressive")])
def test_images_and_text_get_their_kinds_default(kind, family):
    assert choose_family(kind, 1000, 0, {}, threads=1).family == family


def test_a_fitted_auto_model_records_the_choice_and_info_shows_it(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.integers(0, 20, size=200), "c": rng.choice(["a", "b"], 200)})
    model = gl.Model().fit(frame, steps=3, out=tmp_path / "run", progress=False)
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert model.family_name == record["family"] == "vae"
    assert record["family_choice"]["asked"] == "auto" and record["family_choice"]["family"] == "vae"
    # 3 steps of 64 rows: about one pass over the 200 rows
    reason = record["family_choice"]["reason"]
    assert reason.startswith("the budget gives the transformer about 1.0 passes over 200 rows")
    assert main(["info", str(tmp_path / "run")]) == 0
    assert "vae (auto: the budget gives the transformer about 1.0 passes" in capsys.readouterr().out


def test_a_resumed_auto_run_keeps_its_family(tmp_path, monkeypatch):
    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=100)})
    gl.Model().fit(frame, steps=2, out=tmp_path / "run", progress=False)
    # the resumed run takes the family it recorded: it does not choose again
    monkeypatch.setattr("genloom.model.choose_family", lambda *a, **k: pytest.fail("chose again"))
    resumed = gl.Model().fit(frame, steps=4, out=tmp_path / "run", resume=True, progress=False)
    assert resumed.record["family"] == "vae" and resumed.record["steps_trained"] == 4
    assert resumed.record["family_choice"]["family"] == "vae"
