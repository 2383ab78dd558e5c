"""SignalCodec: recordings and 1-D series of any length <-> fixed-length tensors in [-1, 1]: the waveform itself
(1, L), or its log-mel spectrogram (1, frames, mels), which a model learns far sooner on a CPU and which is turned
back into sound by Griffin-Lim (without the phase it drops, so it sounds rougher than the recording)."""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..errors import GenloomError
from ..files import atomic_folder, check_writable
from ..options import whole_number
from .codec import Codec, class_ids
from .dataset import Dataset
from .sample_files import FOLDER, GridWriter, NpyWriter, SampleWriter
from .provenance import write_sidecar
from .signal_layout import SignalLayout
from .signals import Signals, as_signals, write_wav
from .spectrogram import MelScale

if TYPE_CHECKING:
    from .content_credentials import ContentSigner

REPRESENTATIONS = ("mel", "waveform")
RANGE_DB = 80.0            # a spectrogram keeps the 80 dB under the loudest band of the training recordings
LENGTH_PERCENTILE = 90     # the default length holds nine recordings in ten whole
FRAME_SECONDS = 0.016      # a spectrogram's hop: some 16 ms (a power of two of samples)
MIN_FRAMES, MIN_SAMPLES = 8, 16
MIN_MELS, MAX_MELS = 8, 128  # shorter than this, no network has a feature to learn
REEL_GAP_SECONDS = 0.25    # silence between the recordings of one .wav
GRIFFIN_LIM_ITERATIONS = 32
PICTURE_SCALE = 3          # a spectrogram's cell drawn as 3x3 pixels: 32 bands become 96 pixels high


def _power_of_two_hop(rate: int) -> int:
    return 2 ** round(math.log2(rate * FRAME_SECONDS))


@lru_cache(maxsize=None)
def mel_scale(rate: int, mels: int) -> MelScale:
    """The analysis of recordings at `rate`: a hop of some FRAME_SECONDS, windows four hops long."""
    hop = _power_of_two_hop(rate)
    return MelScale(rate, hop, 4 * hop, mels)


