"""Pictures of a table evaluation: real vs synthetic columns, association heat maps, privacy distances."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.tables import as_numbers
from .report import new_figure, save_figure

MAX_COLUMNS_SHOWN = 30
TOP_CATEGORIES = 12
REAL, SYNTHETIC = "#4c72b0", "#dd8452"


def column_histograms(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str], path: Path) -> Path:
    """One panel per column: overlaid histograms for numbers and dates, side-by-side bars of the most
    frequent categories (as shares of rows) for the rest."""
    columns = [c for c, k in kinds.items() if k != "identifier"][:MAX_COLUMNS_SHOWN]
    across = min(4, len(columns))
    down = math.ceil(len(columns) / across)
    figure = new_figure(figsize=(3.6 * across, 2.6 * down), dpi=90)
    axes = figure.subplots(down, across, squeeze=False)
    for axis, column in zip(axes.flat, columns):
        if kinds[column] in ("numerical", "datetime"):
            real_x, fake_x = (_numbers(part[column], kinds[column]) for part in (real, synthetic))
            edges = np.histogram_bin_edges(np.concatenate([real_x, fake_x]), bins=30)
            axis.hist(real_x, edges, density=True, alpha=0.55, color=REAL, label="real")
            axis.hist(fake_x, edges, density=True, alpha=0.55, color=SYNTHETIC, label="synthetic")
        else:
            shares = pd.DataFrame({"real": real[column].astype(str).value_counts(normalize=True),
                                   "synthetic": synthetic[column].astype(str).value_counts(normalize=True)}).fillna(0)
            shares = shares.sort_values("real", ascending=False).iloc[:TOP_CATEGORIES]
            positions = np.arange(len(shares))
            axis.bar(positions - 0.2, shares["real"], 0.4, color=REAL, label="real")
            axis.bar(positions + 0.2, shares["synthetic"], 0.4, color=SYNTHETIC, label="synthetic")
            axis.set_xticks(positions, [label.strip()[:10] for label in shares.index], rotation=60, fontsize=7)
        axis.set_title(column, fontsize=9)
        axis.tick_params(labelsize=7)
    for axis in list(axes.flat)[len(columns):]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    return save_figure(figure, path)


def _numbers(values: pd.Series, kind: str) -> np.ndarray:
    """The column's present values as numbers; dates in days since 1970."""
    numbers = as_numbers(values, kind) / (86400 if kind == "datetime" else 1)
    return numbers[~np.isnan(numbers)]


def association_heatmaps(real: pd.DataFrame, synthetic: pd.DataFrame, path: Path) -> Path:
    """The association matrices of real and synthetic rows side by side, and their absolute difference."""
    figure = new_figure(figsize=(15, 5.2), dpi=90, layout="constrained")
    axes = figure.subplots(1, 3)
    panels = (("real", real.to_numpy(), "viridis"), ("synthetic", synthetic.to_numpy(), "viridis"),
              ("|real - synthetic|", np.abs(real.to_numpy() - synthetic.to_numpy()), "magma"))
    for axis, (title, values, colours) in zip(axes, panels):
        image = axis.imshow(values, vmin=0, vmax=1, cmap=colours)
        axis.set_title(title, fontsize=10)
        axis.set_xticks(range(len(real)), [str(c)[:12] for c in real.columns], rotation=90, fontsize=7)
        axis.set_yticks(range(len(real)), [str(c)[:12] for c in real.index], fontsize=7)
    figure.colorbar(image, ax=axes, shrink=0.8, label="Cramér's V")
    return save_figure(figure, path, tight=False)


def distance_histograms(distances: dict[str, np.ndarray], path: Path) -> Path:
    """Distances to the closest training row: synthetic rows against held-out real rows."""
    figure = new_figure(figsize=(6, 3.5), dpi=100)
    axis = figure.subplots()
    edges = np.histogram_bin_edges(np.concatenate(list(distances.values())), bins=40)
    for (name, values), colour in zip(distances.items(), (SYNTHETIC, REAL)):
        axis.hist(values, edges, alpha=0.55, color=colour, label=f"{name} (median {np.median(values):.3f})")
    axis.set_xlabel("distance to the closest training row")
    axis.set_ylabel("rows")
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def membership_curves(attacks: dict[str, np.ndarray], path: Path) -> Path:
    """ROC curves of the membership attacks (metrics/membership.py): members found against non-members taken
    for members, as the attack's threshold moves; the diagonal is an attacker who learns nothing."""
    from sklearn.metrics import roc_auc_score, roc_curve

    figure = new_figure(figsize=(4.5, 4.2), dpi=100)
    axis = figure.subplots()
    is_member = attacks["is_member"]
    for name, colour in zip([n for n in attacks if n != "is_member"], (REAL, SYNTHETIC)):
        false, true, _ = roc_curve(is_member, attacks[name])
        axis.plot(false, true, color=colour, label=f"{name} (AUC {roc_auc_score(is_member, attacks[name]):.3f})")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axis.set_xlabel("non-members taken for members")
    axis.set_ylabel("members found")
    axis.legend(fontsize=8, title="attack", title_fontsize=8)
    return save_figure(figure, path)
