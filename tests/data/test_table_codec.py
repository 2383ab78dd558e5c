import json
import numpy as np
import pandas as pd
import pytest
import torch

import genloom as gl
from genloom.data.table_codec import TabularCodec
from genloom.data.table_columns import CategoricalColumn, RowPositions
from genloom.errors import GenloomError
from genloom.layout import Span


def _table(n=300, seed=0):
    rng = np.random.default_rng(seed)
    income = np.concatenate([rng.normal(30_000, 5_000, n // 2), rng.normal(90_000, 10_000, n - n // 2)])
    score = rng.normal(0, 1, n)
    score[rng.random(n) < 0.1] = np.nan
    city = rng.choice(["Paris", "Lyon", "Nice", None], n, p=[0.5, 0.3, 0.15, 0.05])
    days = rng.integers(0, 3650, n)
    return pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "age": rng.integers(18, 90, n),
        "income": income,
        "score": score,
        "city": city,
        "member": rng.random(n) < 0.3,
        "joined": (pd.Timestamp("2015-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d"),
    })


def _codec(frame, **options):
    return TabularCodec(**options).fit(gl.load_data(frame))


def test_column_kinds_are_inferred():
    codec = _codec(_table())
    assert codec.kinds == {"customer_id": "identifier", "age": "numerical", "income": "numerical",
                           "score": "numerical", "city": "categorical", "member": "boolean", "joined": "datetime"}


def test_round_trip_restores_values_order_dtypes_and_missing():
    frame = _table()
    codec = _codec(frame)
    decoded = codec.decode(codec.encode(frame))
    assert list(decoded.columns) == list(frame.columns)
    for name in ("age", "city", "member", "joined"):
        pd.testing.assert_series_equal(decoded[name], frame[name], check_dtype=True, obj=name)
    np.testing.assert_allclose(decoded["income"], frame["income"], rtol=1e-4)
    assert decoded["score"].isna().equals(frame["score"].isna())
    np.testing.assert_allclose(decoded["score"].dropna(), frame["score"].dropna(), rtol=1e-3, atol=1e-4)
    assert decoded["customer_id"].is_unique and decoded["customer_id"].str.fullmatch(r"C\d{5}").all()


def test_layout_spans_describe_every_block():
    frame = _table()
    codec = _codec(frame)
    layout = codec.layout
    x = codec.encode(frame)
    assert layout.kind == "table" and layout.shape == (x.shape[1],) == (sum(span.width for span in layout.spans),)
    assert {span.kind for span in layout.spans} == {"continuous", "mode", "missing", "category"}
    start = 0
    for span in layout.spans:
        block = x[:, start:start + span.width]
        if span.one_hot:
            assert torch.equal(block.sum(1), torch.ones(len(x))) and set(block.unique().tolist()) <= {0.0, 1.0}
        else:
            assert block.abs().max() < 1
        start += span.width


def test_income_modes_are_found_and_values_stay_in_bounds():
    frame = _table()
    codec = _codec(frame)
    income = next(c for c in codec.columns if c.name == "income")
    assert len(income.state.transform.means) >= 2  # two clusters of incomes
    decoded = codec.decode(torch.randn(200, codec.layout.shape[0]) * 5)
    assert decoded["income"].between(frame["income"].min(), frame["income"].max()).all()
    assert decoded["age"].between(18, 89).all() and (decoded["age"] == decoded["age"].round()).all()


def test_json_round_trip_gives_the_same_codec():
    frame = _table()
    codec = _codec(frame)
    again = TabularCodec.from_json(json.loads(json.dumps(codec.to_json())))
    assert torch.equal(again.encode(frame), codec.encode(frame))
    x = torch.randn(50, codec.layout.shape[0])
    pd.testing.assert_frame_equal(again.decode(x), codec.decode(x))
    assert again.layout == codec.layout


def test_rare_categories_share_a_slot_and_come_back_by_frequency():
    values = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 4 + ["e"], name="letter")
    column = CategoricalColumn("letter", max_categories=2).fit(values, np.random.default_rng(0))
    assert column.slots == ["a", "b", "__other__"] and column.state.rare == ["c", "d", "e"]
    other = np.tile([[0.0, 0.0, 1.0]], (1000, 1))
    drawn = column.decode(other, RowPositions(0, 0, 1000)).value_counts(normalize=True)
    assert drawn["c"] == pytest.approx(0.75, abs=0.05) and drawn["e"] == pytest.approx(0.05, abs=0.03)


def test_unseen_categories_and_missing_columns_are_named():
    frame = _table()
    codec = _codec(frame)
    with pytest.raises(GenloomError, match="column 'city' has the category 'Rome', unseen in training"):
        codec.encode(frame.assign(city="Rome"))
    with pytest.raises(GenloomError, match="the table lacks column 'age'"):
        codec.encode(frame.drop(columns="age"))


def test_metadata_overrides_a_kind(tmp_path):
    frame = _table()
    frame.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "meta.json").write_text(json.dumps({"columns": {"age": {"sdtype": "categorical"}}}))
    data = gl.load_data(tmp_path / "t.csv", metadata=tmp_path / "meta.json")
    assert TabularCodec().fit(data).kinds["age"] == "categorical"


