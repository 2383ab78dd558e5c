"""Built-in data sets: shipped inside installed packages, so they load offline."""
from __future__ import annotations

from pathlib import Path
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


def shakespeare() -> Dataset:
    """The tiny-Shakespeare corpus of char-rnn and nanoGPT: 1,115,394 characters, shipped in the package."""
    text = (Path(__file__).parent / "builtin_data" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    return Dataset("text", text, "shakespeare", source={"source": "shakespeare"})


BUILTINS: dict[str, Callable[[], Dataset]] = {"digits": digits, "shakespeare": shakespeare}
