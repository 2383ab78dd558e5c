"""Samples stream to files chunk by chunk: the file equals one written whole, an interrupted write leaves
nothing, and a file the disk cannot hold is refused before it fills the disk."""
import json
import shutil
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from genloom.data.sample_files import FOLDER, MAX_GRID, WRITERS
from genloom.errors import GenloomError

IMAGES = np.random.default_rng(0).integers(0, 256, (10, 4, 4, 1), dtype=np.uint8)
ROWS = pd.DataFrame({"x": np.arange(10.0), "colour": list("abcdeabcde")})
TEXTS = [f"text number {i}\nwith two lines" for i in range(10)]
MOLECULES = ["C" * (i + 1) + "O" for i in range(10)]
SAMPLES = {".npy": IMAGES, ".png": IMAGES, ".csv": ROWS, ".parquet": ROWS, ".txt": TEXTS, ".jsonl": TEXTS,
           ".smi": MOLECULES}
FILES = sorted(suffix for suffix in WRITERS if suffix != FOLDER)  # the folder of PNGs has tests of its own


def _write(path, samples, chunk):
    with WRITERS[path.suffix if path.suffix in WRITERS else FOLDER](path, len(samples)) as writer:
        for start in range(0, len(samples), chunk):
            writer.write(samples[start:start + chunk])


@pytest.mark.parametrize("suffix", FILES)
def test_chunks_make_the_same_file_as_one_write(suffix, tmp_path):
    samples = SAMPLES[suffix]
    _write(tmp_path / f"whole{suffix}", samples, len(samples))
    _write(tmp_path / f"chunked{suffix}", samples, 3)
    assert (tmp_path / f"whole{suffix}").read_bytes() == (tmp_path / f"chunked{suffix}").read_bytes() or \
        suffix == ".parquet"  # Parquet row groups differ; its rows must not
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"whole{suffix}", f"chunked{suffix}"])


def test_each_format_reads_back_what_was_written(tmp_path):
    for suffix, samples in SAMPLES.items():
        _write(tmp_path / f"s{suffix}", samples, 4)
    assert np.array_equal(np.load(tmp_path / "s.npy"), IMAGES)
    assert Image.open(tmp_path / "s.png").size[0] >= 4 * 4
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "s.csv"), ROWS)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "s.parquet"), ROWS)
    assert (tmp_path / "s.txt").read_text().rstrip("\n").split("\n\n-----\n\n") == TEXTS
    assert [json.loads(line)["text"] for line in (tmp_path / "s.jsonl").read_text().splitlines()] == TEXTS
    assert (tmp_path / "s.smi").read_text().splitlines() == MOLECULES


@pytest.mark.parametrize("suffix", FILES)
def test_an_interrupted_write_leaves_nothing_and_keeps_an_older_file(suffix, tmp_path):
    path = tmp_path / f"s{suffix}"
    path.write_bytes(b"an older file")
    with pytest.raises(KeyboardInterrupt):
        with WRITERS[suffix](path, 10) as writer:
            writer.write(SAMPLES[suffix][:3])
            raise KeyboardInterrupt
    assert path.read_bytes() == b"an older file" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_file_the_disk_cannot_hold_is_refused_after_the_first_chunk(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 5000, 5000))
    with pytest.raises(GenloomError, match=r"1,000,000 samples would take about .* in s.csv; .* has 5.0 KB free: "
                                           "ask for fewer"):
        _write(tmp_path / "s.csv", pd.concat([ROWS] * 100_000, ignore_index=True), 100)
    with pytest.raises(GenloomError, match=r"10 samples would take about 160 bytes in s.npy"):
        monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 100, 100))
        _write(tmp_path / "s.npy", IMAGES, 3)
    assert not list(tmp_path.iterdir())


def test_a_grid_holds_a_bounded_number_of_images(tmp_path):
    with pytest.raises(GenloomError, match=f"a PNG grid holds at most {MAX_GRID:,} images; write 5,000 samples to an .npy"):
        with WRITERS[".png"](tmp_path / "g.png", 5000):
            pass
    assert not (tmp_path / "g.png").exists()


def test_a_file_that_fails_at_the_end_does_not_replace_the_older_one(tmp_path, monkeypatch):
    import genloom.data.sample_files as sample_files
    path = tmp_path / "s.png"
    path.write_bytes(b"an older grid")

    def broken_grid(images):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(sample_files, "image_grid", broken_grid)
    with pytest.raises(GenloomError, match="cannot write .*s.png: No space left on device"):
        _write(path, IMAGES, 4)
    assert path.read_bytes() == b"an older grid" and [p.name for p in tmp_path.iterdir()] == ["s.png"]


def test_a_folder_of_pngs_reads_back_and_appears_only_when_complete(tmp_path):
    _write(tmp_path / "whole", IMAGES, len(IMAGES))
    _write(tmp_path / "chunked", IMAGES, 3)
    for name in ("whole", "chunked"):
        files = sorted((tmp_path / name).iterdir())
        assert [f.name for f in files] == [f"{i:06d}.png" for i in range(10)]
        assert np.array_equal(np.stack([np.asarray(Image.open(f))[..., None] for f in files]), IMAGES)
    with pytest.raises(KeyboardInterrupt):
        with WRITERS[FOLDER](tmp_path / "cut", 10) as writer:
            writer.write(IMAGES[:3])
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked", "whole"]


def test_a_folder_with_files_is_not_written_into(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(GenloomError, match="out is a folder with files in it; write the images to a new or empty"):
        _write(tmp_path / "out", IMAGES, 5)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
    (tmp_path / "empty").mkdir()
    _write(tmp_path / "empty", IMAGES, 5)
    assert len(list((tmp_path / "empty").iterdir())) == 10
