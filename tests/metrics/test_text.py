import ast
import inspect
import math
import random

import numpy as np
import pytest

from genloom.metrics import text
from genloom.metrics.text import (
    bits_per_token,
    distinct_n,
    longest_copied_span,
    longest_copied_spans,
    perplexity,
    self_bleu,
    text_sample_metrics,
)


def test_perplexity_and_bits():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(50)) == pytest.approx(50)
    assert perplexity(1000.0) == math.inf
    assert bits_per_token(math.log(256)) == pytest.approx(8)
    assert bits_per_token(0.0) == 0.0


def test_distinct_n_by_hand():
    assert distinct_n([["a", "b", "a", "b"]], 1) == 0.5
    assert distinct_n([["a", "b", "a", "b"]], 2) == pytest.approx(2 / 3)
    assert distinct_n([["a", "b"], ["a", "c"]], 1) == 0.75  # distinct counts across samples
    assert distinct_n([["a", "b"], ["a", "c"]], 2) == 1.0
    assert distinct_n(["aaaa"], 2) == pytest.approx(1 / 3)  # a str is a sequence of characters
    assert distinct_n(["ab"], 3) == 0.0 and distinct_n([], 1) == 0.0


def test_self_bleu_of_identical_and_disjoint_samples():
    assert self_bleu(["the cat sat on the mat".split()] * 3) == pytest.approx(1.0)
    disjoint = [[f"{prefix}{i}" for i in range(8)] for prefix in "abc"]
    assert self_bleu(disjoint) == 0.0
    assert 0 < self_bleu(disjoint + [["a0", "z", "z", "z"]]) < 0.05


def test_self_bleu_needs_two_samples_and_caps_their_number():
    with pytest.raises(ValueError, match="at least 2 samples"):
        self_bleu([["one", "sample"]])
    with pytest.raises(ValueError, match="at least 2 samples"):
        self_bleu([["a"], ["b"]], max_samples=1)
    texts = [["a", "b", "c"], ["a", "b", "d"], ["a", "b", "c"]]
    assert self_bleu(texts, max_samples=2) == self_bleu(texts[:2]) < self_bleu(texts, max_samples=None)


def _nltk_self_bleu(texts, max_n):
    # Imported here, not skipped: CI must really compare (nltk is a dev dependency).
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    smoothing = SmoothingFunction().method1
    scores = [sentence_bleu(texts[:i] + texts[i + 1:], hyp, weights=(1 / max_n,) * max_n, smoothing_function=smoothing)
              for i, hyp in enumerate(texts)]
    return sum(scores) / len(scores)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("max_n", [1, 2, 3, 4, 5])
def test_self_bleu_matches_nltk(seed, max_n):
    rng = random.Random(seed)
    vocab = ["the", "cat", "dog", "sat", "on", "mat", "a", "ran"]
    words = [[rng.choice(vocab) for _ in range(rng.randint(1, 14))] for _ in range(rng.randint(2, 9))]
    words.append([])  # an empty sample scores 0 and is a reference of length 0
    chars = ["".join(rng.choice("abc ") for _ in range(rng.randint(1, 30))) for _ in range(5)]
    for texts in (words, chars):
        assert abs(self_bleu(texts, max_n) - _nltk_self_bleu(texts, max_n)) < 1e-9


def test_longest_copied_span_known_answers():
    assert longest_copied_span("xxhello worldyy", "say hello world!") == (11, "hello world")
    assert longest_copied_span("abcabe", "abcabd abcabe") == (6, "abcabe")  # resumes past a shorter match
    assert longest_copied_span("abXcd", "ab cd") == (2, "ab")  # the first of equally long spans
    assert longest_copied_span("abc", "xyz") == (0, "")
    assert longest_copied_span("", "xyz") == (0, "")
    assert longest_copied_span("xxhello", "hello", min_report=5) == (5, "hello")
    assert longest_copied_span("xxhello", "hello", min_report=6) == (0, "")
    assert longest_copied_spans(["hello", "help", "q"], "hello") == [5, 3, 0]


def _letters(rng: np.random.Generator, size: int) -> str:
    return rng.integers(ord("a"), ord("z") + 1, size, dtype=np.uint8).tobytes().decode()


def test_longest_copied_span_finds_a_planted_span_in_a_megabyte():
    rng = np.random.default_rng(0)
    training = _letters(rng, 1_000_000)
    start = 654_321
    span = training[start:start + 50]
    before, after = list(_letters(rng, 300)), list(_letters(rng, 300))
    # Neighbours that differ from the training text's, so the copy is exactly 50 long.
    before[-1] = "b" if training[start - 1] == "a" else "a"
    after[0] = "b" if training[start + 50] == "a" else "a"
    assert longest_copied_span("".join(before) + span + "".join(after), training) == (50, span)


def test_text_sample_metrics_words_and_characters():
    samples, training = ["the cat sat", "the dog sat", "a cat ran"], "the cat sat on the mat"
    metrics = text_sample_metrics(samples, training)
    assert metrics["distinct_1"] == pytest.approx(6 / 9) and metrics["distinct_2"] == 1.0
    assert metrics["self_bleu"] == self_bleu([sample.split() for sample in samples])
    assert metrics["longest_copy_max"] == 11 and metrics["longest_copy_mean"] == pytest.approx((11 + 4 + 5) / 3)
    chars = text_sample_metrics(samples, training, word_level=False)
    assert chars["distinct_1"] == distinct_n(samples, 1) and chars["self_bleu"] == self_bleu(samples)


def test_text_metrics_import_no_framework():
    tree = ast.parse(inspect.getsource(text))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in names if name.split(".")[0] in ("torch", "pandas", "PIL")}
