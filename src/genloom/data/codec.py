"""The codec contract: raw data <-> tensors, and the layout a backbone is built from."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ..layout import Layout


class Codec(Protocol):
    """Turns one data kind into tensors and back; knows nothing about families."""

    name: str             # the data kind it encodes, as Dataset.kind
    sample_suffix: str    # file type of the samples written during training

    def fit(self, data: Any) -> "Codec": ...
    def encode(self, values: Any) -> torch.Tensor: ...
    def decode(self, tensor: torch.Tensor) -> Any: ...
    def label_ids(self, labels: Any) -> np.ndarray: ...
    @property
    def layout(self) -> Layout: ...
    def save_samples(self, samples: Any, path: Path) -> Path: ...
    def files(self) -> dict[str, str]: ...
    def to_json(self) -> dict[str, Any]: ...
    @classmethod
    def from_json(cls, state: dict[str, Any]) -> "Codec": ...


CODECS: dict[str, type] = {}


def register_codec(kind: str):
    """Class decorator: the codec used for data sets of `kind`."""
    def add(cls: type) -> type:
        CODECS[kind] = cls
        return cls
    return add
