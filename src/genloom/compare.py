"""`genloom compare`: runs side by side, from their config.json alone (no weights are loaded), grouped by data
kind: family, data, budget, steps, time and the final metrics of the kind, the best of each marked; as text
and as one self-contained HTML page with metric bars and each run's final samples."""
from __future__ import annotations

import csv
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .errors import GenloomError
from .files import write_text
from .metrics.report import budget_text, embedded_image, text_samples
from .runs.record import read_record

# Which way each metric improves; a metric in neither set is shown but not ranked.
LOWER_IS_BETTER = {"val_loss", "best_val_loss", "perplexity", "bits_per_token", "bits_per_dim", "fid", "kid",
                   "detection_auc", "membership_auc_distance", "membership_auc_domias", "self_bleu",
                   "reconstruction_error", "prior_denoising_loss", "nll_per_column"}
HIGHER_IS_BETTER = {"elbo", "log_likelihood", "inception_score", "precision", "recall", "density", "coverage",
                    "quality", "diagnostic", "utility_synthetic", "accuracy", "classifier_accuracy",
                    "codebook_usage", "codebook_perplexity", "distinct_1", "distinct_2"}
SAMPLE_ROWS = 6  # rows of a table run's samples shown on the page


def direction(metric: str) -> int:
    """+1 if a larger value is better, -1 if a smaller one is, 0 if unknown."""
    if metric in HIGHER_IS_BETTER:
        return 1
    if metric in LOWER_IS_BETTER or metric.endswith("_loss"):
        return -1
    return 0


@dataclass
class RunSummary:
    """What the comparison shows of one run."""

    path: Path
    family: str
    data: str
    kind: str
    budget: str
    steps: int
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def sample(self) -> Path | None:
        found = sorted((self.path / "samples").glob("final.*"))
        return found[0] if found else None


def summarise(path: str | Path) -> RunSummary:
    """A run's summary from its config.json: the held-out scores of training and, where `genloom evaluate`
    ran, its scores (those win on a shared name)."""
    path = Path(path)
    record = read_record(path)
    metrics = {**record.get("final_metrics", {}), **record.get("evaluation", {})}
    return RunSummary(path, record["family"], record["data"]["name"], record["data"]["kind"],
                      budget_text(record["train"]) or "-",
                      int(record.get("steps_trained", 0)), float(record.get("train_seconds", 0.0)),
                      {name: float(value) for name, value in metrics.items()
                       if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)})


def group_by_kind(paths: Sequence[str | Path]) -> dict[str, list[RunSummary]]:
    """The runs' summaries, by data kind (in the order first met)."""
    if len(paths) < 2:
        raise GenloomError(f"compare needs at least two runs; got {len(paths)}: name two or more run folders")
    groups: dict[str, list[RunSummary]] = {}
    for path in paths:
        summary = summarise(path)
        groups.setdefault(summary.kind, []).append(summary)
    return groups


def metric_names(runs: list[RunSummary]) -> list[str]:
    """The metrics of a group: those every run has first, then the rest, each in first-met order."""
    names = list(dict.fromkeys(name for run in runs for name in run.metrics))
    return sorted(names, key=lambda name: not all(name in run.metrics for run in runs))


def best_marks(runs: list[RunSummary], names: list[str]) -> set[tuple[int, str]]:
    """(position of the run, metric) of every best value: among the runs that have the metric, where two or more
    do. A loss is each family's own objective (a VAE's negative ELBO in nats, a diffusion model's denoising
    error), so a loss is ranked among the runs of each family apart."""
    marks = set()
    for name in names:
        if not direction(name):
            continue
        pools: dict[str | None, list[int]] = {}
        for position, run in enumerate(runs):
            if name in run.metrics:
                pools.setdefault(run.family if name.endswith("loss") else None, []).append(position)
        for pool in (pool for pool in pools.values() if len(pool) > 1):
            values = [runs[position].metrics[name] for position in pool]
            top = max(values) if direction(name) > 0 else min(values)
            marks |= {(position, name) for position, value in zip(pool, values) if value == top}
    return marks


COLUMNS = ("run", "family", "data", "budget", "steps", "seconds")


def _cells(run: RunSummary) -> list[str]:
    return [run.path.name, run.family, run.data, run.budget, f"{run.steps:,}", f"{run.seconds:.1f}"]


