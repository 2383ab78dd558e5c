"""`evaluate`: the metrics of a trained model for its data kind, stored in the run and shown in its report."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch

from .data.builtin import HELD_OUT
from .data.dataset import Dataset
from .data.loaders import load_data, load_source
from .errors import GenloomError, note
from .metrics.features import extract, extractor_for, feature_net_for
from .metrics.images import frechet_distance, inception_score, kernel_distance, precision_recall
from .metrics.inception import InceptionV3
from .metrics.text import bits_per_token, perplexity, text_sample_metrics
from .model import Model, load
from .options import whole_number
from .train.batches import held_out_indices, split_validation

EVAL_WINDOWS = 200   # held-out windows of text scored for the validation loss


@torch.no_grad()
def _held_out_loss(model: Model, tokens: torch.Tensor) -> float:
    """Mean next-token loss (nats) over non-overlapping windows of a token stream, each predicting block_size."""
    net = model.ema_net.eval()
    window = net.context_length + 1
    starts = list(range(0, len(tokens) - window + 1, window - 1))[:EVAL_WINDOWS]
    if not starts:
        raise GenloomError(f"the held-out text has {len(tokens)} tokens, fewer than one block of {window}; "
                           "evaluate on a longer text")
    device = next(net.parameters()).device
    total = 0.0
    for chunk in range(0, len(starts), 32):
        batch = torch.stack([tokens[s:s + window] for s in starts[chunk:chunk + 32]]).to(device)
        total += -net.log_prob(batch).sum().item()
    return total / (len(starts) * (window - 1))


def evaluate_text(model: Model, held_out: tuple, training: tuple | None, samples: int, seed: int,
                  progress: bool) -> dict[str, float]:
    """Held-out loss, perplexity and bits per character; diversity of samples and their copying of training text."""
    tokens = held_out[0]
    training_text = model.codec.decode(training[0]) if training is not None else None
    loss = _held_out_loss(model, tokens)
    characters_per_token = len(model.codec.decode(tokens)) / len(tokens)
    texts = model.sample(samples, seed=seed, progress=progress)
    scores = {"held_out_loss": loss, "perplexity": perplexity(loss),
              "bits_per_character": bits_per_token(loss) / characters_per_token}
    sample_scores = text_sample_metrics(texts, training_text or "", word_level=True)
    if training_text is None:  # unknown training text: no copy check
        sample_scores = {k: v for k, v in sample_scores.items() if not k.startswith("longest_copy")}
    return {**scores, **sample_scores}


def evaluate_images(model: Model, held_out: tuple, training: tuple | None, samples: int, seed: int,
                    progress: bool, inception_weights: str | Path | None = None) -> dict[str, float]:
    """FID, KID, precision/recall (and the Inception Score with class labels) of as many samples as held-out
    images, with the floors and ceilings that make them readable: held-out vs training images, and noise;
    plus the family's own held-out numbers (the ELBO of a VAE). Features come from InceptionV3 when its
    weights file is given (`inception_weights` or $GENLOOM_INCEPTION_WEIGHTS), else from the run's feature net."""
    x, labels = held_out
    train_x, train_labels = training if training is not None else held_out
    device = next(model.ema_net.parameters()).device
    net, description = extractor_for(model.run_dir, train_x, train_labels, model.codec.layout, inception_weights,
                                     device)
    model.record["feature_extractor"] = description
    if progress:
        note(f"evaluate: image features from {description}")
    n = len(x)
    fake = model.codec.encode(model.sample(n, seed=seed, progress=progress))
    noise = torch.rand(fake.shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    (real_f, _), (fake_f, fake_logits), (train_f, _), (noise_f, _) = (
        extract(net, images) for images in (x, fake, train_x[:n], noise))
    precision, recall = precision_recall(real_f, fake_f)
    scores = {"fid": frechet_distance(real_f, fake_f), "kid": kernel_distance(real_f, fake_f, subsets=20)[0],
              "precision": precision, "recall": recall,
              "fid_train_vs_held_out": frechet_distance(real_f, train_f), "fid_noise": frechet_distance(real_f, noise_f)}
    if train_labels is not None or isinstance(net, InceptionV3):  # logits over classes, not over flips
        scores["inception_score"] = inception_score(fake_logits, splits=1)[0]
    with torch.no_grad():
        own = model.ema_net.eval().evaluate(x.to(device), labels.to(device) if labels is not None else None)
    return {**scores, **own}


def evaluate_table(model: Model, held_out: tuple, training: tuple | None, samples: int, seed: int,
                   progress: bool, target: str | None = None, figures_to: Path | None = None,
                   protected: Sequence[str] = (), positive: Any = None) -> dict[str, float]:
    """SDMetrics quality and diagnostic scores, detection AUC, utility for `target` and privacy distances of
    as many synthetic rows as training rows, all against the held-out rows; the real training rows
    against the held-out ones give the score a perfect model would reach; with `protected` columns, the
    fairness of the utility classifier across their groups (metrics/fairness.py; `positive`: the class it
    predicts, by default the rarer of two). Pictures go into `figures_to` (the run's evaluation/ folder when
    the evaluation is saved)."""
    from .metrics.table_figures import (association_heatmaps, column_histograms, distance_histograms,  # scipy,
                                        membership_curves)
    from .metrics.tabular import association_matrix, table_scores  # sklearn's trees: loaded for tables only
    from .metrics.fairness import fairness_request, fairness_scores, joint_distribution_figure

    real, train = held_out[0], training[0]  # evaluate() always finds the training rows of a table model
    kinds = model.codec.kinds
    if target is not None and target not in kinds:
        raise GenloomError(f"target column {target!r} is not in the table; columns: {', '.join(kinds)}")
    if target is not None and kinds[target] == "identifier":
        raise GenloomError(f"target column {target!r} is an identifier; choose a column to predict")
    positive = fairness_request(train, kinds, protected, target, positive) if protected else None
    given = model.codec.condition_on  # a model given columns makes the others for each training row's
    synthetic = (pd.concat([train[given].reset_index(drop=True), model.sample(conditions=train[given], seed=seed,
                                                                              progress=progress)], axis=1)
                 if given else model.sample(len(train), seed=seed, progress=progress))
    if progress:
        note(f"evaluate: SDMetrics reports, detection, utility and privacy of {len(synthetic):,} synthetic rows")
    scores, distances = table_scores(synthetic, train, real, kinds, target, model.codec.formats, seed)
    model.record.pop("fairness", None)  # this evaluation's, or none
    if protected:
        scores.update(fairness_scores(synthetic, train, real, kinds, target, protected, positive, seed))
        model.record["fairness"] = {"protected": list(protected), "target": target, "positive": positive}
    if figures_to is not None:
        column_histograms(real, synthetic, kinds, figures_to / "columns.png")
        association_heatmaps(association_matrix(real, kinds), association_matrix(synthetic, kinds),
                             figures_to / "associations.png")
        distance_histograms({"synthetic": distances["synthetic"], "held-out real": distances["held_out"]},
                            figures_to / "privacy.png")
        model.record["figures"] = {
            f"{figures_to.name}/columns.png": "held-out real vs synthetic rows, column by column",
            f"{figures_to.name}/associations.png": "association between columns (Cramér's V, numbers in deciles)",
            f"{figures_to.name}/privacy.png": "distance of each row to its closest training row"}
        if distances.get("membership"):  # none with too few held-out rows
            membership_curves(distances["membership"], figures_to / "membership.png")
            model.record["figures"][f"{figures_to.name}/membership.png"] = (
                "membership attacks: training rows found against held-out rows taken for them")
        if protected:
            joint_distribution_figure(real, synthetic, target, protected, positive, figures_to / "fairness.png")
            model.record["figures"][f"{figures_to.name}/fairness.png"] = (
                f"protected groups x {target}: held-out real vs synthetic rows")
    return scores


def evaluate_molecules(model: Model, held_out: tuple, training: tuple | None, samples: int, seed: int,
                       progress: bool, figures_to: Path | None = None) -> dict[str, float]:
    """MOSES' metrics of `samples` generated molecules against as many held-out ones (1,000 at least, 10,000 at
    most: a seeded draw where there are more), novelty
    against the training molecules, and the family's negative log-likelihood of the held-out molecules; pictures
    of the property distributions and of the first samples go into `figures_to`."""
    from .metrics.molecules import REFERENCE_MOLECULES, molecule_scores, property_histograms, reference_sample

    reference = reference_sample(list(held_out[0]), seed, min(max(samples, 1000), REFERENCE_MOLECULES))
    generated = model.sample(samples, seed=seed, progress=progress)
    if progress:
        note(f"evaluate: validity, uniqueness, novelty, diversity, filters, FCD and properties of {samples:,} "
             f"molecules against {len(reference):,} held-out ones")
    scores, real_properties, made_properties = molecule_scores(
        generated, reference, set(training[0]) if training is not None else None)
    try:
        x = model.codec.encode(reference)
    except GenloomError as unknown:  # held-out molecules of another set may hold tokens the run never saw
        note(f"evaluate: no held-out likelihood ({unknown})")
    else:
        with torch.no_grad():
            scores.update(model.ema_net.eval().evaluate(x.to(next(model.ema_net.parameters()).device), None))
    if figures_to is not None:
        figures = {"properties.png": "held-out vs generated molecules: logP, synthetic accessibility (SA), "
                                     "drug-likeness (QED) and molecular weight",
                   "molecules.png": "the first 24 generated molecules (invalid strings say so)"}
        if real_properties:
            property_histograms(real_properties, made_properties, figures_to / "properties.png")
        else:
            figures.pop("properties.png")
        model.codec.save_samples(generated[:24], figures_to / "molecules.png")  # drawn
        model.record["figures"] = {f"{figures_to.name}/{name}": caption for name, caption in figures.items()}
    return scores


def evaluate_signals(model: Model, held_out: tuple, training: tuple | None, samples: int, seed: int,
                     progress: bool, figures_to: Path | None = None) -> dict[str, float]:
    """The Fréchet distance between held-out and as many generated recordings, in the features of a classifier of
    spectrograms trained on the run's real training recordings (of their labels; else of flips), with its floor
    (training vs held-out) and its ceiling (white noise); a conditional model's samples of the held-out labels are
    classified, and the share recognised (conditional_accuracy) sits beside the classifier's own on held-out
    recordings. The family's own held-out numbers, and a picture of real and generated spectrograms."""
    from .data.signal_layout import SignalLayout
    from .metrics.signals import feature_input, spectrogram_comparison, white_noise

    real, labels = held_out
    train, train_labels = training if training is not None else held_out
    x_real, x_train = feature_input(model.codec, real), feature_input(model.codec, train)
    layout = SignalLayout(tuple(x_train.shape[1:]), len(model.codec.class_names))
    net, description = feature_net_for(model.run_dir, x_train, train_labels, layout, "recordings")
    model.record["feature_extractor"] = description
    if progress:
        note(f"evaluate: signal features from {description}")
    conditional = model.ema_net.conditional and labels is not None
    made = model.sample(len(real), seed=seed, labels=labels.numpy() if conditional else None, progress=progress)
    (real_f, real_logits), (made_f, made_logits), (train_f, _), (noise_f, _) = (
        extract(net, x) for x in (x_real, feature_input(model.codec, made), x_train[:len(real)],
                                  feature_input(model.codec, white_noise(real, seed))))
    scores = {"fd": frechet_distance(real_f, made_f), "fd_train_vs_held_out": frechet_distance(real_f, train_f),
              "fd_noise": frechet_distance(real_f, noise_f)}
    if labels is not None and train_labels is not None:
        scores["classifier_accuracy"] = (real_logits.argmax(1) == labels).float().mean().item()
        if conditional:
            scores["conditional_accuracy"] = (made_logits.argmax(1) == labels).float().mean().item()
    with torch.no_grad():
        x, device = model.codec.encode(real), next(model.ema_net.parameters()).device
        own_labels = labels.to(device) if model.ema_net.conditional and labels is not None else None
        scores.update(model.ema_net.eval().evaluate(x.to(device), own_labels))
    if figures_to is not None:
        spectrogram_comparison(model.codec, real, labels.numpy() if labels is not None else None, made,
                               labels.numpy() if conditional else None, figures_to / "spectrograms.png")
        shown = "one of each class" if labels is not None and conditional else "the first few"
        model.record["figures"] = {f"{figures_to.name}/spectrograms.png": f"held-out (top) and generated (bottom) "
                                                                         f"recordings, {shown}"}
    return scores


def _encoded_parts(model: Model, data: Dataset, fraction: float | None) -> tuple[tuple, tuple | None]:
    """Encoded examples and labels: all of them and None, or with a `fraction`, the parts the run trained on
    and held out (as fit split them)."""
    labels = torch.from_numpy(data.labels) if data.labels is not None and model.codec.layout.num_classes else None
    x = model.codec.encode(data.values)
    return ((x, labels), None) if fraction is None else split_validation(x, labels, fraction)


def _raw_parts(examples: Any, fraction: float | None, take: Callable[[Any, Any], Any],
               labels: torch.Tensor | None = None) -> tuple[tuple, tuple | None]:
    """Examples as they are (metrics read them, not their encodings) with their labels, if any: all of them and
    None, or with a `fraction`, the parts fit trained on and held out (`take(examples, indices)` picks some)."""
    if fraction is None:
        return (examples, labels), None
    train, held_out = held_out_indices(len(examples), fraction)
    if not len(held_out):
        return (examples, labels), None
    return tuple((take(examples, indices), labels[indices] if labels is not None else None)
                 for indices in (train, held_out))


def _molecule_parts(model: Model, data: Dataset, fraction: float | None) -> tuple[tuple, tuple | None]:
    """The molecules' SMILES."""
    return _raw_parts(data.values, fraction, lambda values, indices: values[indices])


def _signal_parts(model: Model, data: Dataset, fraction: float | None) -> tuple[tuple, tuple | None]:
    """Recordings as they are (metrics read their spectrograms), with their labels."""
    labels = torch.from_numpy(data.labels) if data.labels is not None else None
    return _raw_parts(data.values, fraction, lambda values, indices: values[indices], labels)


def _table_parts(model: Model, data: Dataset, fraction: float | None) -> tuple[tuple, tuple | None]:
    """A table's rows."""
    return _raw_parts(model.codec.checked_frame(data.values).reset_index(drop=True), fraction,
                      lambda rows, indices: rows.iloc[indices].reset_index(drop=True))


EVALUATORS: dict[str, tuple[Callable[..., dict[str, float]], Callable[..., tuple]]] = {
    "text": (evaluate_text, _encoded_parts),
    "image": (evaluate_images, _encoded_parts),
    "table": (evaluate_table, _table_parts),
    "molecule": (evaluate_molecules, _molecule_parts),
    "signal": (evaluate_signals, _signal_parts),
}
# samples drawn where the caller asks for none: text's diversity compares a few whole texts; MOSES scores 10,000
SAMPLES = {"text": 20, "molecule": 10_000}


def _training_data(model: Model) -> Dataset | None:
    source = model.record.get("data", {}).get("source", {})
    return load_source(source) if "source" in source else None


def evaluate(model: Model | str | Path, data: Any = None, *, samples: int | None = None, seed: int = 0,
             save: bool = True,
             inception_weights: str | Path | None = None, target: str | None = None,
             protected: str | Sequence[str] = (), positive: Any = None, progress: bool = True) -> dict[str, float]:
    """Score `model` on `data` (all of it), or by default on the part of its training data it held out (a
    built-in data set with a test split of its own, MNIST's: on that);
    save the numbers into its run and report. Image features come from InceptionV3 when its weights file
    (pt_inception-2015-12-05-6726825d.pth) is given by `inception_weights` or $GENLOOM_INCEPTION_WEIGHTS.
    Tables: `target` (default: the one given to load_data) is the column the utility score predicts; a
    model fitted on an in-memory DataFrame is scored by passing that DataFrame again, split as fit split it
    (its training rows are the privacy reference); `protected` columns (["sex", "race"]) add the fairness of
    the utility classifier across their groups, for `positive` (default: the rarer of the target's two
    values). `model` may be a run folder."""
    if isinstance(model, (str, Path)):
        model = load(model)
    if not isinstance(model, Model):
        raise GenloomError(f"evaluate takes a Model or a run folder; got {type(model).__name__}")
    protected = [protected] if isinstance(protected, str) else list(protected)
    if protected and model.codec.kind != "table":
        raise GenloomError(f"protected columns are groups of table rows; this model makes {model.codec.kind} data")
    if positive is not None and not protected:
        raise GenloomError("positive names the class whose rates the protected groups compare; give the protected "
                           "columns too (protected=COLUMN; CLI: --protected COLUMN)")
    samples = whole_number("samples", SAMPLES.get(model.codec.kind, 20) if samples is None else samples,
                           2)  # diversity compares samples
    training = _training_data(model)
    if training is None and data is not None and model.codec.kind == "table":
        training, data = load_data(data), None  # the DataFrame it was fitted on: split it as fit did
    own = data is None
    if own and training is None:
        raise GenloomError("this model's training data is not on record (in-memory data or an imported "
                           "checkpoint): pass the data to evaluate on")
    data = training if own else load_data(data)
    if data.kind != model.codec.kind:
        raise GenloomError(f"cannot evaluate a model of {model.codec.kind} data on {data.kind} data")
    if data.kind not in EVALUATORS:
        raise GenloomError(f"no metrics for {data.kind} data yet; evaluate works on: {', '.join(EVALUATORS)}")
    evaluator, parts = EVALUATORS[data.kind]
    held_out = None if own else parts(model, data, None)[0]  # own data: its held-out part, below
    training_part = None
    if training is not None and training.kind == data.kind:
        training_part, training_held_out = parts(model, training, model.record["train"]["val_fraction"])
        if own and training.source.get("source") in HELD_OUT:  # a built-in's own test split (MNIST's)
            # read as the training data was (resampled, resized), not augmented as it was
            read_as = {key: training.source[key] for key in ("sample_rate", "image_size") if key in training.source}
            held_out = parts(model, load_source({**read_as, "source": HELD_OUT[training.source["source"]]}), None)[0]
        elif own:
            if training_held_out is None:
                raise GenloomError("this run trained on all of its data (val_fraction=0): pass held-out data to "
                                   "evaluate on")
            held_out = training_held_out
    saving = save and model.is_own_run()  # never into an imported checkpoint or an adapter
    options = {"image": {"inception_weights": inception_weights},
               "table": {"target": target or data.source.get("target")
                         or model.record["data"].get("source", {}).get("target"),
                         "figures_to": model.run_dir / "evaluation" if saving else None,
                         "protected": protected, "positive": positive},
               "molecule": {"figures_to": model.run_dir / "evaluation" if saving else None},
               "signal": {"figures_to": model.run_dir / "evaluation" if saving else None}}.get(data.kind, {})
    raw = evaluator(model, held_out, training_part, samples, seed, progress, **options)
    scores = {k: round(float(v), 4) for k, v in raw.items() if not math.isnan(v)}
    if saving:
        model.record["evaluation"] = scores
        model.write_record()
    return scores
