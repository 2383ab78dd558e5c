"""ImageCodec: uint8 (N, H, W, C) pictures <-> float (N, C, H, W) tensors in [-1, 1]."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import GenloomError
from ..files import atomic_path
from .codec import Layout, register_codec
from .dataset import Dataset
from .images import as_uint8_images, image_grid, resize_images, save_png, set_channels


@register_codec("images")
class ImageCodec:
    """Fixed size and channel count learnt from the training images; any input is brought to them."""

    name = "images"
    sample_suffix = ".png"  # samples written during training are grids

    def __init__(self, image_size: tuple[int, int] | None = None, channels: int | None = None,
                 class_names: Sequence[str] | None = None):
        self.image_size = tuple(image_size) if image_size else None
        self.channels = channels
        self.class_names = list(class_names) if class_names else []

    def fit(self, data: Dataset) -> "ImageCodec":
        images = as_uint8_images(data.values)
        self.image_size = tuple(images.shape[1:3])
        self.channels = images.shape[-1]
        self.class_names = list(data.class_names or [])
        return self

    @property
    def layout(self) -> Layout:
        return Layout("image", (self.channels, *self.image_size), len(self.class_names))

    def prepare(self, values: Any) -> np.ndarray:
        """Any image array -> uint8 (N, H, W, C) at this codec's size and channel count."""
        images = as_uint8_images(values)
        return set_channels(resize_images(images, self.image_size), self.channels)

    def encode(self, values: Any) -> torch.Tensor:
        images = self.prepare(values)
        return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()

    def decode(self, tensor: torch.Tensor) -> np.ndarray:
        pixels = ((tensor.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
        return pixels.to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def label_ids(self, labels: Any) -> np.ndarray:
        """Class names or ids -> int64 ids, checked against the classes seen in training."""
        if not self.class_names:
            raise GenloomError("this data has no class labels; drop the labels or train on labelled "
                               "data (one sub-folder per class)")
        ids = []
        for label in np.atleast_1d(np.asarray(labels, dtype=object)):
            if isinstance(label, str) and label in self.class_names:
                ids.append(self.class_names.index(label))
            elif isinstance(label, (int, np.integer)) or (isinstance(label, str) and label.isdigit()):
                if not 0 <= int(label) < len(self.class_names):
                    raise GenloomError(f"label {label} is out of range; use 0..{len(self.class_names) - 1}")
                ids.append(int(label))
            else:
                raise GenloomError(f"unknown label {label!r}; known: {', '.join(self.class_names)}")
        return np.array(ids, dtype=np.int64)

    def save_samples(self, samples: np.ndarray, path: str | Path) -> Path:
        """Write decoded samples: a grid for .png, the raw array for .npy."""
        path = Path(path)
        if path.suffix not in (".png", ".npy"):
            raise GenloomError(f"cannot write image samples to {path.name}; use a .png (grid) or .npy path")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".npy":
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.save(handle, samples)
            return path
        return save_png(image_grid(samples), path)

    def files(self) -> dict[str, str]:
        """Extra files a run keeps beside codec.json: none."""
        return {}

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.name, "image_size": list(self.image_size), "channels": self.channels,
                "class_names": self.class_names}

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> "ImageCodec":
        return cls(state["image_size"], state["channels"], state["class_names"])
