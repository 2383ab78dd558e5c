"""Reading a run's record without building anything, and telling whether its files are whole."""
import json
import shutil

import pytest

import genloom as gl
from genloom.runs.record import read_record, run_problems


def test_a_run_of_genloom_0_1_0_reads_with_todays_kind_names(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    record = json.loads((run / "config.json").read_text())
    record["codec"], record["data"]["kind"] = "images", "images"  # as 0.1.0 wrote them
    (run / "config.json").write_text(json.dumps(record))
    codec = json.loads((run / "codec.json").read_text())
    (run / "codec.json").write_text(json.dumps({**codec, "kind": "images"}))
    assert read_record(run)["codec"] == read_record(run)["data"]["kind"] == "image"
    expected = gl.load(trained_run).sample(4, seed=0)
    assert (gl.load(run).sample(4, seed=0) == expected).all()


@pytest.mark.parametrize("damage, problem", [
    (lambda run: (run / "model.safetensors").write_bytes((run / "model.safetensors").read_bytes()[:500]),
     "model.safetensors is damaged"),
    (lambda run: (run / "ema.safetensors").unlink(), "no ema.safetensors: the weight average it samples from is gone"),
    (lambda run: (run / "model.safetensors").unlink(), "no model.safetensors: training did not finish"),
    (lambda run: (run / "best.safetensors").write_bytes(b"x"), "best.safetensors is damaged"),
    (lambda run: (run / "codec.json").write_text("{"), "codec.json is damaged"),
])
def test_run_problems_name_each_file_that_would_not_load(trained_run, tmp_path, damage, problem):
    run = shutil.copytree(trained_run, tmp_path / "run")
    assert run_problems(run, read_record(run)) == []
    damage(run)
    problems = run_problems(run, read_record(run))
    assert len(problems) == 1 and problem in problems[0]
