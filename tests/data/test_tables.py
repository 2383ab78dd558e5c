import json

import numpy as np
import pandas as pd
import pytest

import genloom as gl
from genloom.data.tables import column_kinds, infer_kind
from genloom.errors import GenloomError


def _csv(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_and_parquet_load_as_tables(tmp_path):
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "x"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    for name in ("t.csv", "t.parquet"):
        data = gl.load_data(tmp_path / name)
        assert data.kind == "table" and repr(data) == "Dataset('t': 3 rows x 2 columns)"
        pd.testing.assert_frame_equal(data.values, frame, check_dtype=False)
    assert gl.load_data(frame).kind == "table"
    with pytest.raises(GenloomError, match="the DataFrame has duplicate column names: a; rename them"):
        gl.load_data(pd.DataFrame([[1, 2]], columns=["a", "a"]))


@pytest.mark.parametrize("content, message", [
    ("", "t.csv is empty"),
    ("a,b,c\n", "has a header but no rows"),
    ("a,b\n1,\n2,\n", "column 'b' of"),
])
def test_tables_that_cannot_be_learnt_from(tmp_path, content, message):
    with pytest.raises(GenloomError, match=message):
        gl.load_data(_csv(tmp_path, content))


def test_a_file_that_is_not_a_table(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"\x00\x01 not parquet" * 20)
    with pytest.raises(GenloomError, match="t.parquet is not a readable table"):
        gl.load_data(path)
    binary = tmp_path / "b.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(GenloomError, match="b.csv is not a readable table"):
        gl.load_data(binary)


def test_a_column_mixing_numbers_and_text_names_its_rows():
    values = pd.Series(["1", "2", "three", "4", "5", "six"], name="n", index=list("abcdef"))
    with pytest.raises(GenloomError, match=r"column 'n' mixes numbers and text: row 3 \('three'\), 6 \('six'\)"):
        infer_kind("n", values)


def test_too_many_distinct_categories_are_refused():
    values = pd.Series([f"v{i}x" for i in range(12_000)] + ["v1x"], name="code")
    with pytest.raises(GenloomError, match="column 'code' has 12,000 distinct values in 12,001 rows"):
        infer_kind("code", values)


def test_metadata_errors_name_the_problem(tmp_path):
    frame = pd.DataFrame({"a": [1, 2, 3]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "m.json").write_text(json.dumps({"columns": {"a": {"sdtype": "text"}}}))
    with pytest.raises(GenloomError, match="unknown column kind 'text'"):
        gl.load_data(tmp_path / "t.csv", metadata=tmp_path / "m.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(GenloomError, match="bad.json is not a metadata file"):
        gl.load_data(tmp_path / "t.csv", metadata=tmp_path / "bad.json")
    with pytest.raises(GenloomError, match="the metadata names column 'b', which the table does not have"):
        column_kinds(frame, {"b": "numerical"})


def test_identifiers_and_numbers():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user_id": np.arange(50), "height": rng.normal(170, 10, 50),
                          "ideal_weight": rng.normal(70, 5, 50), "idade": rng.permutation(50),
                          "code": [f"X{i}" for i in range(50)], "colour": rng.choice(["red", "blue"], 50)})
    assert column_kinds(frame) == {"user_id": "identifier", "height": "numerical", "ideal_weight": "numerical",
                                   "idade": "numerical", "code": "identifier", "colour": "categorical"}
    assert list(gl.load_data(pd.DataFrame(rng.normal(size=(5, 2)))).values.columns) == ["0", "1"]


def test_tab_separated_files_load(tmp_path):
    data = gl.load_data(_csv(tmp_path, "a\tb\n1\tx\n2\ty\n", "t.tsv"))
    assert list(data.values.columns) == ["a", "b"] and data.values["b"].tolist() == ["x", "y"]


def test_a_target_column_is_recorded_or_refused_by_name(tmp_path):
    frame = pd.DataFrame({"a": [1, 2, 3], "label": ["x", "y", "x"]})
    assert gl.load_data(frame, target="label").source["target"] == "label"
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert gl.load_data(tmp_path / "t.csv", target="label").source["target"] == "label"
    with pytest.raises(gl.GenloomError, match="target column 'income' is not in t; columns: a, label"):
        gl.load_data(tmp_path / "t.csv", target="income")
    with pytest.raises(gl.GenloomError, match="a target column applies to tables; this data is image data"):
        gl.load_data("digits", target="label")


@pytest.mark.parametrize("name, rows, columns, target", [("adult", 32_561, 15, "income"),
                                                         ("breast_cancer", 569, 31, "target"),
                                                         ("wine", 178, 14, "target")])
def test_builtin_tables_name_their_target(name, rows, columns, target):
    data = gl.load_data(name)
    assert data.kind == "table" and data.values.shape == (rows, columns) and data.source["target"] == target
    assert data.values[target].dtype == object