def test_adult_round_trips():
    data = gl.load_data("adult")
    frame = data.values.iloc[:3000]
    codec = _codec(frame)
    assert codec.kinds["income"] == "categorical" and codec.kinds["age"] == "numerical"
    decoded = codec.decode(codec.encode(frame))
    for name, kind in codec.kinds.items():
        if kind == "categorical" or name == "age":
            pd.testing.assert_series_equal(decoded[name], frame[name], obj=name)


def test_time_zones_survive_and_new_ids_never_repeat_real_ones():
    stamps = pd.date_range("2024-01-01", periods=100, freq="h", tz="Europe/Paris")
    frame = pd.DataFrame({"at": stamps, "order_id": np.arange(100, 200), "ref": [f"R{i:03d}" for i in range(100)]})
    codec = _codec(frame)
    decoded = codec.decode(codec.encode(frame))
    pd.testing.assert_series_equal(decoded["at"], frame["at"], check_dtype=False)
    assert str(decoded["at"].dt.tz) == "Europe/Paris"
    assert decoded["order_id"].min() == 200 and decoded["ref"].iloc[0] == "R100"


def test_a_numerical_column_without_numbers_is_named(tmp_path):
    frame = pd.DataFrame({"x": ["a", "b", "c"] * 4})
    with pytest.raises(GenloomError, match="column 'x' holds no numbers"):
        TabularCodec(kinds={"x": "numerical"}).fit(gl.load_data(frame))


def test_conditions_select_rows_and_name_bad_columns_and_values():
    frame = _table()
    codec = _codec(frame)
    mask = codec.condition_mask(frame, {"city": "Lyon", "member": True})
    assert mask.tolist() == ((frame["city"] == "Lyon") & frame["member"]).tolist()
    with pytest.raises(GenloomError, match="unknown column 'town' in the conditions"):
        codec.condition_mask(frame, {"town": "Lyon"})
    with pytest.raises(GenloomError, match="column 'city' has no category 'Rome'"):
        codec.condition_mask(frame, {"city": "Rome"})
    with pytest.raises(GenloomError, match="conditions work on categorical and boolean columns; 'age' is numerical"):
        codec.condition_mask(frame, {"age": 30})


def test_condition_positions_are_the_one_hot_slots_of_the_encoded_rows():
    frame = _table()
    codec = _codec(frame)
    encoded = codec.encode(frame)
    for conditions in ({"city": "Lyon"}, {"member": True}, {"city": "Nice", "member": False}):
        positions = codec.condition_positions(conditions)
        assert len(positions) == len(conditions)
        rows = codec.condition_mask(frame, conditions)
        assert (encoded[rows][:, positions] == 1).all() and (encoded[~rows][:, positions] == 1).all(1).sum() == 0
    values = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5, name="letter")
    rare = TabularCodec([CategoricalColumn("letter", max_categories=2).fit(values, np.random.default_rng(0))])
    assert rare.condition_positions({"letter": "d"}) == [2]  # the slot the rare categories share