def text_table(groups: dict[str, list[RunSummary]]) -> str:
    """The comparison as plain text, one table per data kind; * marks the best value of a metric."""
    blocks = []
    for kind, runs in groups.items():
        names = metric_names(runs)
        marks = best_marks(runs, names)
        header = [*COLUMNS, *(name + {1: " (+)", -1: " (-)", 0: ""}[direction(name)] for name in names)]
        rows = [[*_cells(run), *(("-" if name not in run.metrics else
                                  f"{run.metrics[name]:.4g}" + ("*" if (position, name) in marks else ""))
                                 for name in names)] for position, run in enumerate(runs)]
        widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
        lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
                 for line in (header, *rows)]
        blocks.append(f"{kind} runs ({len(runs)})\n" + "\n".join(lines))
    return ("\n\n".join(blocks) + "\n\n(+) higher is better, (-) lower is better; * the best of the runs "
            "(a loss: of its family's runs)\n")


def _bar(value: float, values: list[float], is_best: bool) -> str:
    """A cell with the value and a bar of its size against the column's largest magnitude."""
    largest = max(abs(v) for v in values) or 1.0
    width = round(100 * abs(value) / largest)
    mark = " best" if is_best else ""
    return (f'<td class="metric{mark}">{value:.4g}{" ★" if is_best else ""}'
            f'<div class="bar"><div style="width:{width}%"></div></div></td>')


def _sample_html(run: RunSummary) -> str:
    sample = run.sample
    if sample is None:
        return "<p>(no samples)</p>"
    if sample.suffix == ".png":
        return embedded_image(sample, f"{run.path.name}: final samples")
    if sample.suffix == ".csv":
        with open(sample, newline="", encoding="utf-8") as handle:
            rows = [row for _, row in zip(range(SAMPLE_ROWS + 1), csv.reader(handle))]
        cells = "".join("<tr>" + "".join(f"<{tag}>{html.escape(cell)}</{tag}>" for cell in row) + "</tr>"
                        for tag, row in (("th" if i == 0 else "td", row) for i, row in enumerate(rows)))
        return f'<div class="rows"><table>{cells}</table></div>'
    return text_samples(sample, count=2)


PAGE_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:14px;vertical-align:top}
td.metric{min-width:7em}td.best{font-weight:bold;background:#eef7ee}.bar{background:#eee;height:6px;margin-top:3px}
.bar div{background:#4a7bd0;height:6px}.samples{display:flex;flex-wrap:wrap;gap:1.5em}.samples section{max-width:420px}
.rows{overflow-x:auto;max-width:420px}pre{white-space:pre-wrap;background:#f6f6f6;padding:6px;font-size:12px}
img{max-width:400px;image-rendering:pixelated}"""


def html_page(groups: dict[str, list[RunSummary]]) -> str:
    """The comparison as one HTML page: a table per data kind with metric bars, then each run's samples."""
    parts = []
    for kind, runs in groups.items():
        names = metric_names(runs)
        marks = best_marks(runs, names)
        head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS) + "".join(
            f"<th>{html.escape(name)} {({1: '↑', -1: '↓', 0: ''})[direction(name)]}</th>" for name in names)
        body = ""
        for position, run in enumerate(runs):
            cells = "".join(f"<td>{html.escape(cell)}</td>" for cell in _cells(run))
            for name in names:
                values = [r.metrics[name] for r in runs if name in r.metrics]
                cells += (_bar(run.metrics[name], values, (position, name) in marks)
                          if name in run.metrics else "<td>-</td>")
            body += f"<tr>{cells}</tr>"
        samples = "".join(f"<section><h3>{html.escape(run.path.name)}</h3>{_sample_html(run)}</section>"
                          for run in runs)
        parts.append(f"<h2>{html.escape(kind)} runs</h2><table><tr>{head}</tr>{body}</table>"
                     f'<div class="samples">{samples}</div>')
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>genloom compare</title>"
            f"<style>{PAGE_STYLE}</style></head><body><h1>Runs compared</h1>"
            "<p>↑ higher is better, ↓ lower is better; ★ the best of the runs (a loss: of its family's runs).</p>"
            + "".join(parts) + "</body></html>")


def compare_runs(paths: Sequence[str | Path], out: str | Path | None = None) -> str:
    """The comparison of `paths` as text; with `out`, also written there as an HTML page."""
    groups = group_by_kind(paths)
    if out is not None:
        write_text(out, html_page(groups))
    return text_table(groups)

