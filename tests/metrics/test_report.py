from pathlib import Path

from xml.etree import ElementTree

from genloom.metrics.report import plot_loss_curve, summary_rows
from genloom.runs.folder import read_run


def test_report_embeds_samples_and_loss_curve(trained_run):
    page = (Path(trained_run) / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 1 and page.count("data:image/svg+xml;base64,") == 1
    assert "vae on digits" in page and "elbo" in page
    assert {"loss", "val_loss"} <= svg_texts(Path(trained_run) / "loss_curve.svg")
    scripts = [e for e in ElementTree.parse(Path(trained_run) / "loss_curve.svg").iter() if e.tag.endswith("script")]
    assert not [script.attrib for script in scripts if any(k.endswith("href") for k in script.attrib)]  # no web fetch


def test_model_card_names_data_family_and_limits(trained_run):
    card = (Path(trained_run) / "MODEL_CARD.md").read_text()
    assert "# Model card: vae on digits" in card and "## Limits" in card and "--steps 30" in card


def test_summary_rows_carry_the_final_metrics(trained_run):
    record = read_run(trained_run)[0]
    rows = summary_rows(record)
    assert rows["family"] == "vae" and rows["steps trained"] == 30
    final = record["final_metrics"]
    assert rows["elbo"] == final["elbo"] and rows["best_val_loss"] == final["best_val_loss"]


def test_summary_rows_name_the_groups_an_evaluation_protected(trained_run):
    record = {**read_run(trained_run)[0], "fairness": {"protected": ["sex", "race"], "target": "income",
                                                       "positive": " >50K"}}
    assert summary_rows(record)["fairness"].startswith("protected sex, race: the classifier of income = ' >50K'")
    assert "fairness" not in summary_rows(read_run(trained_run)[0])


def test_summary_rows_say_what_an_anomaly_detector_flags(trained_run):
    record = {**read_run(trained_run)[0], "anomaly": {"threshold": 4.8634, "contamination": 0.05,
                                                      "score": "standard score of x; higher is more anomalous"}}
    assert summary_rows(record)["anomaly detector"] == ("standard score of x; higher is more anomalous; flags past "
                                                        "4.863 (5% of the training data)")
    assert "anomaly detector" not in summary_rows(read_run(trained_run)[0])


def svg_texts(path: Path) -> set[str]:
    return {element.text for element in ElementTree.parse(path).iter() if element.tag.endswith("text")}


def test_loss_curve_draws_each_loss_marks_rollbacks_and_needs_losses(tmp_path):
    metrics = [{"step": 1, "loss": 5.0}, {"step": 1, "event": "rollback", "message": "m"}, {"step": 2, "loss": 4.0},
               {"step": 2, "val_loss": 4.5}]
    assert {"loss", "val_loss", "roll-back", "step"} <= svg_texts(plot_loss_curve(metrics, tmp_path / "c.svg"))
    assert "roll-back" not in svg_texts(plot_loss_curve(metrics[:1] + metrics[2:], tmp_path / "e.svg"))
    assert plot_loss_curve([], tmp_path / "d.svg") is None


def test_a_long_run_is_drawn_with_a_bounded_number_of_points(tmp_path):
    """A 500,000-step run logs 20,000 losses; its curve is drawn from ~600 of them, the last and every roll-back
    kept."""
    def log(steps: int) -> list[dict]:
        losses = [{"step": step, "loss": 5.0 / step} for step in range(1, steps + 1)]
        return losses + [{"step": steps // 2, "val_loss": 1.0}, {"step": 7, "event": "rollback", "message": "m"}]

    short, long = (plot_loss_curve(log(steps), tmp_path / f"{steps}.svg") for steps in (600, 20_000))
    assert long.stat().st_size < 1.3 * short.stat().st_size
    assert {"roll-back", "val_loss"} <= svg_texts(long) and "20000" in long.read_text()