def test_conditions_ignore_surrounding_spaces_only_when_nothing_matches_exactly():
    frame = pd.DataFrame({"income": [" >50K", " <=50K"] * 10, "x": np.arange(20.0)})
    codec = _codec(frame)
    assert codec.condition_mask(frame, {"income": ">50K"}).tolist() == [True, False] * 10


def test_quantile_numbers_are_one_value_that_keeps_spikes_and_bounds():
    rng = np.random.default_rng(0)
    gain = np.where(rng.random(2000) < 0.9, 0, rng.lognormal(8, 1, 2000)).round()
    frame = pd.DataFrame({"gain": gain, "height": rng.normal(170, 10, 2000)})
    codec = _codec(frame, numbers="quantile")
    assert codec.layout.spans == (Span("continuous", 1), Span("continuous", 1))
    x = codec.encode(frame)
    assert x.abs().max() < 1 and abs(x[:, 1].std().item() - 0.25) < 0.02  # a standard normal, scaled by 1/4
    decoded = codec.decode(x)
    assert (decoded["gain"] == frame["gain"]).mean() > 0.99  # the spike at 0 and whole numbers come back
    np.testing.assert_allclose(decoded["height"], frame["height"], atol=0.5)
    noisy = codec.decode(torch.rand(500, 2) * 2 - 1)
    assert noisy["gain"].between(0, gain.max()).all() and (noisy["gain"] == noisy["gain"].round()).all()
    assert TabularCodec.from_json(json.loads(json.dumps(codec.to_json()))).decode(x).equals(decoded)
    with pytest.raises(GenloomError, match="unknown number transform 'log'; use one of modes, quantile, standard"):
        TabularCodec(numbers="log")


def test_standard_numbers_keep_the_columns_own_scale_past_its_range():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"height": rng.normal(170, 10, 2000)})
    codec = _codec(frame, numbers="standard")
    assert codec.layout.spans == (Span("continuous", 1),)
    x = codec.encode(frame)[:, 0].numpy()
    assert abs(x.mean()) < 1e-5 and x.std() == pytest.approx(0.25, rel=1e-4)  # a standard score over 4
    np.testing.assert_allclose(codec.decode(codec.encode(frame))["height"], frame["height"], atol=1e-3)
    # linear past the range, where the saturating transforms add the excess to their bound
    far = codec.encode(pd.DataFrame({"height": [170.0, 170.0 + 400]}))[:, 0].numpy()
    assert far[1] - far[0] == pytest.approx(400 / (4 * frame["height"].std(ddof=0)), rel=1e-4)
    assert TabularCodec.from_json(json.loads(json.dumps(codec.to_json()))).layout == codec.layout


def test_a_property_column_is_one_quantile_value_whose_place_the_layout_gives():
    frame = _table().drop(columns=["score"])  # no missing values in the property
    codec = TabularCodec(numbers="modes", property="income").fit(gl.load_data(frame))
    columns = {c.name: c for c in codec.columns}
    assert columns["income"].numbers == "quantile" and columns["age"].numbers == "modes"
    position = codec.layout.property_position
    assert position == codec.column_starts()["income"]
    encoded = codec.encode(frame)[:, position].numpy()
    order = np.argsort(frame["income"].to_numpy())
    assert np.all(np.diff(encoded[order]) >= 0)  # monotone in the income: raising it raises the income
    restored = TabularCodec.from_json(json.loads(json.dumps(codec.to_json())))
    assert restored.layout == codec.layout


@pytest.mark.parametrize("name, message", [
    ("salary", "the table has no column 'salary' to predict; columns: customer_id, age, income"),
    ("city", "the property 'city' is a categorical column; a property head predicts a number: name a numerical"),
    ("score", r"the property 'score' is missing in \d+ rows; drop those rows first"),
])
def test_a_property_must_be_a_complete_numerical_column(name, message):
    with pytest.raises(GenloomError, match=message):
        TabularCodec(property=name).fit(gl.load_data(_table()))


