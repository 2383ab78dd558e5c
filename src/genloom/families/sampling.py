"""Next-token sampling: repetition penalty, temperature, top-k and top-p, in Hugging Face's order and with
its semantics, so the same settings mean the same thing in both."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .configs import TokenSampling

if TYPE_CHECKING:
    from .watermark import TextWatermark


def penalise_repetition(scores: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    """Divide positive (multiply negative) scores of tokens already present by `penalty`."""
    if penalty == 1.0 or previous.numel() == 0:
        return scores
    seen = scores.gather(1, previous)
    return scores.scatter(1, previous, torch.where(seen < 0, seen * penalty, seen / penalty))


def keep_top_k(scores: torch.Tensor, k: int | None) -> torch.Tensor:
    if k is None or k >= scores.shape[-1]:
        return scores
    threshold = torch.topk(scores, k, dim=-1).values[..., -1:]
    return scores.masked_fill(scores < threshold, -float("inf"))


def keep_top_p(scores: torch.Tensor, p: float) -> torch.Tensor:
    if p >= 1.0:
        return scores
    sorted_scores, order = torch.sort(scores, descending=False)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= 1 - p
    remove[..., -1:] = False  # always keep the most likely token
    return scores.masked_fill(remove.scatter(1, order, remove), -float("inf"))


def keep_above_epsilon(scores: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Drop the tokens whose probability is below epsilon, never the most likely one."""
    if epsilon <= 0:
        return scores
    unlikely = scores.softmax(dim=-1) < epsilon
    unlikely.scatter_(1, scores.argmax(dim=-1, keepdim=True), False)
    return scores.masked_fill(unlikely, -float("inf"))


def next_token_scores(logits: torch.Tensor, previous: torch.Tensor, config: TokenSampling) -> torch.Tensor:
    """Processed scores (B, vocab) for the next token, given the tokens so far (B, T)."""
    scores = penalise_repetition(logits.float(), previous, config.repetition_penalty)
    if config.temperature not in (0, 1):
        scores = scores / config.temperature
    return keep_above_epsilon(keep_top_p(keep_top_k(scores, config.top_k), config.top_p), config.epsilon)


def choose_next(scores: torch.Tensor, config: TokenSampling, generator: torch.Generator) -> torch.Tensor:
    """Greedy at temperature 0, else a draw from softmax(scores) with a CPU generator (same on every device).

    The draw inverts the cumulative distribution with one uniform number per row: torch.multinomial draws an
    exponential for every token of every row, which for a batch of table rows cost a sixth of sampling."""
    if config.temperature == 0:
        return scores.argmax(dim=-1)
    cumulative = scores.softmax(dim=-1).cpu().cumsum(dim=-1)
    total = cumulative[:, -1:].contiguous()  # (B, 1); searchsorted copies a strided one, and warns
    uniform = torch.rand(len(cumulative), 1, generator=generator, dtype=cumulative.dtype) * total
    token = torch.searchsorted(cumulative, uniform, right=True)
    # rounding may put the draw on the total, past every token: take the first token at which the sum reaches it,
    # which has a probability above 0 (the tokens after it may have none); a row with no finite scores (a diverged
    # model's NaN) takes the last token, not an index past the vocabulary
    reaches_total = torch.searchsorted(cumulative, total).clamp_max(cumulative.shape[-1] - 1)
    return torch.minimum(token, reaches_total).squeeze(1).to(scores.device)


def draw_next(logits: torch.Tensor, history: torch.Tensor, sampling: TokenSampling, generator: torch.Generator,
              watermark: TextWatermark | None = None) -> torch.Tensor:
    """(B,) next tokens from logits (B, vocab) after the rows' tokens `history` (B, T); with a `watermark`, each
    draw tilted toward the green list the row's last token keys."""
    scores = next_token_scores(logits, history, sampling)
    if watermark is not None:
        scores = watermark.tilt(scores, history[:, -1])
    return choose_next(scores, sampling, generator)
