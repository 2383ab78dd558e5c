"""`train_detector`: real examples against each source's generated ones, a share of each held out; the detector is
trained on the rest and its ROC AUC measured on the held-out real examples against each source's held-out
generated ones, and against all of them together."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from ..data.loaders import load_data
from ..errors import GenloomError, note
from ..options import whole_number
from .detector import Detector, check_folder, new_record
from .registry import classifier_for
from .sources import check_kinds, sources_of

DEFAULT_SAMPLES = 1000   # generated examples drawn from each run
MIN_EXAMPLES = 8         # of each source, and of the real data: a few held out, a few to learn from
ALL = "all"


def train_detector(real: Any, fakes: Any, *, out: str | Path | None = None, samples: int = DEFAULT_SAMPLES,
                   steps: int | None = None, held_out: float = 0.25, seed: int = 0,
                   progress: bool = True) -> Detector:
    """Train a classifier of real vs generated examples and measure it on held-out ones.

    `real` is anything load_data takes; `fakes` run folders or Models (a list), whose `samples` examples each are
    the generated ones, or {name: run, Model or examples}. As many real examples as generated ones in all are
    drawn (or all there are). `steps`: the classifier's training iterations (CNN updates, boosting rounds or
    solver iterations; default: the kind's). The detector's `aucs` hold the held-out ROC AUC per source and over
    all; with `out`, the detector is written there (Detector.load reads it)."""
    started = time.perf_counter()
    samples, seed = whole_number("samples", samples, MIN_EXAMPLES), whole_number("seed", seed, 0)
    if not isinstance(held_out, (int, float)) or not 0 < held_out < 1:
        raise GenloomError(f"held_out is the share of the examples kept to measure the detector, in (0, 1); got "
                           f"{held_out!r}")
    if out is not None:
        check_folder(Path(out))
    data = load_data(real)
    sources = sources_of(fakes)
    if any(source.name == ALL for source in sources):
        raise GenloomError(f"a source may not be named {ALL!r}: that name is the AUC over all sources; rename it")
    check_kinds(sources, data)
    kind = classifier_for(data.kind)
    steps = kind.default_steps if steps is None else whole_number("steps", steps)
    classifier = kind.for_data(data)
    for source in sources:
        if source.model is not None:
            classifier.check_run(source.model, source.name)
    generated = [source.draw(classifier, samples, seed + i, progress) for i, source in enumerate(sources)]
    for source, part in zip(sources, generated):
        _check_count(source.name, len(part))
    rng = np.random.default_rng(seed)
    real_examples = classifier.real_examples(data, sum(len(part) for part in generated), rng,
                                             classifier.join(generated))
    _check_count(f"the real data {data.name}", len(real_examples))
    groups = [("real", real_examples), *((source.name, part) for source, part in zip(sources, generated))]
    splits = [_split(len(part), held_out, rng) for _, part in groups]
    train = classifier.join([classifier.take(part, rows) for (_, part), (rows, _) in zip(groups, splits)])
    counts = [len(rows) for rows, _ in splits]
    is_generated = np.repeat([0] + [1] * len(sources), counts)
    shares = [0.5] + [0.5 / len(sources)] * len(sources)  # real and generated weigh the same, each source alike
    weights = np.repeat([share / count for share, count in zip(shares, counts)], counts)
    if progress:
        note(f"detector: training a {classifier.method} on {counts[0]:,} real and {sum(counts[1:]):,} generated "
             f"{data.kind} examples ({steps} {kind.steps_are})")
    classifier.fit(train, is_generated, weights, steps, seed, progress)
    scores = [classifier.predict(classifier.take(part, rows)) for (_, part), (_, rows) in zip(groups, splits)]
    aucs = {source.name: _auc(scores[0], scores[i + 1]) for i, source in enumerate(sources)}
    aucs[ALL] = _auc(scores[0], np.concatenate(scores[1:]))
    record = new_record(
        classifier, classifier_steps=steps, steps_are=kind.steps_are, seed=seed, held_out_share=held_out,
        data={"name": data.name, **data.source},
        real={"examples": len(real_examples), "held_out": len(splits[0][1])},
        sources=[{**source.describe(), "examples": len(part), "held_out": len(rows)}
                 for source, part, (_, rows) in zip(sources, generated, splits[1:])],
        auc=aucs, train_seconds=round(time.perf_counter() - started, 2),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    detector = Detector(classifier, record)
    if out is not None:
        detector.save(out)
    return detector


def _check_count(name: str, count: int) -> None:
    if count < MIN_EXAMPLES:
        raise GenloomError(f"{name} gives {count} examples; a detector needs at least {MIN_EXAMPLES} of each source "
                           "(some to learn from, some held out)")


def _split(n: int, held_out: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows) of n examples: at least 2 of each."""
    rows = rng.permutation(n)
    kept = min(n - 2, max(2, round(held_out * n)))
    return np.sort(rows[kept:]), np.sort(rows[:kept])


def _auc(real: np.ndarray, generated: np.ndarray) -> float:
    truth = np.concatenate([np.zeros(len(real)), np.ones(len(generated))])
    return float(roc_auc_score(truth, np.concatenate([real, generated])))
