"""`evaluate`: the metrics of a trained model for its data kind, stored in the run and shown in its report."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from .data import Dataset, load_data
from .errors import GenloomError
from .metrics.report import write_model_card, write_report
from .metrics.text import bits_per_token, perplexity, text_sample_metrics
from .model import Model
from .train import METRICS_FILE, read_metrics
from .train.batches import split_validation

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


def evaluate_text(model: Model, data: Dataset, samples: int, seed: int) -> dict[str, float]:
    """Held-out loss, perplexity and bits per character on the corpus' tail; diversity and copying of samples."""
    tokens = model.codec.encode(data.values)
    (train_tokens, _), held_out = split_validation(tokens, None, model.record["train"]["val_fraction"] or 0.1)
    loss = _held_out_loss(model, held_out[0])
    characters_per_token = len(model.codec.decode(held_out[0])) / len(held_out[0])
    texts = model.sample(samples, seed=seed)
    training_text = model.codec.decode(train_tokens)
    return {"held_out_loss": loss, "perplexity": perplexity(loss),
            "bits_per_character": bits_per_token(loss) / characters_per_token,
            **text_sample_metrics(texts, training_text, word_level=True)}


def evaluate_examples(model: Model, data: Dataset, samples: int, seed: int) -> dict[str, float]:
    """The family's own held-out numbers (the ELBO of a VAE) on the run's validation split."""
    x = model.codec.encode(data.values)
    labels = torch.from_numpy(data.labels) if model.ema_net.conditional and data.labels is not None else None
    _, held_out = split_validation(x, labels, model.record["train"]["val_fraction"] or 0.1)
    x, labels = held_out
    device = next(model.ema_net.parameters()).device
    with torch.no_grad():
        return model.ema_net.eval().evaluate(x.to(device), labels.to(device) if labels is not None else None)


EVALUATORS: dict[str, Callable[[Model, Dataset, int, int], dict[str, float]]] = {
    "text": evaluate_text,
    "images": evaluate_examples,
}


def evaluate(model: Model, data: Any = None, *, samples: int = 20, seed: int = 0, save: bool = True) -> dict[str, float]:
    """Score `model` on `data` (default: the data it was trained on, from its record); save into its run."""
    if data is None:
        source = model.record.get("data", {}).get("source", {})
        if "source" not in source:
            raise GenloomError("this run was trained on in-memory data: pass the data to evaluate on")
        data = load_data(source["source"], **{k: v for k, v in source.items() if k != "source" and v is not None})
    data = load_data(data)
    if samples < 2:
        raise GenloomError(f"samples must be at least 2 (diversity compares samples); got {samples}")
    evaluator = EVALUATORS.get(data.kind)
    if evaluator is None or data.kind != model.codec.name:
        raise GenloomError(f"cannot evaluate a model of {model.codec.name} on {data.kind} data")
    scores = {k: round(float(v), 4) for k, v in evaluator(model, data, samples, seed).items() if not math.isnan(v)}
    if save and model.run_dir is not None:
        model.record["evaluation"] = scores
        model._write_config()
        write_report(model.run_dir, model.record, read_metrics(model.run_dir / METRICS_FILE))
        write_model_card(model.run_dir, model.record)
    return scores