class SignalCodec(Codec):
    """Signals cropped (their start kept) or padded with silence to `length` samples, then scaled to [-1, 1] by
    the training signals' range, or turned into log-mel spectrograms scaled by their levels in dB. Recordings
    carry a sample rate; series (a .npy of rows) do not, and are modelled as waveforms."""

    kind = "signal"
    sample_formats = (FOLDER, ".wav", ".npy", ".png")  # WAV files; one WAV of them all; an array; spectrograms
    preview_count = 16

    def __init__(self, representation: str | None = None, length: int = 0, sample_rate: int | None = None,
                 mels: int = 32, value_range: tuple[float, float] = (-1.0, 1.0),
                 level_range: tuple[float, float] = (-100.0, 0.0), class_names: Sequence[str] | None = None):
        if representation is not None and representation not in REPRESENTATIONS:
            raise GenloomError(f"unknown signal representation {representation!r}; use one of "
                               f"{', '.join(REPRESENTATIONS)}")
        self.representation, self.rate = representation, sample_rate
        self.length, self.mels = whole_number("length", length, 0), whole_number("mels", mels, MIN_MELS)
        if self.mels > MAX_MELS:
            raise GenloomError(f"mels must be at most {MAX_MELS} (a frame's spectrum has no finer detail); got "
                               f"{self.mels}")
        self.value_range, self.level_range = tuple(value_range), tuple(level_range)
        self.class_names = list(class_names or [])

    @property
    def scale(self) -> MelScale:
        """The spectrogram analysis of this codec's recordings (one per rate and bands, so its filter bank is
        computed once, not at every encode and decode)."""
        return mel_scale(self.rate, self.mels)

    @property
    def has_spectrogram(self) -> bool:
        """Recordings long enough for a spectrogram frame: pictures and metrics read their spectrograms."""
        return bool(self.rate) and self.length >= self.scale.n_fft

    @property
    def sample_suffix(self) -> str:
        """Samples written during training are spectrograms: the report and TensorBoard show them."""
        return ".png"

    @property
    def preview_suffixes(self) -> tuple[str, ...]:
        """Recordings are also written as WAV files, which the report plays."""
        return (".png", FOLDER) if self.rate else (".png",)

    def fit(self, data: Dataset) -> SignalCodec:
        signals = as_signals(data.values)
        self.rate = self.rate or signals.rate
        if self.rate is None and self.representation == "mel":
            raise GenloomError("a mel spectrogram needs a sample rate, and these series have none: use "
                               "representation 'waveform' (CLI: --representation waveform)")
        self.representation = self.representation or ("mel" if self.rate else "waveform")
        self.length = self.length or self._default_length(signals)
        self._check_length()
        values = np.concatenate(signals.waves)
        self.value_range = (float(values.min()), float(values.max()))
        if self.value_range[0] == self.value_range[1]:
            raise GenloomError(f"every value of {data.name} is {self.value_range[0]:g}: there is no signal to learn")
        if self.has_spectrogram:
            levels = self.scale.decibels(torch.from_numpy(self._fixed(signals)))
            top = float(levels.max())
            self.level_range = (top - RANGE_DB, top)
        self.class_names = list(data.class_names or [])
        return self

    def _default_length(self, signals: Signals) -> int:
        """All of equal-length series; else the LENGTH_PERCENTILE-th percentile of the lengths, rounded up to
        eight spectrogram frames (or eight samples), so that networks halve it cleanly."""
        lengths = [len(wave) for wave in signals.waves]
        if len(set(lengths)) == 1 and self.representation == "waveform":
            return lengths[0]
        step = 8 * (_power_of_two_hop(self.rate) if self.representation == "mel" else 1)
        return int(math.ceil(np.percentile(lengths, LENGTH_PERCENTILE) / step) * step)

    def _check_length(self) -> None:
        """A length too short for a network to see anything in, or a spectrogram whose frames do not fit it."""
        if self.representation == "mel":
            hop = _power_of_two_hop(self.rate)
            if self.length < MIN_FRAMES * hop or self.length % hop:
                raise GenloomError(f"a length of {self.length} samples is shorter than the networks' receptive field "
                                   f"of {MIN_FRAMES} spectrogram frames ({MIN_FRAMES * hop} samples at "
                                   f"{self.rate:,} Hz) or not a whole number of frames of {hop}: use --length "
                                   f"{max(MIN_FRAMES, -(-self.length // hop)) * hop}")
        elif self.length < MIN_SAMPLES:
            raise GenloomError(f"a length of {self.length} samples is shorter than the networks' receptive field "
                               f"({MIN_SAMPLES} samples): use --length {MIN_SAMPLES} or more")

    @property
    def layout(self) -> SignalLayout:
        shape = (1, self.length // self.scale.hop, self.mels) if self.representation == "mel" else (1, self.length)
        return SignalLayout(shape, len(self.class_names))

    def _fixed(self, signals: Signals) -> np.ndarray:
        """(N, length) float32: each signal's start, padded with zeros (silence) at its end."""
        fixed = np.zeros((len(signals), self.length), dtype=np.float32)
        for row, wave in enumerate(signals.waves):
            fixed[row, :min(len(wave), self.length)] = wave[:self.length]
        return fixed

    def encode(self, values: Any) -> torch.Tensor:
        signals = as_signals(values)
        if signals.rate is not None and self.rate is not None and signals.rate != self.rate:
            raise GenloomError(f"these recordings are at {signals.rate:,} Hz; the model's are at {self.rate:,} Hz: "
                               f"load them with sample_rate={self.rate} (CLI: --sample-rate {self.rate})")
        waves = torch.from_numpy(self._fixed(signals))
        if self.representation == "mel":
            low, high = self.level_range
            levels = self.scale.decibels(waves).clamp(low, high)
            return (2 * (levels - low) / (high - low) - 1)[:, None]
        low, high = self.value_range
        return (2 * (waves - low) / (high - low) - 1).clamp(-1, 1)[:, None]

    def decode(self, tensor: torch.Tensor, first: int = 0) -> Signals:
        """Signals of `length` samples; a spectrogram's by Griffin-Lim from zero phase (deterministic)."""
        x = tensor.detach().float().cpu().clamp(-1, 1)[:, 0]
        if self.representation == "mel":  # Griffin-Lim's waves may overshoot the recordings' range: held to it
            low, high = self.level_range
            waves = self.scale.waves((x + 1) / 2 * (high - low) + low, self.length, GRIFFIN_LIM_ITERATIONS)
            waves = waves.clamp(*self.value_range)
        else:
            low, high = self.value_range
            waves = (x + 1) / 2 * (high - low) + low
        return Signals(list(waves.numpy()), self.rate)

    def spectrogram_levels(self, signals: Signals) -> np.ndarray:
        """(N, frames, mels) log-mel levels of signals in [0, 1] of the codec's range (the pictures' colours)."""
        low, high = self.level_range
        levels = self.scale.decibels(torch.from_numpy(self._fixed(signals))).clamp(low, high)
        return ((levels - low) / (high - low)).numpy()

    def pictures(self, signals: Signals) -> np.ndarray:
        """uint8 (N, H, W, 3) pictures of signals: spectrograms (time across, low frequencies at the bottom) where
        there are some (recordings of a frame or more), else the signals drawn as lines."""
        if not self.has_spectrogram:
            return np.stack([_line_picture(wave, self.value_range) for wave in signals.waves])
        from matplotlib import colormaps

        levels = self.spectrogram_levels(signals).transpose(0, 2, 1)[:, ::-1]  # (N, mels, frames), low at the bottom
        pictures = (colormaps["magma"](levels)[..., :3] * 255).round().astype(np.uint8)
        return pictures.repeat(PICTURE_SCALE, axis=1).repeat(PICTURE_SCALE, axis=2)

    def sample_writer(self, path: str | Path, total: int, provenance: Mapping[str, Any] | None = None,
                      signer: ContentSigner | None = None) -> SampleWriter:
        """WAV files, one WAV of all, an .npy of (N, length) floats, or a PNG grid of spectrograms."""
        path = Path(path)
        writers: dict[str, Callable[[], SampleWriter]] = {
            FOLDER: lambda: WavFolderWriter(path, total, provenance, signer, rate=self._checked_rate(path)),
            ".wav": lambda: WavReelWriter(path, total, provenance, signer, rate=self._checked_rate(path)),
            ".npy": lambda: SignalArrayWriter(path, total, provenance, signer),
            ".png": lambda: SignalPictureWriter(path, total, provenance, signer, pictures=self.pictures)}
        if path.suffix.lower() not in writers:
            return super().sample_writer(path, total, provenance, signer)  # its one-line refusal
        return writers[path.suffix.lower()]()

    def _checked_rate(self, path: Path) -> int:
        if not self.rate:
            raise GenloomError(f"series without a sample rate cannot be WAV files ({path.name}); write them to an .npy")
        return self.rate

    def label_ids(self, labels: Any) -> np.ndarray:
        return class_ids(labels, self.class_names)

    def describe(self) -> dict[str, Any]:
        return {"representation": self.representation, "length": self.length, "sample_rate": self.rate,
                "seconds": self.length / self.rate if self.rate else None, "labels": self.class_names}

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "representation": self.representation, "length": self.length,
                "sample_rate": self.rate, "mels": self.mels, "value_range": list(self.value_range),
                "level_range": list(self.level_range), "class_names": self.class_names}

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> SignalCodec:
        return cls(state["representation"], state["length"], state["sample_rate"], state["mels"],
                   tuple(state["value_range"]), tuple(state["level_range"]), state["class_names"])


