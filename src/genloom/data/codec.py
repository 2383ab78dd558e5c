"""The codec contract: raw data <-> tensors, and the layout a backbone is built from; and the catalog of
codecs by data kind (a codec's module is imported when it is used)."""
from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

import numpy as np

from ..errors import GenloomError
from ..layout import Layout
from .sample_files import FOLDER, WRITERS, SampleWriter

if TYPE_CHECKING:
    import torch

    from .content_credentials import ContentSigner
    from .dataset import Dataset
    from .image_watermark import Marker

# rows drawn by the caller for a number of them, a seed and the encoded positions asked for (see sample_where)
Draw = Callable[[int, int, list[int]], Any]


class Codec(ABC):
    """Turns one data kind into tensors and back; knows nothing about families."""

    kind: ClassVar[str]                        # the data kind it encodes (layout.KINDS)
    sample_formats: ClassVar[tuple[str, ...]]  # file types its samples can be written to; the first is the default
                                               # of `genloom sample`
    preview_count: ClassVar[int] = 64          # samples a run writes during and after training: an 8x8 grid
    design_values: ClassVar[str] = "the model's own estimate"  # what the property column of `designed` holds

    @abstractmethod
    def fit(self, data: Dataset) -> Codec:
        """Learn what the encoding needs from the training data; returns self."""

    @abstractmethod
    def encode(self, values: Any) -> torch.Tensor:
        """Raw values of this kind as the tensors the layout describes; values unlike the training data's
        (another image size, other columns, unknown characters) are refused, naming the difference."""

    @abstractmethod
    def decode(self, tensor: torch.Tensor, first: int = 0) -> Any:
        """Tensors back to raw values; `first` is the index of the first among all samples of one sampling, so
        that decoding in chunks (or shards) gives what decoding at once gives."""

    @property
    @abstractmethod
    def layout(self) -> Layout:
        """What a family and a backbone know of the encoded data."""

    @property
    def sample_suffix(self) -> str:
        """The file type of the samples written during training."""
        return self.sample_formats[0]

    @property
    def preview_suffixes(self) -> tuple[str, ...]:
        """The file types a run's final samples are written in (the first: sample_suffix)."""
        return (self.sample_suffix,)

    def sample_writer(self, path: str | Path, total: int, provenance: Mapping[str, Any] | None = None,
                      signer: ContentSigner | None = None) -> SampleWriter:
        """A writer of `total` decoded samples to `path`, in the format its suffix names, chunk by chunk; the
        file carries `provenance` (where the samples come from) if given, and a PNG a C2PA manifest `signer`
        signs."""
        path = Path(path)
        if path.suffix.lower() not in self.sample_formats:
            files = " or ".join(suffix for suffix in self.sample_formats if suffix != FOLDER)
            folder = ", or a folder" if FOLDER in self.sample_formats else ""
            raise GenloomError(f"cannot write {self.kind} samples to {path.name}; use a {files} path{folder}")
        return WRITERS[path.suffix.lower()](path, total, provenance, signer)

    def watermarker(self, asked: bool | None, run_name: str) -> Marker | None:
        """What writes an invisible watermark naming the run into decoded samples (`marker(samples, first)`, first:
        the first one's index), where this kind has one and `asked` wants it (None: wherever it fits); else None."""
        if asked:
            raise GenloomError(f"{self.kind} samples carry no invisible watermark (images of 64x64 and more do; text "
                               "takes --watermark-key); drop --watermark: the file still carries its provenance")
        return None

    def save_samples(self, samples: Any, path: str | Path, provenance: Mapping[str, Any] | None = None,
                     signer: ContentSigner | None = None) -> Path:
        """Write decoded samples in the format the path's suffix names, atomically (with their provenance, and
        signed C2PA credentials in PNGs given a `signer`)."""
        with self.sample_writer(path, len(samples), provenance, signer) as writer:
            writer.write(samples)
        return Path(path)

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """The fitted state, as codec.json holds it."""

    @classmethod
    @abstractmethod
    def from_json(cls, state: dict[str, Any]) -> Codec:
        """The codec rebuilt from `to_json`'s state."""

    def designed(self, rows: torch.Tensor) -> Any:
        """Examples designed toward a property (a VAE's property head), as a table with the property's column
        (`design_values` says what it holds), which Model.optimize sorts them by."""
        return self.decode(rows)

    def row_conditions(self, values: Any) -> torch.Tensor | None:
        """What a family is given beside each example (a table's condition_on columns, encoded), or None."""
        return None

    def label_ids(self, labels: Any) -> np.ndarray:
        """Class names or ids -> int64 ids."""
        raise GenloomError(f"{self.kind} models take no labels")

    def sample_where(self, conditions: Mapping[str, Any], n: int, seed: int, draw: Draw,
                     batch: int | None = None) -> Any:
        """n decoded samples that meet `conditions` (a table's {column: value}), drawn with `draw` (`batch`
        at a time)."""
        raise GenloomError(f"conditions apply to tables; this model makes {self.kind} data")

    def files(self) -> dict[str, str]:
        """Extra files a run keeps beside codec.json, by name."""
        return {}

    def one_example(self, example: Any) -> Any:
        """A batch holding the one example given (an image, a table row), as `encode` takes examples."""
        raise GenloomError(f"{self.kind} data has no examples to place in a latent space")

    def examples_and_classes(self, data: Any, labels: Any) -> tuple[Any, np.ndarray]:
        """`data`'s examples and each one's class, for the mean codes of attribute vectors."""
        raise GenloomError(f"{self.kind} data has no examples to place in a latent space")

    def describe(self) -> dict[str, Any]:
        """What a client must know to ask for samples or send examples (a server shows it): the data's shape,
        classes or columns."""
        return {}

    def check_preferences(self) -> None:
        """Refuse preference and reward tuning (DPO, PPO) where examples are not token sequences it can weigh."""
        raise GenloomError(f"preference tuning applies to text and molecules; this model makes {self.kind} data")

    def preference_example(self, prompt: str, response: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A prompt and a response as the token ids the autoregressive family scores, and a mask of the ids
        that belong to the response (those preference tuning weighs)."""
        self.check_preferences()
        raise NotImplementedError  # a kind that passes check_preferences gives its own


def class_ids(labels: Any, class_names: list[str]) -> np.ndarray:
    """Class names or ids -> int64 ids, checked against the classes seen in training."""
    if not class_names:
        raise GenloomError("this data has no class labels; drop the labels or train on labelled "
                           "data (one sub-folder per class)")
    ids = []
    for label in np.atleast_1d(np.asarray(labels, dtype=object)):
        if isinstance(label, str) and label in class_names:
            ids.append(class_names.index(label))
        elif isinstance(label, (int, np.integer)) or (isinstance(label, str) and label.isdigit()):
            if not 0 <= int(label) < len(class_names):
                raise GenloomError(f"label {label} is out of range; use 0..{len(class_names) - 1}")
            ids.append(int(label))
        else:
            raise GenloomError(f"unknown label {label!r}; known: {', '.join(class_names)}")
    return np.array(ids, dtype=np.int64)


CODECS: dict[str, tuple[str, str]] = {
    "image": ("genloom.data.image_codec", "ImageCodec"),
    "table": ("genloom.data.table_codec", "TabularCodec"),
    "text": ("genloom.data.text_codec", "TextCodec"),
    "molecule": ("genloom.data.molecule_codec", "MoleculeCodec"),
    "signal": ("genloom.data.signal_codec", "SignalCodec"),
}


def codec_class(kind: str) -> type[Codec]:
    """The codec of a data kind, or a one-line error naming the known kinds."""
    if kind not in CODECS:
        raise GenloomError(f"no codec for {kind!r} data; known kinds: {', '.join(CODECS)}")
    module, name = CODECS[kind]
    return getattr(import_module(module), name)


# a codec's constructor takes these back from its saved state; fitting sets them, no user does
FITTED_STATE = ("columns", "condition_columns", "order")


def fitted_codec(data: Dataset, options: Mapping[str, Any]) -> Codec:
    """The codec of the data's kind with `options`, fitted to the data."""
    cls = codec_class(data.kind)
    known = [name for name in inspect.signature(cls).parameters if name not in FITTED_STATE]
    unknown = [name for name in options if name not in known]
    if unknown:
        raise GenloomError(f"unknown codec option for {data.kind} data: {', '.join(map(repr, unknown))}; its codec "
                           f"takes {', '.join(known)}")
    return cls(**options).fit(data)
