"""Two image sets as one data set of two domains, for translation between them (CycleGAN): the images of
both, each labelled with its domain (0: the first set, 1: the second)."""
from __future__ import annotations

import numpy as np

from ..errors import GenloomError
from .dataset import Dataset

DOMAINS = ("A", "B")  # the class names of the two sets: the labels a translation or a sample asks for


def join_domains(source: Dataset, target: Dataset) -> Dataset:
    """One Dataset of `source`'s images (label 0) and `target`'s (label 1); a one-line error when the two are not
    image sets of one size and channel count."""
    for data in (source, target):
        if data.kind != "image":
            raise GenloomError(f"translation is between two image sets; {data.name} is {data.kind} data")
    first, second = np.shape(source.values)[1:], np.shape(target.values)[1:]
    if first != second:
        raise GenloomError(f"the two image sets differ: {source.name} holds {_shape(first)} images, {target.name} "
                           f"{_shape(second)}; give both one size with --image-size (image_size=) and one number "
                           "of channels")
    labels = np.repeat(np.array([0, 1], dtype=np.int64), [len(source), len(target)])
    parts = [source.source, target.source]
    return Dataset("image", np.concatenate([source.values, target.values]), f"{source.name}-to-{target.name}",
                   labels, list(DOMAINS), {"domains": parts} if all("source" in part for part in parts) else {})


def is_joined(data: Dataset) -> bool:
    """Whether `data` already holds two domains (a resumed run's, read back from its record)."""
    return "domains" in data.source


def _shape(shape: tuple[int, ...]) -> str:
    height, width, channels = shape
    return f"{height}x{width} {channels}-channel"
