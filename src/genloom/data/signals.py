"""Signals: recordings read from audio files (with soundfile, resampled with scipy to one rate, mixed down to
mono) or 1-D series from a .npy array, kept at their own lengths until a codec crops or pads them."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GenloomError, note

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg"}  # what libsndfile reads


@dataclass
class Signals:
    """1-D signals of any lengths at one sample rate (None: series without one, such as sensor readings)."""

    waves: list[np.ndarray]  # float32, one array a signal
    rate: int | None = None

    def __len__(self) -> int:
        return len(self.waves)

    def __getitem__(self, index: Any) -> Signals:
        """The signals at an array of indices (or a slice), at the same rate."""
        if isinstance(index, slice):
            return Signals(self.waves[index], self.rate)
        index = np.asarray(index)
        chosen = np.flatnonzero(index) if index.dtype == bool else index.reshape(-1)
        return Signals([self.waves[int(i)] for i in chosen], self.rate)

    @property
    def seconds(self) -> float:
        """The recordings' total duration (samples where there is no rate)."""
        return sum(map(len, self.waves)) / (self.rate or 1)


def as_signals(values: Any) -> Signals:
    """Signals given as Signals, a 2-D array (one series a row) or a list of 1-D arrays."""
    if isinstance(values, Signals):
        return values
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = values[None]
    waves = [np.asarray(wave, dtype=np.float32) for wave in values]
    for index, wave in enumerate(waves):
        if wave.ndim != 1:
            raise GenloomError(f"signal #{index} has shape {wave.shape}; give one 1-D array a signal (mono)")
        if not np.isfinite(wave).all():
            raise GenloomError(f"signal #{index} holds NaN or infinite values; fill or drop them first")
    return Signals(waves)


def resampled(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """A recording at `rate` resampled to `target` by polyphase filtering (scipy), as float32."""
    if rate == target:
        return wave
    from scipy.signal import resample_poly

    common = gcd(rate, target)
    return resample_poly(wave, target // common, rate // common).astype(np.float32)


def read_audio(path: Path) -> tuple[np.ndarray, int, int]:
    """A file's samples as float32 in [-1, 1], mixed down to mono; its rate and its number of channels."""
    import soundfile

    try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise GenloomError(f"{path} is not a readable audio file ({str(error).splitlines()[0][:100]}); remove it "
                           "or convert it to WAV or FLAC") from None
    if len(samples) == 0:
        raise GenloomError(f"{path} holds no samples; remove it from the folder")
    return samples.mean(axis=1), rate, samples.shape[1]


def read_recordings(files: list[Path], rate: int | None) -> Signals:
    """The files' recordings at `rate` (None: the rate most of them have), each mixed down to mono; a notice
    says how many were resampled or mixed down."""
    read = [read_audio(path) for path in files]
    target = rate or Counter(found for _, found, _ in read).most_common(1)[0][0]
    resampled_count = sum(found != target for _, found, _ in read)
    mixed = sum(channels > 1 for _, _, channels in read)
    if resampled_count:
        rates = sorted({found for _, found, _ in read if found != target})
        note(f"{resampled_count} of {len(read)} recordings resampled to {target:,} Hz (from "
             f"{', '.join(f'{r:,}' for r in rates)} Hz); give sample_rate (CLI: --sample-rate) to choose the rate")
    if mixed:
        note(f"{mixed} of {len(read)} recordings mixed down from several channels to mono")
    return Signals([resampled(wave, found, target) for wave, found, _ in read], target)


def audio_files(folder: Path) -> list[Path]:
    """The audio files in a folder, in name order."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
                  and not p.name.startswith("."))


def is_audio_folder(folder: Path) -> bool:
    """A folder of recordings, or of one sub-folder of recordings per class."""
    groups = [folder, *(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))]
    return any(audio_files(group) for group in groups)


def read_audio_folder(folder: Path, rate: int | None) -> tuple[Signals, np.ndarray | None, list[str] | None]:
    """A folder of recordings (one sub-folder per class, or none): the signals, labels and class names."""
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    groups = [(d.name, files) for d in subfolders if (files := audio_files(d))]
    loose = audio_files(folder)
    if groups and loose:
        raise GenloomError(f"{folder} holds recordings ({loose[0].name}, ...) beside class sub-folders: move each into "
                           "the folder of its class, or keep no sub-folders")
    groups = groups or [(None, loose)]
    groups = [(name, files) for name, files in groups if files]
    files = [(name, path) for name, group in groups for path in group]
    if not files:
        raise GenloomError(f"no recordings found in {folder}; put WAV or FLAC files there (or one sub-folder per "
                           "class)")
    signals = read_recordings([path for _, path in files], rate)
    if groups[0][0] is None:
        return signals, None, None
    class_names = [name for name, _ in groups]
    return signals, np.array([class_names.index(name) for name, _ in files], dtype=np.int64), class_names


def read_series(array: np.ndarray, path: Path) -> Signals:
    """A 2-D array of series, one a row (sensor readings): signals without a sample rate."""
    if not np.issubdtype(array.dtype, np.number):
        raise GenloomError(f"{path} holds {array.dtype} values; series are numbers")
    if array.shape[0] == 0 or array.shape[1] < 2:
        raise GenloomError(f"{path} holds {array.shape[0]} series of {array.shape[1]} values; give (N, length) with "
                           "a few values a series at least")
    return as_signals(array.astype(np.float32))


def write_wav(path: Path | str, wave: np.ndarray, rate: int) -> None:
    """A recording as 16-bit PCM WAV (what every player plays), its samples clipped to [-1, 1]."""
    import soundfile

    soundfile.write(path, np.clip(wave, -1, 1), rate, subtype="PCM_16", format="WAV")
