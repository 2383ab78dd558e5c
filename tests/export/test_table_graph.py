"""A table codec's decode as an ONNX graph, and the whole table generator on ONNX Runtime alone: the graph's columns
against TabularCodec.decode's on the same rows, the generator's against the run's sampling on the same draws, and a
process without genloom or PyTorch running it."""
import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch

import genloom as gl
from genloom.cli import main
from genloom.data.table_codec import TabularCodec
from genloom.data.table_columns import RowPositions
from genloom.export import OnnxModel, export_onnx, table_graph
from genloom.export.onnx import decode_of, rows_of, sidecar_of
from genloom.export.table_graph import decode_graph
from tests.conftest import QUIET

ROWS = 1200


def every_kind(n: int, seed: int = 0) -> pd.DataFrame:
    """A table with a column of each kind and each decoding case: whole numbers with missing values, an integer
    column, dates read from text, more categories than get a slot of their own (rare ones drawn on decode), a
    missing category, booleans, numeric and text identifiers."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "size": rng.normal(10, 3, n),
        "age": np.where(rng.random(n) < 0.1, np.nan, rng.integers(18, 90, n)),
        "children": rng.integers(0, 4, n),
        "city": [f"c{i % 1100}" for i in rng.permutation(n)],  # past 1,000 categories: rare ones
        "member": rng.random(n) < 0.3,
        "joined": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "colour": rng.choice(["red", "green", None], n),
        "user": [f"u{i:05d}" for i in range(n)],
        "id": np.arange(n) + 7,
    })


def rare_draws(codec: TabularCodec, first: int, n: int) -> np.ndarray:
    """The uniforms TabularCodec.decode draws rare categories with, a column per column that has them."""
    positions = RowPositions(codec.seed + 2, first, n)
    names = [column.name for column in codec.columns if getattr(column.state, "rare", None)]
    return np.array([positions.uniforms(name) for name in names], dtype=np.float32).T.reshape(n, len(names))


def run(session: ort.InferenceSession, feeds: dict) -> dict[str, np.ndarray]:
    return dict(zip([output.name for output in session.get_outputs()], session.run(None, feeds)))


def assert_same_columns(outputs: dict[str, np.ndarray], frame: pd.DataFrame, kinds: dict[str, str],
                        tolerance: float = 0.0, flips: float = 0.0) -> None:
    """The graph's columns equal the codec's: text exactly ("" for missing), numbers within `tolerance` of the
    column's spread (NaN where missing), dates as seconds since 1970; a share `flips` of rows may differ (a network
    run by another runtime moves a value across a rounding boundary now and then)."""
    assert list(outputs) == list(frame.columns)
    for name, values in outputs.items():
        expected = frame[name]
        if values.dtype == object:
            text = expected.astype(object).where(expected.notna(), "").map(str).to_numpy()
            assert (values != text).mean() <= flips, name
            continue
        if kinds[name] == "datetime":
            expected = pd.to_datetime(expected).astype("int64").where(expected.notna()) / 1e9
        numbers, values = expected.to_numpy(dtype=float, na_value=np.nan), values.astype(float)
        differ = np.isnan(values) != np.isnan(numbers)
        present = ~np.isnan(numbers) & ~differ
        differ[present] = np.abs(values[present] - numbers[present]) > tolerance * (np.nanstd(numbers) or 1.0)
        assert differ.mean() <= flips, name


@pytest.mark.parametrize("numbers, tolerance", [("modes", 1e-9), ("quantile", 1e-4), ("standard", 1e-9)])
def test_the_decode_graph_decodes_what_the_codec_decodes(numbers, tolerance):
    frame = every_kind(ROWS)
    codec = TabularCodec(numbers=numbers).fit(gl.load_data(frame))
    # rows near the encoded table, off their grid: values past the bounds, arg-maxes of noisy one-hots
    noise = torch.randn(ROWS, codec.layout.shape[0], generator=torch.Generator().manual_seed(1))
    rows, first = codec.encode(frame) + 0.3 * noise, 40
    expected = codec.decode(rows, first=first)
    city = next(column for column in codec.columns if column.name == "city")
    assert expected["city"].isin(city.state.rare).any()  # rare categories drawn: their path ran
    session = ort.InferenceSession(decode_graph(codec).SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = run(session, {"rows": rows.numpy(), "draws": rare_draws(codec, first, ROWS),
                            "first_row": np.array(first, np.int64)})
    assert_same_columns(outputs, expected, codec.kinds, tolerance)
    assert outputs["children"].dtype == np.int64 and outputs["age"].dtype == np.float64  # as the codec's dtypes
    assert outputs["user"][0] == f"u0{ROWS + first}"  # numbered on after the training ids, zero-padded as they were


def test_the_decode_graph_of_a_codec_that_puts_the_target_first_gives_the_tables_order():
    frame = every_kind(ROWS)
    codec = TabularCodec(target_first=True).fit(gl.load_data(frame, target="colour"))
    assert codec.columns[0].name == "colour" != frame.columns[0]
    rows = codec.encode(frame)
    session = ort.InferenceSession(decode_graph(codec).SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = run(session, {"rows": rows.numpy(), "draws": rare_draws(codec, 0, ROWS), "first_row": np.array(0)})
    assert_same_columns(outputs, codec.decode(rows), codec.kinds, 1e-9)  # the names in the table's order


@pytest.fixture(scope="module")
def table_runs():
    frame = every_kind(1300)  # enough rows that some cities are rare categories: the decode's draws come in too
    runs = {family: gl.Model(family, latent_dim=4, width=32).fit(frame, steps=20, **QUIET) for family in ("vae", "gan")}
    return {**runs, "diffusion": gl.Model("diffusion", width=16, timesteps=20).fit(frame, steps=2, **QUIET)}


@pytest.mark.parametrize("family", ["vae", "gan"])
def test_a_table_generator_on_onnx_runtime_makes_the_runs_rows(table_runs, tmp_path, family):
    model = table_runs[family]
    path = export_onnx(model, tmp_path / "rows.onnx")
    about = json.loads(sidecar_of(path).read_text())["table"]
    assert about["rows"] == rows_of(path).name and decode_of(path).is_file()
    generator, sampler = torch.Generator().manual_seed(5), model.ema_net
    with torch.no_grad():
        made = sampler.sample(300, None, generator)  # the family's own sampling, its draws from a generator
    again = torch.Generator().manual_seed(5)
    noise = torch.randn(300, about["noise"], generator=again)
    if family == "gan":  # sample draws the conditions' uniforms, then the Gumbel noise's
        uniforms = torch.cat([torch.rand(300, 1, generator=again), torch.rand(300, sampler.uniform_draws - 1,
                                                                                generator=again)], dim=1)
    else:
        uniforms = torch.rand(300, sampler.uniform_draws, generator=again)
    with torch.no_grad():
        assert torch.equal(sampler.sample_given(noise, uniforms), made)  # sample_given is sample's arithmetic
    decode_draws = torch.from_numpy(rare_draws(model.codec, 0, 300))
    assert decode_draws.shape[1] == 1 and about["uniforms"] == sampler.uniform_draws + 1  # the family's, then these
    session = ort.InferenceSession(str(rows_of(path)), providers=["CPUExecutionProvider"])
    outputs = run(session, {"noise": noise.numpy(), "uniforms": torch.cat([uniforms, decode_draws], 1).numpy(),
                            "first_row": np.array(0, np.int64)})
    assert_same_columns(outputs, model.codec.decode(made), model.codec.kinds, 1e-4, flips=0.01)


def test_the_generator_runs_where_neither_genloom_nor_torch_is(table_runs, tmp_path):
    path = export_onnx(table_runs["vae"], tmp_path / "people.onnx")
    script = f"""
