"""Metrics for text samples: loss in readable units, diversity (distinct-n, self-BLEU), copying of training text."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence

# Texygen's self-BLEU smooths with nltk's SmoothingFunction().method1: 0.1 matches where an order has none.
_EPSILON = 0.1


def perplexity(mean_loss_nats: float) -> float:
    """exp(loss): how many tokens the model is choosing between on average; inf for a diverged loss."""
    try:
        return math.exp(mean_loss_nats)
    except OverflowError:
        return math.inf


def bits_per_token(mean_loss_nats: float) -> float:
    """The loss in bits; for a character model this is bits per character, comparable with compressors."""
    return mean_loss_nats / math.log(2)


def _ngrams(tokens: Sequence[str], n: int) -> Iterator[tuple[str, ...]]:
    return zip(*(tokens[k:] for k in range(n)))


def distinct_n(texts: Sequence[Sequence[str]], n: int) -> float:
    """Distinct n-grams over all n-grams of all samples (Li et al. 2016); low means repetitive samples.

    A sample is a sequence of tokens: a list of words, or a str for characters. 0.0 when there are no n-grams.
    """
    if n < 1:
        raise ValueError(f"distinct_n needs n >= 1, got {n}")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for tokens in texts:
        grams = list(_ngrams(tokens, n))
        seen.update(grams)
        total += len(grams)
    return len(seen) / total if total else 0.0


def _bleu(matches: list[int], totals: list[int], hyp_len: int, ref_len: int) -> float:
    """Sentence BLEU from clipped matches and n-gram totals per order, as nltk computes it with method1."""
    if matches[0] == 0:
        return 0.0
    weight = 1 / len(matches)
    log_precisions = [weight * math.log((m if m else _EPSILON) / t) for m, t in zip(matches, totals)]
    penalty = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return penalty * math.exp(math.fsum(log_precisions))


def self_bleu(texts: Sequence[Sequence[str]], max_n: int = 4, max_samples: int | None = 200) -> float:
    """Mean BLEU of each sample against all the others (Zhu et al. 2018, Texygen); high means the samples look alike.

    Equal to averaging nltk's sentence_bleu(others, sample, smoothing_function=SmoothingFunction().method1) with
    uniform weights over 1..max_n. Only the first `max_samples` samples are used (None: all): more samples mean
    more references and a higher score, so a fixed number keeps runs comparable and the cost bounded.
    """
    texts = list(texts if max_samples is None else texts[:max_samples])
    if len(texts) < 2:
        raise ValueError(f"self_bleu needs at least 2 samples to compare, got {len(texts)}")
    if max_n < 1:
        raise ValueError(f"self_bleu needs max_n >= 1, got {max_n}")
    matches: list[list[int]] = [[] for _ in texts]
    totals: list[list[int]] = [[] for _ in texts]
    for n in range(1, max_n + 1):
        counts = [Counter(_ngrams(tokens, n)) for tokens in texts]
        # Each n-gram's two largest counts and the owner of the largest give its max over "all the others"
        # for every sample in one pass, instead of re-counting the references once per sample.
        top: dict[tuple[str, ...], tuple[int, int, int]] = {}
        for i, grams in enumerate(counts):
            for gram, count in grams.items():
                first, owner, second = top.get(gram, (0, -1, 0))
                if count > first:
                    top[gram] = (count, i, first)
                elif count > second:
                    top[gram] = (first, owner, count)
        for i, grams in enumerate(counts):
            clipped = 0
            for gram, count in grams.items():
                first, owner, second = top[gram]
                clipped += min(count, second if owner == i else first)
            matches[i].append(clipped)
            totals[i].append(max(1, sum(grams.values())))
    lengths = [len(tokens) for tokens in texts]
    scores = []
    for i, hyp_len in enumerate(lengths):
        # The closest reference length, the shorter one on a tie, as in nltk.
        ref_len = min((r for j, r in enumerate(lengths) if j != i), key=lambda r: (abs(r - hyp_len), r))
        scores.append(_bleu(matches[i], totals[i], hyp_len, ref_len))
    return sum(scores) / len(scores)


def longest_copied_span(sample: str, training_text: str, min_report: int = 0) -> tuple[int, str]:
    """Length and text of the longest substring of `sample` found verbatim in `training_text`: memorisation.

    Spans shorter than `min_report` count as no copy, (0, ""), and are never searched for, which saves time.
    Greedy: the best length only grows, so each start costs one failed `find`, about len(sample) scans of the
    training text in all (roughly 0.4 ms per sample character per MB of training text).
    """
    best, start = max(min_report, 1) - 1, -1
    for i in range(len(sample)):
        # The longer window can occur no earlier than the shorter one it starts with, so the search resumes there.
        found = 0
        while i + best < len(sample):
            found = training_text.find(sample[i:i + best + 1], found)
            if found < 0:
                break
            best, start = best + 1, i
    return (best, sample[start:start + best]) if start >= 0 else (0, "")


def longest_copied_spans(samples: Sequence[str], training_text: str, min_report: int = 0) -> list[int]:
    """The longest copied span's length for each sample."""
    return [longest_copied_span(sample, training_text, min_report)[0] for sample in samples]


def text_sample_metrics(samples: Sequence[str], training_text: str, *, word_level: bool = True) -> dict[str, float]:
    """Diversity over words (split on whitespace) or characters, and copying over characters; needs 2+ samples."""
    texts = [sample.split() for sample in samples] if word_level else list(samples)
    diversity = {"distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2), "self_bleu": self_bleu(texts)}
    copies = longest_copied_spans(samples, training_text)  # after self_bleu, which rejects too few samples cheaply
    return {**diversity, "longest_copy_max": float(max(copies)), "longest_copy_mean": sum(copies) / len(copies)}
