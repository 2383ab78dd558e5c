"""The synthetic-content detector: per kind, it finds deliberately bad "generated" examples (noise, blurred or
shifted digits, a table with one column shuffled, text of shuffled characters) and cannot tell held-out real
examples labelled generated from real ones; a saved detector scores as it did; the commands work end to end."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

import genloom as gl
from genloom.cli import main
from genloom.detector.registry import CLASSIFIERS

CHANCE = 0.15  # how far from 0.5 a detector of real against real may land on a few hundred held-out examples


def _blurred(images: np.ndarray) -> np.ndarray:
    return np.clip(gaussian_filter(images.astype(float), sigma=(0, 1, 1, 0)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def image_detector(digits) -> tuple[gl.Detector, np.ndarray]:
    rng = np.random.default_rng(0)
    images = digits.values[rng.permutation(len(digits))]  # the writers are in runs: a random split mixes them
    other = images[1200:1500]
    fakes = {"noise": rng.integers(0, 256, other.shape).astype(np.uint8), "blurred": _blurred(other),
             "shifted": np.roll(other, 2, axis=2), "real": images[1500:]}
    return gl.train_detector(images[:1200], fakes, steps=100, progress=False), images[1500:]


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    return pd.DataFrame({"x": x, "y": x + rng.normal(0, 0.1, n), "side": np.where(x > 0, "right", "left")})


@pytest.fixture(scope="module")
def table_detector() -> tuple[gl.Detector, pd.DataFrame]:
    other = _table(600, 1)
    shuffled = other.assign(y=np.random.default_rng(2).permutation(other["y"].to_numpy()))
    detector = gl.train_detector(_table(1200, 0), {"y shuffled": shuffled, "real": _table(600, 3)}, steps=60,
                                 progress=False)
    return detector, other


@pytest.fixture(scope="module")
def text_detector() -> tuple[gl.Detector, list[str]]:
    corpus = gl.load_data("shakespeare").values
    rng = np.random.default_rng(0)
    # passages of 64 characters from all the plays (each play has its own names), dealt out at random
    passages = [corpus[start:start + 64] for start in rng.permutation(len(corpus) // 64)[:3000] * 64]
    shuffled = ["".join(rng.permutation(list(text))) for text in passages[2600:2800]]
    detector = gl.train_detector(gl.Dataset("text", "".join(passages[:2600]), "shakespeare-a"),
                                 {"shuffled": shuffled, "real": passages[2800:]}, progress=False)
    return detector, passages[2800:]


def test_an_image_detector_finds_bad_samples_and_cannot_tell_real_from_real(image_detector):
    aucs = image_detector[0].aucs
    assert min(aucs["noise"], aucs["blurred"], aucs["shifted"]) > 0.9, aucs
    assert abs(aucs["real"] - 0.5) < CHANCE, aucs


def test_a_table_detector_finds_a_shuffled_column(table_detector):
    aucs = table_detector[0].aucs
    assert aucs["y shuffled"] > 0.9 and abs(aucs["real"] - 0.5) < CHANCE, aucs


def test_a_text_detector_finds_shuffled_characters(text_detector):
    aucs = text_detector[0].aucs
    assert aucs["shuffled"] > 0.9 and abs(aucs["real"] - 0.5) < CHANCE, aucs


@pytest.mark.parametrize("kind", list(CLASSIFIERS))
def test_a_saved_detector_scores_as_it_did(kind, image_detector, table_detector, text_detector, tmp_path):
    detector, examples = {"image": image_detector, "table": table_detector, "text": text_detector}[kind]
    detector.save(tmp_path / "det")
    loaded = gl.Detector.load(tmp_path / "det")
    scores = detector.score(examples)
    assert np.array_equal(loaded.score(examples), scores) and scores.std() > 0
    record = json.loads((tmp_path / "det" / "detector.json").read_text())
    assert record["kind"] == kind and record["auc"] == detector.aucs


def test_the_commands_train_on_a_run_and_score_files(trained_run, digits, tmp_path, capsys):
    det = tmp_path / "det"
    assert main(["detector", "train", "--real", "digits", "--fake", trained_run, "--out", str(det), "--samples", "60",
                 "--steps", "20", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("trained an image detector") and out[1].split()[0] == trained_run
    assert out[2].split()[0] == "all" and 0 <= float(out[2].split()[1]) <= 1
    record = json.loads((det / "detector.json").read_text())
    assert record["sources"][0]["family"] == "vae" and record["input"]["shape"] == [8, 8, 1]
    Image.fromarray(digits.values[0, ..., 0]).save(tmp_path / "one.png")
    np.save(tmp_path / "some.npy", digits.values[:3])
    assert main(["detector", "score", str(det), str(tmp_path / "one.png"), str(tmp_path / "some.npy")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["example", "p_generated"] and len(lines) == 5
    assert lines[1].split()[0].endswith("one.png") and lines[4].split()[0].endswith("some.npy[2]")
    scores = [float(line.split()[1]) for line in lines[1:]]
    assert all(0 <= score <= 1 for score in scores)
    assert scores[1:] == pytest.approx(gl.Detector.load(det).score(digits.values[:3]), abs=1e-4)


def test_score_reads_tables_and_texts(table_detector, text_detector, tmp_path, capsys):
    table_detector[0].save(tmp_path / "table-det")
    table_detector[1].head(4).to_csv(tmp_path / "rows.csv", index=False)
    text_detector[0].save(tmp_path / "text-det")
    for i, passage in enumerate(text_detector[1][:2]):
        (tmp_path / f"t{i}.txt").write_text(passage, encoding="utf-8")
    assert main(["detector", "score", str(tmp_path / "table-det"), str(tmp_path / "rows.csv")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    assert main(["detector", "score", str(tmp_path / "text-det"), str(tmp_path / "t0.txt"),
                 str(tmp_path / "t1.txt")]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == [
        str(tmp_path / "t0.txt"), str(tmp_path / "t1.txt")]


def test_runs_of_tables_and_text_are_sampled_against_real_examples_like_theirs(text_run, tmp_path):
    table = _table(300, 4)
    table.to_csv(tmp_path / "table.csv", index=False)
    table_run = gl.Model("vae", latent_dim=4, width=8).fit(tmp_path / "table.csv", steps=3, out=tmp_path / "run",
                                                            progress=False)
    detector = gl.train_detector(tmp_path / "table.csv", [table_run], samples=100, steps=10, progress=False)
    assert set(detector.aucs) == {str(tmp_path / "run"), "all"} and detector.record["real"]["examples"] == 100
    detector = gl.train_detector("shakespeare", [text_run], samples=24, steps=50, progress=False)
    generated = gl.load(text_run).sample(2, seed=0, progress=False)
    assert detector.record["sources"][0]["family"] == "autoregressive" and detector.score(generated).shape == (2,)


def test_a_sample_grid_genloom_wrote_is_scored_image_by_image(image_detector, tmp_path):
    from genloom.data.sample_files import GridWriter

    detector, real = image_detector
    with GridWriter(tmp_path / "grid.png", 5, {"run": "r"}) as writer:  # as genloom sample -o grid.png writes
        writer.write(real[:5])
    names, scores = detector.score_files([tmp_path / "grid.png"])
    assert names == [f"{tmp_path / 'grid.png'}[{i}]" for i in range(5)]
    assert np.allclose(scores, detector.score(real[:5]))
