"""Built-in data sets: shipped inside installed packages, so they load offline."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import GenloomError
from .dataset import Dataset
from .molecules import MOSES_SUBSET, moses
from .signals import read_recordings


def digits() -> Dataset:
    """scikit-learn's 1,797 handwritten digits, 8x8 grayscale, labels 0-9."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)[..., None]  # pixel values 0..16
    return Dataset("image", images, "digits", bunch.target.astype(np.int64),
                   [str(d) for d in range(10)], {"source": "digits"})


def _mnist(part: str) -> Dataset:
    """MNIST at 28x28 (LeCun, Cortes and Burges; CC BY-SA 3.0), shipped in the package: 60,000 training and
    10,000 test digits, a split stratified by digit."""
    path = Path(__file__).parent / "builtin_data" / "mnist28.npz"
    if not path.exists():  # too large for the repository: `make install` copies it from the shared data sets
        raise GenloomError(f"the built-in mnist is not installed: put mnist28.npz (train_images, train_labels, "
                           f"test_images, test_labels) at {path}, or run `make install` beside ../shared/data")
    with np.load(path) as arrays:
        images, labels = arrays[f"{part}_images"][..., None], arrays[f"{part}_labels"].astype(np.int64)
    name = "mnist" if part == "train" else "mnist-test"
    return Dataset("image", images, name, labels, [str(d) for d in range(10)], {"source": name})


def shakespeare() -> Dataset:
    """The tiny-Shakespeare corpus of char-rnn and nanoGPT: 1,115,394 characters, shipped in the package."""
    text = (Path(__file__).parent / "builtin_data" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    return Dataset("text", text, "shakespeare", source={"source": "shakespeare"})


def adult() -> Dataset:
    """UCI Adult census income (32,561 rows, 15 columns, target `income`), shipped in the package; values
    keep the leading space of the original file, as in CTGAN's and SDV's copies."""
    frame = pd.read_csv(Path(__file__).parent / "builtin_data" / "adult.csv.gz")
    return Dataset("table", frame, "adult", source={"source": "adult", "target": "income"})


def _sklearn_table(name: str) -> Dataset:
    """One of scikit-learn's bundled tables as a DataFrame; the class is the `target` column."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.copy()
    frame["target"] = pd.Categorical.from_codes(bunch.target, [str(n) for n in bunch.target_names]).astype(str)
    return Dataset("table", frame, name, source={"source": name, "target": "target"})


def diabetes() -> Dataset:
    """scikit-learn's diabetes regression table in its original units (442 patients, 10 measurements, and
    `target`: disease progression a year on, 25 to 346), for property-guided design."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    return Dataset("table", frame, "diabetes", source={"source": "diabetes"})


def _spoken_digits(part: str) -> Dataset:
    """The Free Spoken Digit Dataset (Zohar Jackson and contributors; CC BY-SA 4.0): 3,000 recordings at 8 kHz of
    the digits 0-9, 50 of each by each of 6 speakers, named {digit}_{speaker}_{index}.wav; its own split puts the
    recordings of index 0-4 in the test set (300) and the rest in training (2,700)."""
    folder = Path(__file__).parent / "builtin_data" / "fsdd"
    if not folder.is_dir():  # too large for the repository: `make install` copies it from the shared data sets
        raise GenloomError(f"the built-in spoken_digits is not installed: put the FSDD recordings at {folder}, or run "
                           "`make install` beside ../shared/data")
    files = sorted(folder.glob("*.wav"), key=lambda path: path.name)
    files = [path for path in files if (int(path.stem.rsplit("_", 1)[1]) < 5) == (part == "test")]
    labels = np.array([int(path.name.split("_", 1)[0]) for path in files], dtype=np.int64)
    name = "spoken_digits" if part == "train" else "spoken_digits-test"
    return Dataset("signal", read_recordings(files, None), name, labels, [str(d) for d in range(10)],
                   {"source": name})


BUILTINS: dict[str, Callable[[], Dataset]] = {
    "digits": digits, "mnist": lambda: _mnist("train"), "mnist-test": lambda: _mnist("test"),
    "shakespeare": shakespeare, "adult": adult, "diabetes": diabetes,
    "breast_cancer": lambda: _sklearn_table("breast_cancer"), "wine": lambda: _sklearn_table("wine"),
    # MOSES (Polykovskiy et al. 2020): 250,000 of its 1,584,663 training molecules, all of them, its test set and
    # its scaffold test set (molecules whose Bemis-Murcko scaffolds the training set lacks)
    "moses": lambda: moses("train", MOSES_SUBSET), "moses-full": lambda: moses("train"),
    "moses-test": lambda: moses("test"), "moses-scaffolds": lambda: moses("test_scaffolds"),
    "spoken_digits": lambda: _spoken_digits("train"), "spoken_digits-test": lambda: _spoken_digits("test")}

# Built-in data sets with a test split of their own: `evaluate` scores a run trained on one against it.
HELD_OUT = {"mnist": "mnist-test", "moses": "moses-test", "moses-full": "moses-test",
            "spoken_digits": "spoken_digits-test"}