def test_numbers_past_the_training_range_encode_past_the_bound_in_proportion():
    frame = _table().drop(columns=["score"])
    for numbers in ("modes", "quantile"):
        codec = TabularCodec(numbers=numbers).fit(gl.load_data(frame))
        position = codec.column_starts()["income"]
        top = frame["income"].max()
        rows = pd.concat([frame.iloc[[0, 0, 0]]] * 1, ignore_index=True)
        rows["income"] = [top, top + 10_000, top + 40_000]
        encoded = codec.encode(rows)[:, position].numpy()
        assert encoded[0] <= 1 < encoded[1] < encoded[2]
        # four spreads of the column per unit: 30,000 more is about 30,000 / (4 * 30,500) further
        assert encoded[2] - encoded[1] == pytest.approx(30_000 / (4 * frame["income"].std()), rel=0.3)
        in_range = codec.encode(frame)[:, position].numpy()
        assert np.abs(in_range).max() <= 1  # the training rows themselves stay within the bound


def test_condition_columns_are_encoded_apart_from_the_row():
    frame = pd.DataFrame({"x": np.linspace(-1, 1, 200), "mode": ["a", "b"] * 100, "next_x": np.linspace(0, 2, 200)})
    codec = TabularCodec(numbers="quantile", condition_on=["x", "mode"]).fit(gl.Dataset("table", frame, "t"))
    assert [c.name for c in codec.columns] == ["next_x"] and codec.condition_on == ["x", "mode"]
    assert codec.encode(frame).shape == (200, codec.layout.shape[0]) and codec.layout.shape == (1,)
    given = codec.row_conditions(frame)
    assert given.shape == (200, codec.layout.condition_width) and codec.layout.condition_width == 3  # x, a/b
    assert list(codec.decode(codec.encode(frame)).columns) == ["next_x"]
    again = TabularCodec.from_json(json.loads(json.dumps(codec.to_json())))
    assert torch.equal(again.row_conditions(frame), given) and again.layout == codec.layout
    assert list(codec.kinds) == ["x", "mode", "next_x"]


@pytest.mark.parametrize("condition_on, message", [
    (["speed"], "condition_on names 'speed', not a column of this table; columns: x, next_x"),
    (["x", "next_x"], "condition_on names every column, which leaves the model nothing to generate"),
])
def test_condition_columns_must_be_some_of_the_tables(condition_on, message):
    frame = pd.DataFrame({"x": np.arange(50.0), "next_x": np.arange(50.0) + 1})
    with pytest.raises(GenloomError, match=message):
        TabularCodec(condition_on=condition_on).fit(gl.Dataset("table", frame, "t"))


def test_target_first_leads_the_row_with_the_target_and_decodes_in_the_tables_order():
    frame = _table().drop(columns="customer_id")
    plain = _codec(frame)
    first = TabularCodec(target_first=True).fit(gl.load_data(frame, target="city"))
    assert [c.name for c in first.columns] == ["city", "age", "income", "score", "member", "joined"]
    # the target's block now begins the encoded row: the same values as at its place in the plain row
    rows, plain_rows = first.encode(frame), plain.encode(frame)
    width = plain.column_starts()["member"] - plain.column_starts()["city"]
    assert first.column_starts()["city"] == 0
    assert torch.equal(rows[:, :width], plain_rows[:, plain.column_starts()["city"]:][:, :width])
    decoded = TabularCodec.from_json(json.loads(json.dumps(first.to_json()))).decode(rows)
    assert list(decoded.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(decoded, plain.decode(plain_rows))
    # without a declared target the option changes nothing
    assert [c.name for c in TabularCodec(target_first=True).fit(gl.load_data(frame)).columns] == list(frame.columns)


def test_the_order_a_fitted_codec_keeps_is_no_option_to_give():
    with pytest.raises(GenloomError, match="unknown codec option for table data: 'order'"):
        gl.Model("vae").fit(_table(), steps=1, codec_options={"order": ["age"]}, progress=False)