import sys
sys.modules["torch"] = sys.modules["genloom"] = None  # importing either now fails
import numpy as np, onnxruntime as ort, pandas as pd
session = ort.InferenceSession({str(rows_of(path))!r}, providers=["CPUExecutionProvider"])
shapes = {{i.name: i.shape for i in session.get_inputs()}}
rng = np.random.default_rng(0)
feeds = {{"noise": rng.standard_normal((500, shapes["noise"][1])).astype(np.float32),
          "uniforms": rng.random((500, shapes["uniforms"][1])).astype(np.float32), "first_row": np.array(0)}}
frame = pd.DataFrame(dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds))))
frame.to_csv(sys.argv[1], index=False)
"""
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "rows.csv")], check=True)
    rows = pd.read_csv(tmp_path / "rows.csv")
    real = every_kind(1300)
    assert list(rows.columns) == list(real.columns) and len(rows) == 500
    assert rows["user"].str.fullmatch(r"u\d{5}").all() and rows["id"].min() == real["id"].max() + 1
    assert set(rows["colour"].dropna()) <= {"red", "green"} and rows["age"].dropna().between(18, 89).all()
    assert abs(rows["size"].mean() - real["size"].mean()) < 2 * real["size"].std()


def test_a_diffusion_table_run_exports_its_decode_and_says_why_there_is_no_generator(tmp_path, capsys):
    out = tmp_path / "run"
    gl.Model("diffusion", width=16, timesteps=20).fit(every_kind(300), steps=3, out=out, **QUIET)
    assert main(["export", str(out), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    printed = capsys.readouterr().out
    assert "m.decode.onnx decodes encoded rows into columns; no generator that runs without genloom: the " \
           "diffusion family samples in steps that genloom's code drives" in printed
    assert decode_of(tmp_path / "m.onnx").is_file() and not rows_of(tmp_path / "m.onnx").exists()


def test_the_command_line_names_the_generator_and_its_inputs(tmp_path, capsys):
    out = tmp_path / "run"
    gl.Model("gan", latent_dim=4, width=16).fit(every_kind(300), steps=3, out=out, **QUIET)
    assert main(["export", str(out), "--format", "onnx", "--int8", "-o", str(tmp_path / "g.onnx")]) == 0
    printed = capsys.readouterr().out
    assert "g.rows.onnx is the whole table generator on ONNX Runtime alone: noise (rows, 4)" in printed
    assert "first_row (the first row's number, for new ids)" in printed
    session = ort.InferenceSession(str(tmp_path / "g.rows.onnx"), providers=["CPUExecutionProvider"])
    assert any(node.op_type == "DynamicQuantizeLinear" for node in onnx.load(str(tmp_path / "g.rows.onnx")).graph.node)
    assert [i.name for i in session.get_inputs()] == ["noise", "uniforms", "first_row"]


def test_a_column_named_as_a_graph_input_leaves_the_table_graphs_out_and_says_why(tmp_path, capsys):
    out = tmp_path / "run"
    frame = every_kind(200)[["size", "colour"]].rename(columns={"size": "noise"})
    gl.Model("vae", latent_dim=4, width=16).fit(frame, steps=2, out=out, **QUIET)
    assert main(["export", str(out), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    assert "beside it: no table graphs: the column 'noise' takes a name the graphs use (the inputs rows, draws, " \
           "first_row, noise, uniforms, or names that begin table/, /, onnx::); rename it in the data to export them" \
           in capsys.readouterr().out
    assert not decode_of(tmp_path / "m.onnx").exists() and OnnxModel(tmp_path / "m.onnx").sample(5).shape == (5, 2)


def test_an_export_that_fails_changes_no_file_and_a_new_one_drops_files_that_no_longer_belong(table_runs, tmp_path,
                                                                                             monkeypatch):
    path = export_onnx(table_runs["vae"], tmp_path / "m.onnx")
    before = {file.name: file.read_bytes() for file in tmp_path.iterdir()}
    assert rows_of(path).name in before and decode_of(path).name in before

    def failing(*args):
        raise gl.GenloomError("the decode failed")

    monkeypatch.setattr(table_graph, "decode_outputs", failing)
    with pytest.raises(gl.GenloomError, match="the decode failed"):
        export_onnx(table_runs["gan"], path, int8=True)
    assert {file.name: file.read_bytes() for file in tmp_path.iterdir()} == before  # no temporary left either
    monkeypatch.undo()
    export_onnx(table_runs["diffusion"], path)
    assert decode_of(path).exists() and not rows_of(path).exists()  # the VAE's generator is not the diffusion's
