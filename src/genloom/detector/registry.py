"""Which classifier tells real from generated examples of each data kind: the one table of per-kind choices."""
from __future__ import annotations

from ..errors import GenloomError
from .classifier import Classifier
from .image import ImageClassifier
from .table import TableClassifier
from .text import TextClassifier

CLASSIFIERS: dict[str, type[Classifier]] = {
    "image": ImageClassifier,  # a small CNN
    "table": TableClassifier,  # LightGBM's gradient-boosted trees
    "text": TextClassifier,    # character n-grams and a logistic regression
}


def classifier_for(kind: str) -> type[Classifier]:
    if kind not in CLASSIFIERS:
        raise GenloomError(f"no detector for {kind!r} data; kinds: {', '.join(CLASSIFIERS)}")
    return CLASSIFIERS[kind]
