"""AnomalyDetector: a generative model as an outlier detector, shaped like PyOD's detectors and scikit-learn's
(fit, decision_function, predict, score_samples, get_params), so it drops into their pipelines and model
selection. Its score adds up views of an example, each as a robust standard score against the training data's:
"likelihood", the family's anomaly_score (the negative log-likelihood in nats, a VAE's importance-weighted bound;
a diffusion model's denoising error over noise levels), and "latent", the local outlier factor of its latent code
among the training examples' codes. The defaults per family are in defaults.py (ANOMALY_VIEWS)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from sklearn.base import BaseEstimator, OutlierMixin

from .data.dataset import Dataset
from .data.loaders import load_data
from .defaults import ANOMALY_VIEWS, anomaly_codec_for, anomaly_views_for
from .errors import GenloomError
from .families import CATALOG, family_class
from .files import atomic_path
from .model import Model
from .runs.record import ANOMALY_REFERENCE_FILE

VIEWS = ("likelihood", "latent")
MAX_REFERENCE = 20_000  # training codes kept for the latent view: beyond, a random subset (the LOF stays quick)
NEIGHBOURS = 20         # the local outlier factor's neighbourhood (scikit-learn's default), fewer on fewer codes


def check_contamination(contamination: float) -> float:
    if not isinstance(contamination, (int, float)) or not 0 < contamination <= 0.5:
        raise GenloomError(f"contamination is the share of anomalies expected, in (0, 0.5]; got {contamination!r}")
    return float(contamination)


def check_views(views: str | Sequence[str], family: str) -> tuple[str, ...]:
    """The views as a tuple (one view may be given as a string), or a one-line error. The latent view wants an
    encoder that is one forward pass (a VAE's): diffusion's DDIM inversion is a whole sampling run per example."""
    views = (views,) if isinstance(views, str) else tuple(dict.fromkeys(views))
    unknown = [view for view in views if view not in VIEWS]
    if not views or unknown:
        raise GenloomError(f"unknown anomaly view {unknown[0]!r}; use one or more of {', '.join(VIEWS)}" if unknown
                           else f"give at least one anomaly view: {', '.join(VIEWS)}")
    encoders = [name for name, defaults in ANOMALY_VIEWS.items() if "latent" in defaults]
    if "latent" in views and family not in encoders:
        raise GenloomError(f"family {family!r} has no quick encoder for the 'latent' view; use the view "
                           f"'likelihood' alone, or the family {' or '.join(encoders)}")
    return views


def as_examples(X: Any) -> Any:
    """What a scikit-learn user passes, as the examples a model scores: a 2-D array is a table (columns x0,
    x1, ...), a 3- or 4-D array images, a Dataset its values; DataFrames go through as they are."""
    if isinstance(X, Dataset):
        return X.values
    if isinstance(X, np.ndarray) and X.ndim == 2:
        return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    return X


@dataclass
class Typical:
    """A view's typical training score and spread (median, interquartile range): how its scores are put on one
    scale before they add up. Robust, since the training data may hold a few anomalies."""

    median: float
    spread: float

    @classmethod
    def of(cls, scores: np.ndarray) -> Typical:
        low, median, high = np.quantile(scores, [0.25, 0.5, 0.75])
        return cls(float(median), float(high - low) or 1.0)

    def standard(self, scores: np.ndarray) -> np.ndarray:
        return (scores - self.median) / self.spread


class LatentNeighbourhood:
    """scikit-learn's LocalOutlierFactor (novelty mode) over the training examples' distinct latent codes: how much
    sparser an example's neighbourhood of codes is than its neighbours' own. Repeated codes (rows of categories only)
    count once, or a run of equal codes would make every factor among them exactly 1 and any other code's endless."""

    def __init__(self, codes: np.ndarray):
        from sklearn.neighbors import LocalOutlierFactor  # scikit-learn's neighbours are slow to import

        self.codes = codes
        self.distinct, self.of_code = np.unique(codes, axis=0, return_inverse=True)
        if len(self.distinct) < 2:
            raise GenloomError("the training examples have fewer than 2 distinct latent codes, too few for the "
                               "'latent' view; use the view 'likelihood' alone")
        self.lof = LocalOutlierFactor(n_neighbors=min(NEIGHBOURS, len(self.distinct) - 1), novelty=True)
        self.lof.fit(self.distinct)

    def scores(self, codes: np.ndarray) -> np.ndarray:
        return -self.lof.score_samples(codes)

    def training_scores(self) -> np.ndarray:
        """Each reference code's factor among the others, leaving itself out."""
        return -self.lof.negative_outlier_factor_[self.of_code.ravel()]


class AnomalyDetector(OutlierMixin, BaseEstimator):
    """Fit on (mostly) normal data; `decision_function` scores new examples (higher = more anomalous, PyOD's
    sense), `predict` flags them 1 past the threshold that marks `contamination` of the training data (0
    otherwise), `score_samples` is scikit-learn's sense (lower = more anomalous). `views` (default: the family's)
    says what the score adds up: "likelihood", "latent" or both. As in PyOD, the training data's own scores are
    `decision_scores_` and its flags `labels_` (= fit_predict): there the latent view leaves each example out of
    its own neighbourhood, which decision_function of the same examples cannot know to do."""

    def __init__(self, family: str = "vae", contamination: float = 0.1, steps: int | None = None,
                 minutes: float | None = None, seed: int = 0, options: dict[str, Any] | None = None,
                 views: Sequence[str] | None = None):
        self.family, self.contamination, self.steps, self.minutes = family, contamination, steps, minutes
        self.seed, self.options, self.views = seed, options, views

    def fit(self, X: Any, y: Any = None, out: str | Path | None = None) -> AnomalyDetector:
        """Train the model on X (y is ignored: the detector learns what normal looks like), measure each view's
        typical training score, and set the threshold from the training scores. With `out`, the run is written
        there, threshold and the latent view's reference codes included."""
        contamination = check_contamination(self.contamination)
        if self.family not in CATALOG or "anomaly_score" not in family_class(self.family).tools:
            scoring = [name for name in CATALOG if "anomaly_score" in family_class(name).tools]
            raise GenloomError(f"family {self.family!r} gives no anomaly score; choose {', '.join(scoring)}")
        self.views_ = check_views(anomaly_views_for(self.family) if self.views is None else self.views, self.family)
        data = load_data(X if isinstance(X, Dataset) else as_examples(X))  # a Dataset keeps its name and source
        if len(data) < 2:
            raise GenloomError(f"an anomaly detector learns what is normal from 2 examples or more; got {len(data)}")
        self.model_ = Model(self.family, **(self.options or {})).fit(
            data, steps=self.steps, minutes=self.minutes, seed=self.seed, out=out, progress=False,
            codec_options=anomaly_codec_for(self.family, data.kind))
        training = self._view_scores(data.values, fitting=True)
        self.typical_ = {view: Typical.of(scores) for view, scores in training.items()}
        self.decision_scores_ = self._combined(training)
        self.threshold_ = float(np.quantile(self.decision_scores_, 1 - contamination))
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        if out is not None:
            self._write(Path(out), contamination)
        return self

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).labels_

    def decision_function(self, X: Any) -> np.ndarray:
        return self._combined(self._view_scores(as_examples(X)))

    def score_samples(self, X: Any) -> np.ndarray:
        return -self.decision_function(X)

    def predict(self, X: Any) -> np.ndarray:
        return (self.decision_function(X) > self.threshold_).astype(int)

    # -- the views -------------------------------------------------------------------------------------------
    def _view_scores(self, examples: Any, fitting: bool = False) -> dict[str, np.ndarray]:
        """Each view's raw scores of the examples; when fitting, they are the training examples: the latent view's
        neighbourhood is made of their codes, and they are scored leaving themselves out."""
        scores = {}
        if "likelihood" in self.views_:
            scores["likelihood"] = self.model_.anomaly_scores(examples, seed=self.seed)
        if "latent" in self.views_:
            codes = self.model_.encode(examples)
            codes = codes.reshape(len(codes), -1)
            scores["latent"] = self._fit_neighbourhood(codes) if fitting else self.neighbourhood_.scores(codes)
        return scores

    def _fit_neighbourhood(self, codes: np.ndarray) -> np.ndarray:
        """Set the latent view's neighbourhood from (up to MAX_REFERENCE of) the training codes; their scores."""
        order = np.random.default_rng(self.seed).permutation(len(codes))
        keep, rest = np.sort(order[:MAX_REFERENCE]), order[MAX_REFERENCE:]
        self.neighbourhood_ = LatentNeighbourhood(codes[keep])
        scores = np.empty(len(codes))
        scores[keep] = self.neighbourhood_.training_scores()
        scores[rest] = self.neighbourhood_.scores(codes[rest]) if len(rest) else 0.0
        return scores

    def _combined(self, scores: dict[str, np.ndarray]) -> np.ndarray:
        return sum(self.typical_[view].standard(np.asarray(values, np.float64)) for view, values in scores.items())

    # -- the run folder --------------------------------------------------------------------------------------
    def _write(self, out: Path, contamination: float) -> None:
        measures = {"likelihood": self.model_.ema_net.anomaly_measure,
                    "latent": "local outlier factor of the latent code among the training codes"}
        self.model_.record["anomaly"] = {
            "threshold": self.threshold_, "contamination": contamination, "views": list(self.views_),
            "typical": {view: [typical.median, typical.spread] for view, typical in self.typical_.items()},
            "score": "standard score of " + " + ".join(measures[view] for view in self.views_) + " (each against "
                     "the training data's median and interquartile range); higher is more anomalous"}
        if "latent" in self.views_:
            with atomic_path(out / ANOMALY_REFERENCE_FILE) as tmp:
                save_file({"codes": torch.from_numpy(np.ascontiguousarray(self.neighbourhood_.codes))}, str(tmp))
        self.model_.write_record()

    @classmethod
    def load(cls, path: str | Path) -> AnomalyDetector:
        """The detector `genloom anomaly fit` (or fit(out=...)) wrote: its model, views and threshold."""
        return cls.of(Model.load(path))

    @classmethod
    def of(cls, model: Model) -> AnomalyDetector:
        """The detector a loaded run holds (a server's cached model), or a one-line error if it holds none."""
        path = model.run_dir
        kept = model.record.get("anomaly")
        if not isinstance(kept, dict) or "threshold" not in kept:
            raise GenloomError(f"{path} holds a run but no anomaly threshold; fit it with `genloom anomaly fit` "
                               "(or AnomalyDetector().fit(X, out=...))")
        views = kept.get("views", ["likelihood"])  # detectors written before the views: the likelihood, raw
        typical = kept.get("typical", {"likelihood": [0.0, 1.0]})
        try:
            views = check_views(views, model.family_name)
            if set(typical) != set(views):
                raise GenloomError(f"its views {list(views)} and their typical scores {list(typical)} differ")
            typical = {view: Typical(*map(float, typical[view])) for view in views}
        except (GenloomError, TypeError, ValueError) as error:
            raise GenloomError(f"{path} is damaged: its anomaly record does not hold ({error}); fit the detector "
                               "again with genloom anomaly fit") from None
        detector = cls(family=model.family_name, contamination=kept["contamination"], views=list(views))
        detector.model_, detector.threshold_, detector.views_ = model, float(kept["threshold"]), views
        detector.typical_ = typical
        if "latent" in views:
            try:
                codes = load_file(str(Path(path) / ANOMALY_REFERENCE_FILE))["codes"].numpy()
            except (OSError, SafetensorError, KeyError) as error:
                raise GenloomError(f"{path} is damaged: its {ANOMALY_REFERENCE_FILE} cannot be read ({error}); fit "
                                   "the detector again with genloom anomaly fit") from None
            detector.neighbourhood_ = LatentNeighbourhood(codes)
        return detector
