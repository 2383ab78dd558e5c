"""What signal metrics read: recordings as their log-mel spectrograms (series as themselves), for the feature
network of the Fréchet distance and the classifier of conditional samples; and the picture that sets generated
spectrograms beside real ones."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.signal_codec import SignalCodec
from ..data.signals import Signals
from .report import new_figure, save_figure

COMPARED = 8  # recordings of each side in the picture, where there are no classes to show one of each


def feature_input(codec: SignalCodec, signals: Signals) -> torch.Tensor:
    """(N, 1, frames, mels) log-mel levels in [-1, 1] of recordings, whatever the model's representation, so that
    the numbers of a waveform model and a spectrogram model compare; (N, 1, L) encoded values of series."""
    if codec.has_spectrogram:
        return torch.from_numpy(codec.spectrogram_levels(signals) * 2 - 1)[:, None].float()
    return codec.encode(signals)


def white_noise(like: Signals, seed: int) -> Signals:
    """White noise as loud (RMS) as the recordings given, of their lengths: the far end of the metric's scale."""
    generator = np.random.default_rng(seed)
    loudness = float(np.sqrt(np.mean(np.concatenate(like.waves) ** 2)))
    return Signals([(generator.standard_normal(len(wave)) * loudness).astype(np.float32) for wave in like.waves],
                   like.rate)


def spectrogram_comparison(codec: SignalCodec, real: Signals, real_labels: np.ndarray | None, made: Signals,
                           made_labels: np.ndarray | None, path: Path) -> Path:
    """Real recordings' spectrograms above generated ones' (series: their lines): one of each class where there
    are classes, else the first few."""
    columns = _chosen(real_labels, made_labels, codec.class_names, min(len(real), len(made)))
    figure = new_figure(figsize=(1.3 * len(columns), 3.0))
    axes = figure.subplots(2, len(columns), squeeze=False)
    sides = [(signals, codec.spectrogram_levels(signals) if codec.has_spectrogram else None, name)
             for signals, name in ((real, "real"), (made, "generated"))]
    for column, (title, *indices) in enumerate(columns):
        for row, ((signals, levels, name), index) in enumerate(zip(sides, indices)):
            axis = axes[row, column]
            if levels is not None:
                axis.imshow(levels[index].T, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1)
            else:
                axis.plot(signals.waves[index], linewidth=0.6)
                axis.set_ylim(*codec.value_range)
            axis.set_xticks([]), axis.set_yticks([])
            if row == 0:
                axis.set_title(title, fontsize=9)
            if column == 0:
                axis.set_ylabel(name, fontsize=9)
    return save_figure(figure, path)


def _chosen(real_labels: np.ndarray | None, made_labels: np.ndarray | None, class_names: list[str],
            count: int) -> list[tuple[str, int, int]]:
    """(title, real index, generated index) of each column: the first of each class on both sides, or the first
    few of `count`."""
    if real_labels is None or made_labels is None:
        return [(f"#{i}", i, i) for i in range(min(COMPARED, count))]
    return [(class_names[c], int(np.flatnonzero(real_labels == c)[0]), int(np.flatnonzero(made_labels == c)[0]))
            for c in range(len(class_names)) if (real_labels == c).any() and (made_labels == c).any()]
