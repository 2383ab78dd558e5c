"""The run's pages: a loss-curve SVG, report.html (numbers and pictures) and MODEL_CARD.md."""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import atomic_path, write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(**options: Any) -> Figure:
    """A matplotlib Figure drawn off screen, without pyplot: the user's plotting backend is left as it is."""
    from matplotlib.figure import Figure  # slow to import: only when a picture is drawn

    return Figure(**options)


CURVE_POINTS = 600
"""The most points a loss is drawn with: pygal's drawing time grows faster than the points (0.08 s for 800,
0.9 s for 4,000, 14 s for 20,000), and a long run logs a loss every 25 steps; 600 evenly spaced points still show
every feature a 660-pixel-wide chart can."""


def _thinned(steps: list[int]) -> list[int]:
    """At most about CURVE_POINTS of the steps, evenly strided, the last one always kept."""
    stride = -(-len(steps) // CURVE_POINTS)
    return steps[::stride] + ([steps[-1]] if (len(steps) - 1) % stride else [])


def plot_loss_curve(metrics: list[dict], path: Path) -> Path | None:
    """Every logged loss (training and validation) against the step, roll-backs marked; None if none logged.

    Drawn with pygal, not matplotlib: every fit writes this curve, and matplotlib's import (about a second)
    would be a third of a short table budget (minutes=0.05); pygal imports and draws in a fifth of that."""
    import pygal

    keys = sorted({k for m in metrics for k in m if k in ("loss", "val_loss") or k.startswith("loss_")})
    if not keys:
        return None
    at_step = {key: {m["step"]: m[key] for m in metrics if key in m} for key in keys}
    rollbacks = {m["step"] for m in metrics if m.get("event") == "rollback"}
    # a roll-back is marked on the training loss at the nearest step drawn
    drawn = {key: _thinned(sorted(at_step[key])) for key in keys}
    marks = {min(drawn[keys[0]], key=lambda logged: abs(logged - step)) for step in rollbacks}
    steps = sorted({step for key in keys for step in drawn[key]})
    # a line chart over the logged steps, not an XY chart: pygal's logarithmic XY puts the steps on a log scale too
    chart = pygal.Line(width=660, height=385, js=(), x_title="step", y_title="loss", title="training loss",
                       logarithmic=all(value > 0 for values in at_step.values() for value in values.values()),
                       x_labels=steps, x_labels_major_count=8, show_minor_x_labels=False, show_dots=False,
                       legend_at_bottom=True, truncate_legend=-1, truncate_label=-1)
    for key in keys:
        kept = set(drawn[key])
        chart.add(key, [at_step[key][step] if step in kept else None for step in steps], show_dots=key == "val_loss")
    if marks:
        chart.add("roll-back", [at_step[keys[0]][step] if step in marks else None for step in steps],
                  stroke=False, show_dots=True, dots_size=5)
    write_text(path, chart.render(is_unicode=True))
    return path


def save_figure(figure: Figure, path: Path, tight: bool = True) -> Path:
    """Write a figure as a PNG, atomically."""
    if tight:
        figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path


IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}


def embedded_image(path: Path | None, alt: str) -> str:
    if path is None or not path.exists():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:{IMAGE_TYPES[path.suffix]};base64,{data}" alt="{alt}">'
            f'<figcaption>{alt}</figcaption></figure>')


def text_samples(path: Path, count: int = 3) -> str:
    if not path.exists():
        return ""
    samples = path.read_text(encoding="utf-8").split("\n\n-----\n\n")[:count]
    shown = "".join(f"<pre>{html.escape(sample)}</pre>" for sample in samples)
    return f"<h2>Samples</h2>{shown}"


AUDIO_PLAYERS = 8  # of a run's final recordings, the report plays this many


def audio_players(folder: Path, count: int = AUDIO_PLAYERS) -> str:
    """Players for the first `count` WAV files of a folder, embedded in the page (10 to 20 KB each)."""
    files = sorted(folder.glob("*.wav"))[:count] if folder.is_dir() else []
    if not files:
        return ""
    players = "".join(f'<figure><audio controls src="data:audio/wav;base64,'
                      f'{base64.b64encode(path.read_bytes()).decode("ascii")}"></audio>'
                      f"<figcaption>sample {int(path.stem)}</figcaption></figure>" for path in files)
    return f"<h2>Listen</h2>{players}"


