"""`Detector`: a trained classifier of real vs generated examples and its record, in a folder of its own: the
weights (safetensors, or LightGBM's text file) and detector.json (data kind, input, held-out AUCs per source,
genloom's version, the sources). Nothing pickled is read."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import __version__
from ..errors import GenloomError
from ..files import check_writable, write_json
from ..runs.record import read_json
from .classifier import Classifier
from .registry import CLASSIFIERS, classifier_for

RECORD_FILE = "detector.json"
FORMAT = 1  # of detector.json


class Detector:
    """Scores examples (or files) with the probability that they were generated."""

    def __init__(self, classifier: Classifier, record: dict[str, Any], path: Path | None = None):
        self.classifier, self.record, self.path = classifier, record, path

    @property
    def kind(self) -> str:
        return self.classifier.kind

    @property
    def aucs(self) -> dict[str, float]:
        """Held-out ROC AUC per source of generated examples, and over them all ("all")."""
        return dict(self.record["auc"])

    def __repr__(self) -> str:
        auc, sources = self.aucs.get("all", float("nan")), len(self.record["sources"])
        return f"Detector({self.kind}: {self.classifier.method}; held-out AUC {auc:.3f} over {sources} source(s))"

    def score(self, examples: Any) -> np.ndarray:
        """The probability that each example was generated: images as a uint8 array (N, H, W[, C]), table rows as
        a DataFrame, texts as a list of strings."""
        return self.classifier.predict(self.classifier.check(examples))

    def score_files(self, paths: Sequence[str | Path]) -> tuple[list[str], np.ndarray]:
        """Each example in the files (PNGs or an .npy of images; tables; .txt files) named, and its score."""
        if not paths:
            raise GenloomError(f"give the files to score ({self.classifier.reads})")
        examples, names = self.classifier.read_files([Path(path) for path in paths])
        return names, self.classifier.predict(examples)

    # -- the folder ----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the detector to a new (or empty) folder, or over an earlier detector's."""
        path = Path(path)
        check_folder(path)
        path.mkdir(parents=True, exist_ok=True)
        for other in {kind.weights_file for kind in CLASSIFIERS.values()} - {self.classifier.weights_file}:
            (path / other).unlink(missing_ok=True)  # an earlier detector's of another kind
        self.classifier.save(path)
        write_json(path / RECORD_FILE, self.record)
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | Path) -> Detector:
        """The detector `genloom detector train` (or train_detector(..., out=...)) wrote."""
        path = Path(path)
        record = read_record(path)
        try:
            kind = classifier_for(record["kind"])
            classifier = kind.load(path, record["input"])
        except (KeyError, TypeError, ValueError) as error:
            raise GenloomError(f"{path} is damaged: its {RECORD_FILE} lacks or garbles {error}; train the detector "
                               "again with genloom detector train") from None
        return cls(classifier, record, path)


def check_folder(path: Path) -> None:
    """A detector goes into a new folder, an empty one, or over a detector; never over anything else."""
    check_writable(path, folder=True)
    if path.is_dir() and any(path.iterdir()) and not (path / RECORD_FILE).is_file():
        raise GenloomError(f"{path} already holds files and no detector; give a new folder for the detector")


def read_record(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise GenloomError(f"{path} is not a folder; give the folder genloom detector train wrote")
    if (path / "config.json").is_file() and not (path / RECORD_FILE).is_file():
        raise GenloomError(f"{path} is a genloom run, not a detector (no {RECORD_FILE}); train one with genloom "
                           "detector train --real DATA --fake RUN --out DET")
    record = read_json(path / RECORD_FILE, "a detector", "train one with genloom detector train --real DATA --fake "
                       "RUN --out DET")
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise GenloomError(f"{path} is damaged: its {RECORD_FILE} is not a genloom detector record (format "
                           f"{FORMAT}); train the detector again with genloom detector train")
    return record


def new_record(classifier: Classifier, **fields: Any) -> dict[str, Any]:
    return {"format": FORMAT, "kind": classifier.kind, "method": classifier.method, "input": classifier.input,
            **fields, "genloom_version": __version__}
