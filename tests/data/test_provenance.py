"""Provenance: every sample file says where it came from, and a change to its content after writing is caught."""
import datetime
import hashlib
import json

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

import genloom as gl
from genloom.cli import main
from genloom.data.provenance import SIDECAR_SUFFIX, check_provenance
from genloom.data.sample_files import FOLDER, WRITERS
from genloom.errors import GenloomError
from tests.data.test_sample_files import SAMPLES

ORIGIN = {"generator": "genloom test", "run": "runs/x", "seed": 7}


def _tamper(path):
    if path.suffix == ".png":
        with Image.open(path) as image:
            pixels, info = np.array(image), image.info
        pixels[0, 0] ^= 1
        chunk = PngImagePlugin.PngInfo()
        chunk.add_text("genloom-provenance", info["genloom-provenance"])  # the record kept, the pixels changed
        Image.fromarray(pixels).save(path, pnginfo=chunk)
    else:
        path.write_bytes(path.read_bytes()[:-1] + bytes([path.read_bytes()[-1] ^ 1]))


@pytest.mark.parametrize("suffix", sorted(s for s in WRITERS if s != FOLDER))
def test_every_format_carries_its_origin_and_catches_an_edit(suffix, tmp_path):
    path = tmp_path / f"samples{suffix}"
    with WRITERS[suffix](path, len(SAMPLES[suffix]), ORIGIN) as writer:
        writer.write(SAMPLES[suffix])
    record, matches = check_provenance(path)
    assert matches and {k: record[k] for k in ORIGIN} == ORIGIN and len(record["content_sha256"]) == 64
    assert (tmp_path / f"samples{suffix}{SIDECAR_SUFFIX}").exists() == (suffix != ".png")  # a PNG holds its own
    _tamper(path)
    assert check_provenance(path)[1] is False


def test_each_image_of_a_folder_carries_its_index(tmp_path):
    with WRITERS[FOLDER](tmp_path / "images", 3, ORIGIN) as writer:
        writer.write(SAMPLES[".png"][:3])
    record, matches = check_provenance(tmp_path / "images" / "000002.png")
    assert matches and record["index"] == 2 and record["seed"] == 7


def test_sampled_files_name_the_run_and_seed_and_the_command_checks_them(trained_run, tmp_path, capsys):
    model = gl.load(trained_run)
    model.sample_to(tmp_path / "grid.png", 8, seed=3, progress=False)
    record, matches = check_provenance(tmp_path / "grid.png")
    assert matches and record["seed"] == 3 and record["samples"] == 8 and record["family"] == "vae"
    assert record["generator"] == f"genloom {gl.__version__}" and record["run"] == "digits-vae"
    config = json.dumps(model.record, sort_keys=True, default=str).encode()
    assert record["config_sha256"] == hashlib.sha256(config).hexdigest()  # the run's configuration, as loaded
    created = datetime.datetime.fromisoformat(record["created"])
    assert abs((datetime.datetime.now(datetime.timezone.utc) - created).total_seconds()) < 600
    assert main(["provenance", str(tmp_path / "grid.png")]) == 0
    assert capsys.readouterr().out.endswith("grid.png: the content matches\n")
    _tamper(tmp_path / "grid.png")
    assert main(["provenance", str(tmp_path / "grid.png")]) == 2
    assert "grid.png no longer matches the content_sha256" in capsys.readouterr().err


def test_files_without_provenance_and_folders_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "plain.csv").write_text("x\n1\n")
    with pytest.raises(GenloomError, match="plain.csv carries no genloom provenance"):
        check_provenance(tmp_path / "plain.csv")
    assert main(["provenance", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    (tmp_path / "plain.csv.provenance.json").write_text(json.dumps({"content_sha256": "0" * 64}))
    assert check_provenance(tmp_path / "plain.csv")[1] is False