def _table(rows: dict[str, Any]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
    return f"<table>{cells}</table>"


# what the examples of each kind are
UNITS = {"image": "images", "table": "rows", "text": "characters", "molecule": "molecules", "signal": "recordings"}


def budget_text(train: dict[str, Any]) -> str:
    """The budget a run was given, as "steps=300, minutes=2"."""
    return ", ".join(f"{k}={train[k]}" for k in ("steps", "minutes", "epochs") if train.get(k) is not None)


def privacy_text(privacy: dict[str, Any]) -> str:
    """A private run's guarantee in one line: what it spent of what was asked, and how."""
    part = privacy.get("private_part")  # a GAN's critic: the one network that reads the data
    where = f" on the {part} (the rest learns only from it)" if part else ""
    return (f"(epsilon {privacy['epsilon']:g}, delta {privacy['delta']:.2g})-DP: epsilon {privacy['epsilon']:g} "
            f"spent of {privacy['epsilon_asked']:g} over {privacy['steps']} steps of DP-SGD{where} (noise multiplier "
            f"{privacy['noise_multiplier']:g}, gradients clipped to {privacy['max_grad_norm']:g}, Poisson sampling "
            f"rate {privacy['sample_rate']:.3g}; {privacy['accountant']} accountant)")


def personal_data_text(data: dict[str, Any]) -> str:
    """The personal data found in a run's table at load, and what became of it."""
    found = "; ".join(f"{column}: {what}" for column, what in data["personal_data"].items())
    if data["source"].get("anonymise"):
        return f"{found}: replaced by Faker's values before training (one fake per value)"
    return f"{found}: trained on as it was, so the model can repeat it (--anonymise replaces it)"


def fairness_text(fairness: dict[str, Any]) -> str:
    """What an evaluation's fairness numbers measure, in one line."""
    return (f"protected {', '.join(fairness['protected'])}: the classifier of {fairness['target']} = "
            f"{fairness['positive']!r} trained on real (_real) and on synthetic (_synthetic) rows, across the groups "
            "of held-out real rows (0: alike for every group)")


def anomaly_text(anomaly: dict[str, Any]) -> str:
    """An anomaly detector's run in one line: its score and the threshold past which it flags an example."""
    return (f"{anomaly['score']}; flags past {anomaly['threshold']:.4g} ({anomaly['contamination']:.0%} of the "
            "training data)")


def summary_rows(record: dict[str, Any]) -> dict[str, Any]:
    """The headline facts of a run, shared by the report, the model card, `genloom info` and `genloom compare`."""
    data = record["data"]
    return {
        "family": record["family"] + (f" (auto: {record['family_choice']['reason']})"
                                      if "family_choice" in record else ""),
        "options": ", ".join(f"{k}={v}" for k, v in record["family_options"].items()),
        "data": f"{data['name']} ({data['examples']} {UNITS.get(data['kind'], data['kind'])}, shape "
                f"{'x'.join(map(str, data['shape']))}"
                + (f", {data['classes']} classes)" if data.get("classes") else ")"),
        "budget": budget_text(record["train"]),
        "steps trained": (f"{record['steps_trained']} (stopped early: {record['stopped_early']})"
                          if "stopped_early" in record else record.get("steps_trained", 0)),
        **({"weights": record["best_weights"]} if "best_weights" in record else {}),
        "training time": f"{record.get('train_seconds', 0):.1f} s"
                         + (f" ({record['fit_seconds']:.1f} s in all)" if "fit_seconds" in record else ""),
        **{name: value for name, value in record.get("final_metrics", {}).items()},
        **{f"evaluation: {name}": value for name, value in record.get("evaluation", {}).items()},
        **({"feature extractor": record["feature_extractor"]} if "feature_extractor" in record else {}),
        **({"personal data": personal_data_text(data)} if data.get("personal_data") else {}),
        **({"differential privacy": privacy_text(record["privacy"])} if "privacy" in record else {}),
        **({"fairness": fairness_text(record["fairness"])} if "fairness" in record else {}),
        **({"anomaly detector": anomaly_text(record["anomaly"])} if "anomaly" in record else {}),
        "genloom": record["genloom_version"],
    }


def write_report(run_dir: Path, record: dict[str, Any], metrics: list[dict]) -> Path:
    """report.html: the run's numbers, its final sample grid and its loss curve, in one self-contained file."""
    curve = plot_loss_curve(metrics, run_dir / "loss_curve.svg")
    title = f"genloom: {record['family']} on {record['data']['name']}"
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}
table{{border-collapse:collapse}}th,td{{text-align:left;padding:.25rem .8rem;border-bottom:1px solid #ddd}}
figure{{display:inline-block;margin:1rem 1rem 0 0;vertical-align:top}}img{{image-rendering:pixelated;max-width:100%}}
figcaption{{color:#666;font-size:.9rem}}pre{{background:#f6f6f6;padding:.6rem;white-space:pre-wrap}}</style></head>
<body><h1>{html.escape(title)}</h1>
{_table(summary_rows(record))}
{embedded_image(run_dir / "samples" / "final.png", "samples from the EMA weights (seed 0)")}
{text_samples(run_dir / "samples" / "final.txt")}
{audio_players(run_dir / "samples" / "final")}
{embedded_image(curve, "training loss")}
{"".join(embedded_image(run_dir / name, caption) for name, caption in record.get("figures", {}).items())}
</body></html>
"""
    write_text(run_dir / "report.html", page)
    return run_dir / "report.html"


def write_model_card(run_dir: Path, record: dict[str, Any]) -> Path:
    """MODEL_CARD.md: what the model was trained on, how, how well, and what it is not for."""
    rows = "\n".join(f"| {k} | {v} |" for k, v in summary_rows(record).items())
    card = f"""# Model card: {record['family']} on {record['data']['name']}

| | |
| --- | --- |
{rows}

## Data
{record['data']['examples']} examples of kind `{record['data']['kind']}`, loaded from `{record['data']['source'].get('source')}`.

## Intended use
Generating new examples that resemble the training data, for experiments, teaching, augmentation
and testing pipelines; scoring how typical new examples are where the family has a likelihood.

## Limits
The model only knows its training data: it reproduces that data's biases and gaps, and it may
reproduce training examples closely. It is small and trained briefly; check samples before use,
and do not use it to make decisions about people.

## Reproduce
`genloom train {record['data']['source'].get('source')} --family {record['family']} --steps {record.get('steps_trained', 0)} --seed {record['train']['seed']}`
"""
    write_text(run_dir / "MODEL_CARD.md", card)
    return run_dir / "MODEL_CARD.md"
