"""The synthetic-content detector: a classifier of real vs generated examples, one per data kind (registry.py: a
small CNN for images, gradient-boosted trees for tables, character n-grams for text), trained on real data
against the samples of trained runs, and measured by its ROC AUC on held-out examples of each run."""
from .detector import Detector
from .training import train_detector

__all__ = ["Detector", "train_detector"]
