"""ImageCodec: uint8 (N, H, W, C) pictures <-> float (N, C, H, W) tensors in [-1, 1]."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import GenloomError
from .codec import Codec, class_ids
from .sample_files import FOLDER
from .dataset import Dataset
from .image_layout import ImageLayout
from .image_watermark import MIN_SIZE, Marker, check_markable, run_tag
from .images import as_uint8_images, read_image_file


class ImageCodec(Codec):
    """Fixed size and channel count learnt from the training images; other images are refused, naming both."""

    kind = "image"
    sample_formats = (".png", ".npy", FOLDER)  # during training: a grid

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
    def layout(self) -> ImageLayout:
        return ImageLayout((self.channels, *self.image_size), len(self.class_names))

    def encode(self, values: Any) -> torch.Tensor:
        images = as_uint8_images(values)
        height, width = self.image_size
        if images.shape[1:] != (height, width, self.channels):
            got_height, got_width, got_channels = images.shape[1:]
            raise GenloomError(f"the model takes {height}x{width}x{self.channels} images; these are "
                               f"{got_height}x{got_width}x{got_channels}: resize them first (load_data(..., "
                               f"image_size={height}), CLI --image-size {height}x{width})")
        return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()

    def decode(self, tensor: torch.Tensor, first: int = 0) -> np.ndarray:
        pixels = ((tensor.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
        return pixels.to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def watermarker(self, asked: bool | None, run_name: str) -> Marker | None:
        """Images of MIN_SIZE and more are marked unless `asked` is False; smaller ones only carry provenance, and
        asking for a mark on them is an error."""
        if asked is False or (asked is None and min(self.image_size) < MIN_SIZE):
            return None
        check_markable(*self.image_size)
        return Marker(run_tag(run_name))

    def one_example(self, example: Any) -> np.ndarray:
        """An image array (H, W[, C]), or the path of an image file, read in the run's channels."""
        if isinstance(example, (str, Path)):
            example = read_image_file(Path(example), "L" if self.channels == 1 else "RGB")
        image = np.asarray(example)
        return (image[..., None] if image.ndim == 2 else image)[None]

    def examples_and_classes(self, data: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        """A Dataset (its labels, by class name where it has names), or images with `labels`."""
        if isinstance(data, Dataset):
            if data.labels is None:
                raise GenloomError(f"data set {data.name!r} has no labels; attribute vectors need classes")
            names = np.asarray(data.class_names) if data.class_names else None
            return data.values, names[data.labels] if names is not None else data.labels
        if labels is None or len(labels) != len(data):
            raise GenloomError("give one label per image (labels=...), or a labelled Dataset")
        return np.asarray(data), np.asarray(labels)

    def describe(self) -> dict[str, Any]:
        return {"image_size": list(self.image_size), "channels": self.channels, "labels": self.class_names}

    def label_ids(self, labels: Any) -> np.ndarray:
        return class_ids(labels, self.class_names)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "image_size": list(self.image_size), "channels": self.channels,
                "class_names": self.class_names}

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> "ImageCodec":
        return cls(state["image_size"], state["channels"], state["class_names"])