def _line_picture(wave: np.ndarray, value_range: tuple[float, float], height: int = 48) -> np.ndarray:
    """A series drawn as a dark line on white, one column a value (at most 256 columns: longer ones are thinned)."""
    from PIL import Image, ImageDraw

    thinned = wave[np.linspace(0, len(wave) - 1, min(len(wave), 256)).round().astype(int)]
    low, high = value_range
    rows = (1 - (np.clip(thinned, low, high) - low) / (high - low)) * (height - 1)
    picture = Image.new("RGB", (len(thinned), height), "white")
    ImageDraw.Draw(picture).line(list(zip(range(len(thinned)), rows.tolist())), fill=(40, 40, 120))
    return np.asarray(picture)


class WavWriter(SampleWriter):
    """A writer of recordings at one sample rate."""

    def __init__(self, path: Path, total: int, provenance: Mapping[str, Any] | None,
                 signer: ContentSigner | None = None, *, rate: int):
        super().__init__(path, total, provenance, signer)
        self.rate = rate


class WavFolderWriter(WavWriter):
    """Recordings as numbered WAV files (000000.wav, ...) in a new folder, which appears only when all are
    written."""

    staging = staticmethod(atomic_folder)

    def check_target(self) -> None:
        check_writable(self.path, folder=True)
        if self.path.is_dir() and any(self.path.iterdir()):
            raise GenloomError(f"{self.path} is a folder with files in it; write the recordings to a new or empty "
                               "folder")

    def append(self, chunk: Signals) -> None:
        for index, wave in enumerate(chunk.waves, start=self.written):
            write_wav(self.tmp / f"{index:06d}.wav", wave, self.rate)

    def record_provenance(self) -> None:
        """A sidecar beside each WAV, with its index (WAV has no place for it that players keep)."""
        for index in range(self.total):
            write_sidecar(self.path / f"{index:06d}.wav", {**self.provenance, "index": index})


class WavReelWriter(WavWriter):
    """All the recordings in one WAV, one after another with a quarter second of silence between them."""

    def open(self) -> None:
        self.waves: list[np.ndarray] = []

    def append(self, chunk: Signals) -> None:
        gap = np.zeros(int(REEL_GAP_SECONDS * self.rate), dtype=np.float32)
        self.waves += [part for wave in chunk.waves for part in (wave, gap)]

    def finish(self) -> None:
        write_wav(self.tmp, np.concatenate(self.waves[:-1]), self.rate)


class SignalArrayWriter(NpyWriter):
    """Signals as one float32 array (N, length)."""

    def expected_size(self, chunk: Signals) -> float:
        return super().expected_size(np.stack(chunk.waves))

    def append(self, chunk: Signals) -> None:
        super().append(np.stack(chunk.waves).astype(np.float32))


class SignalPictureWriter(GridWriter):
    """Signals drawn (spectrograms, or lines) and tiled into one PNG."""

    def __init__(self, path: Path, total: int, provenance: Mapping[str, Any] | None,
                 signer: ContentSigner | None = None, *, pictures: Callable[[Signals], np.ndarray]):
        super().__init__(path, total, provenance, signer)
        self.draw = pictures

    def append(self, chunk: Signals) -> None:
        super().append(self.draw(chunk))

