"""AnomalyDetector: a generative model's likelihood as an outlier score, shaped like PyOD's detectors and
scikit-learn's (fit, decision_function, predict, score_samples, get_params), so it drops into their pipelines
and model selection. The score is the family's anomaly_score: the negative log-likelihood in nats (a VAE: its
importance-weighted bound), a diffusion model's denoising error over noise levels; examples the model finds
unlikely are the anomalies."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OutlierMixin

from .data.dataset import Dataset
from .errors import GenloomError
from .families import CATALOG, family_class
from .model import Model



def check_contamination(contamination: float) -> float:
    if not isinstance(contamination, (int, float)) or not 0 < contamination <= 0.5:
        raise GenloomError(f"contamination is the share of anomalies expected, in (0, 0.5]; got {contamination!r}")
    return float(contamination)


def as_examples(X: Any) -> Any:
    """What a scikit-learn user passes, as the examples a model scores: a 2-D array is a table (columns x0,
    x1, ...), a 3- or 4-D array images, a Dataset its values; DataFrames go through as they are."""
    if isinstance(X, Dataset):
        return X.values
    if isinstance(X, np.ndarray) and X.ndim == 2:
        return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    return X


class AnomalyDetector(OutlierMixin, BaseEstimator):
    """Fit on (mostly) normal data; `decision_function` scores new examples (higher = more anomalous, PyOD's
    sense), `predict` flags them 1 past the threshold that marks `contamination` of the training data (0
    otherwise), `score_samples` is scikit-learn's sense (lower = more anomalous)."""

    def __init__(self, family: str = "vae", contamination: float = 0.1, steps: int | None = None,
                 minutes: float | None = None, seed: int = 0, options: dict[str, Any] | None = None):
        self.family, self.contamination, self.steps, self.minutes = family, contamination, steps, minutes
        self.seed, self.options = seed, options

    def fit(self, X: Any, y: Any = None, out: str | Path | None = None) -> AnomalyDetector:
        """Train the model on X (y is ignored: the detector learns what normal looks like) and set the threshold
        from its scores of X. With `out`, the run is written there, threshold included."""
        contamination = check_contamination(self.contamination)
        if self.family not in CATALOG or "anomaly_score" not in family_class(self.family).tools:
            scoring = [name for name in CATALOG if "anomaly_score" in family_class(name).tools]
            raise GenloomError(f"family {self.family!r} gives no anomaly score; choose {', '.join(scoring)}")
        data = X if isinstance(X, Dataset) else as_examples(X)  # a Dataset keeps its name and source in the run
        self.model_ = Model(self.family, **(self.options or {})).fit(data, steps=self.steps, minutes=self.minutes,
                                                                     seed=self.seed, out=out, progress=False)
        self.decision_scores_ = self.decision_function(X)
        self.threshold_ = float(np.quantile(self.decision_scores_, 1 - contamination))
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        if out is not None:
            self.model_.record["anomaly"] = {"threshold": self.threshold_, "contamination": contamination,
                                             "score": f"{self.model_.ema_net.anomaly_measure}; higher is more "
                                                      "anomalous"}
            self.model_.write_record()
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        return self.model_.anomaly_scores(as_examples(X), seed=self.seed)

    def score_samples(self, X: Any) -> np.ndarray:
        return -self.decision_function(X)

    def predict(self, X: Any) -> np.ndarray:
        return (self.decision_function(X) > self.threshold_).astype(int)

    @classmethod
    def load(cls, path: str | Path) -> AnomalyDetector:
        """The detector `genloom anomaly fit` (or fit(out=...)) wrote: its model and threshold."""
        model = Model.load(path)
        kept = model.record.get("anomaly")
        if not isinstance(kept, dict) or "threshold" not in kept:
            raise GenloomError(f"{path} holds a run but no anomaly threshold; fit it with `genloom anomaly fit` "
                               "(or AnomalyDetector().fit(X, out=...))")
        detector = cls(family=model.family_name, contamination=kept["contamination"])
        detector.model_, detector.threshold_ = model, float(kept["threshold"])
        return detector
