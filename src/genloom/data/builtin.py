"""Built-in data sets: shipped inside installed packages, so they load offline."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .dataset import Dataset


def digits() -> Dataset:
    """scikit-learn's 1,797 handwritten digits, 8x8 grayscale, labels 0-9."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)[..., None]  # pixel values 0..16
    return Dataset("images", images, "digits", bunch.target.astype(np.int64),
                   [str(d) for d in range(10)], {"source": "digits"})


BUILTINS: dict[str, Callable[[], Dataset]] = {"digits": digits}
