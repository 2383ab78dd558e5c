"""What every kind's real-vs-generated classifier does: fit on real and generated examples, give each new example
the probability that it was generated, check that examples are of the shape it was trained on, read them from
files, and write and read its weights without pickle. One subclass per data kind (registry.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from ..data.dataset import Dataset
from ..errors import GenloomError


class Classifier:
    """A data kind's classifier of real (0) vs generated (1) examples; `input` is the JSON that says what it
    takes (image shape, table columns, text features), stored in the detector's record."""

    kind: ClassVar[str]            # the data kind it reads: image, table or text
    method: ClassVar[str]          # what it is, in words, for the record and the report
    default_steps: ClassVar[int]   # its training iterations unless told
    steps_are: ClassVar[str]       # what one step is, in words
    weights_file: ClassVar[str]    # the file in the detector folder that holds its weights
    reads: ClassVar[str]           # the files `score_files` takes, in words

    def __init__(self, input: dict[str, Any]):
        self.input = input

    # -- the examples it takes -----------------------------------------------------------------------------
    @classmethod
    def for_data(cls, data: Dataset) -> Classifier:
        """A classifier for examples like the data's."""
        raise NotImplementedError

    def check_run(self, model: Any, name: str) -> None:
        """A one-line error when a run makes examples this classifier cannot take (another shape, other columns)."""

    def real_examples(self, data: Dataset, n: int, rng: np.random.Generator, generated: Any) -> Any:
        """Up to n real examples drawn from the data at random, made like the `generated` ones."""
        raise NotImplementedError

    def check(self, examples: Any, what: str = "the examples") -> Any:
        """The examples as the classifier takes them, or a one-line error naming what is wrong."""
        raise NotImplementedError

    def read_files(self, paths: Sequence[Path]) -> tuple[Any, list[str]]:
        """Examples read from files, and a name for each (the file, and a position inside it)."""
        raise NotImplementedError

    # -- handling examples alike for every kind ------------------------------------------------------------
    @staticmethod
    def take(examples: Any, rows: np.ndarray) -> Any:
        raise NotImplementedError

    @staticmethod
    def join(parts: list[Any]) -> Any:
        raise NotImplementedError

    # -- learning and scoring ------------------------------------------------------------------------------
    def fit(self, examples: Any, generated: np.ndarray, weights: np.ndarray, steps: int, seed: int,
            progress: bool) -> None:
        """Learn to tell generated (1) from real (0); `weights` balance the two classes."""
        raise NotImplementedError

    def predict(self, examples: Any) -> np.ndarray:
        """The probability that each (checked) example was generated."""
        raise NotImplementedError

    def save(self, folder: Path) -> None:
        raise NotImplementedError

    @classmethod
    def load(cls, folder: Path, input: dict[str, Any]) -> Classifier:
        raise NotImplementedError


def damaged(folder: Path, file: str, error: Exception | str) -> GenloomError:
    """The one-line error for a detector folder whose weights cannot be read."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return GenloomError(f"{folder} is damaged: its {file} cannot be read ({first}); train the detector again with "
                        "genloom detector train")


def wrong_files(classifier: Classifier, path: Path) -> GenloomError:
    return GenloomError(f"{path.name}: this {classifier.kind} detector scores {classifier.reads}; got "
                        f"{path.suffix or 'a file without a suffix'!r}")
