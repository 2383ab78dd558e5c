"""`genloom compare`: runs side by side, grouped by data kind, the best value of each metric marked."""
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

import genloom as gl
from genloom.cli import main
from genloom.compare import RunSummary, best_marks, direction, group_by_kind, metric_names
from tests.conftest import QUIET, TINY_VAE


@pytest.fixture(scope="module")
def runs(tmp_path_factory, text_run):
    """Two image VAEs trained for different lengths, two table VAEs and a text model."""
    root = tmp_path_factory.mktemp("compare")
    for steps in (5, 60):
        gl.Model("vae", **TINY_VAE).fit("digits", steps=steps, out=root / f"digits-{steps}", batch_size=32, **QUIET)
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"size": rng.normal(0, 1, 200), "colour": rng.choice(["red", "blue"], 200)})
    for family in ("vae", "gan"):
        gl.Model(family).fit(table, steps=5, out=root / f"table-{family}", **QUIET)
    return root, text_run


def test_runs_are_grouped_by_kind_and_the_best_of_each_metric_is_marked(runs, capsys, tmp_path):
    root, text_run = runs
    paths = [root / "digits-5", root / "table-vae", text_run, root / "digits-60", root / "table-gan"]
    code = main(["compare", *map(str, paths), "-o", str(tmp_path / "page.html")])
    out = capsys.readouterr().out
    assert code == 0
    blocks = out.split("\n\n")
    assert [block.splitlines()[0] for block in blocks[:3]] == ["image runs (2)", "table runs (2)", "text runs (1)"]
    image_lines = blocks[0].splitlines()
    header, short, long = image_lines[1], image_lines[2], image_lines[3]
    assert header.split()[:6] == ["run", "family", "data", "budget", "steps", "seconds"] and "elbo (+)" in header
    elbo = {name: json.loads((root / name / "config.json").read_text())["final_metrics"]["elbo"]
            for name in ("digits-5", "digits-60")}
    best = max(elbo, key=elbo.get)
    for line, name, budget in ((short, "digits-5", "steps=5"), (long, "digits-60", "steps=60")):
        assert line.startswith(name) and budget in line
        assert (f"{elbo[name]:.4g}*" in line) == (name == best)
    assert "*" not in blocks[2]  # a group of one has nothing to rank


def test_the_page_shows_bars_marks_and_every_runs_samples(runs, tmp_path):
    root, text_run = runs
    page = tmp_path / "page.html"
    assert main(["compare", str(root / "digits-5"), str(root / "digits-60"), str(root / "table-vae"),
                 str(root / "table-gan"), str(text_run), "-o", str(page)]) == 0
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 2  # each image run's final grid
    assert html.count("<th>colour</th>") == 2  # each table run's sample rows, with their header
    assert "<pre>" in html  # the text run's samples
    groups = group_by_kind([root / "digits-5", root / "digits-60"])
    ranked = [name for name in metric_names(groups["image"]) if direction(name)]
    assert ranked and html.count("★<div") >= len(ranked) and re.search(r'<div style="width:100%">', html)


def test_metrics_know_which_way_is_better():
    assert direction("elbo") == 1 and direction("utility_synthetic") == 1
    assert direction("val_loss") == -1 and direction("fid") == -1 and direction("reconstruction_loss") == -1
    assert direction("examples") == 0 and direction("loss_discriminator") == 0  # a GAN's losses rank nothing


def test_losses_are_ranked_among_the_runs_of_each_family(tmp_path):
    def run(name, family, **metrics):
        return RunSummary(tmp_path / name, family, "digits", "image", "steps=1", 1, 1.0, metrics)
    runs = [run("short", "vae", best_val_loss=198.0, fid=30.0), run("long", "vae", best_val_loss=162.9, fid=25.0),
            run("diffusion", "diffusion", best_val_loss=0.18, fid=20.0)]
    # a VAE's nats and a diffusion model's squared error do not compare: the loss is marked within the VAEs
    assert best_marks(runs, ["best_val_loss", "fid"]) == {(1, "best_val_loss"), (2, "fid")}


def test_evaluation_scores_join_the_training_ones(runs, tmp_path):
    root, _ = runs
    copy = tmp_path / "evaluated"
    shutil.copytree(root / "table-vae", copy)
    record = json.loads((copy / "config.json").read_text())
    record["evaluation"] = {"quality": 0.75, "detection_auc": 0.61, "figures": {"x": "y"}}
    (copy / "config.json").write_text(json.dumps(record))
    summary = group_by_kind([copy, root / "table-gan"])["table"][0]
    assert summary.metrics["quality"] == 0.75 and summary.metrics["detection_auc"] == 0.61
    assert "figures" not in summary.metrics
