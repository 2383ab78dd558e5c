"""A statistical watermark for generated text (Kirchenbauer et al. 2023, "A Watermark for Large Language Models"):
at each step a key and the previous token pick a "green" share of the vocabulary, whose scores get a bias before
the draw; text with far more green tokens than chance is watermarked, which a one-sided z-test tells.

The green list follows Hugging Face's `WatermarkLogitsProcessor` ("lefthash": torch.randperm of the vocabulary
seeded with hash_key x token, its first green_fraction) with the token counted from 1, so that the token with
id 0 (a newline or space in a character vocabulary) does not get the same list under every key; the tests check
the lists against that processor. Written here rather than used from transformers because genloom's sampler
is its own (KV cache, batched streams) and detection needs only the lists."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

from ..errors import GenloomError

if TYPE_CHECKING:  # torch is imported where lists are made: the command line reads DEFAULT_THRESHOLD from here
    import torch

# gamma and delta: on 200-token generations of tiny Shakespeare (benchmarks/watermark.py) a bias of 1.5 is found
# in all of them at a 1% false-positive rate, in 96.5% after 10% of the tokens are replaced, and costs 7.6% in
# perplexity; the paper's 2.0 costs 15.5%
DEFAULT_GREEN_FRACTION, DEFAULT_BIAS = 0.25, 1.5
# z above which text counts as watermarked: a 1% false-positive rate by the normal tail (0.5% of human and of
# unmarked texts measured past it); the p-value beside it says how strong the evidence is
DEFAULT_THRESHOLD = 2.33


@dataclass(frozen=True)
class WatermarkVerdict:
    """What a detection found: green tokens among those scored, their z-score and one-sided p-value."""

    z_score: float
    p_value: float
    green: int
    scored: int
    watermarked: bool

    def describe(self) -> str:
        verdict = "watermarked" if self.watermarked else "not watermarked"
        return (f"{verdict}: z = {self.z_score:.2f}, p = {self.p_value:.2g} ({self.green} of {self.scored} "
                "distinct token pairs green)")


@dataclass(frozen=True)
class TextWatermark:
    """A key (any non-empty text), the share of the vocabulary that is green at each step, and the bias added to
    green tokens' scores (higher: easier to detect, further from the model's own distribution)."""

    key: str
    green_fraction: float = DEFAULT_GREEN_FRACTION
    bias: float = DEFAULT_BIAS

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise GenloomError("the watermark key is empty; give a non-empty text (the same one detects it)")
        if not 0 < self.green_fraction < 1:
            raise GenloomError(f"green_fraction must lie between 0 and 1; got {self.green_fraction}")

    @property
    def hash_key(self) -> int:
        """The key as the integer that seeds the green lists (the first 7 bytes of its SHA-256, odd)."""
        return int.from_bytes(hashlib.sha256(self.key.encode()).digest()[:7], "big") | 1

    def green_mask(self, previous: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """(B, vocab) True where a token is green after each row's previous token (B,)."""
        import torch

        mask = torch.zeros(len(previous), vocab_size, dtype=torch.bool)
        for row, token in enumerate(previous.tolist()):
            mask[row, green_list(self.hash_key, token, vocab_size, self.green_fraction)] = True
        return mask.to(previous.device)

    def tilt(self, scores: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """Scores (B, vocab) with the bias added to the tokens green after each row's previous token."""
        return scores + self.bias * self.green_mask(previous, scores.shape[-1]).to(scores.dtype)

    def detect(self, tokens: Sequence[int], vocab_size: int, threshold: float = DEFAULT_THRESHOLD) -> WatermarkVerdict:
        """Count the green (previous token, token) pairs and test that count against chance (green_fraction):
        z = (green - gamma T) / sqrt(T gamma (1 - gamma)) over the T distinct pairs. Each pair counts once, as
        Hugging Face's detector does with ignore_repeated_ngrams: text repeats its common pairs ("th", "e "),
        and a key that happens to make one green would otherwise lift every text's z (unmarked generations of
        tiny Shakespeare: 22% past the 1% threshold when every pair counted; benchmarks/watermark.py)."""
        tokens = [int(token) for token in tokens]
        pairs = set(zip(tokens, tokens[1:]))
        scored = len(pairs)
        if scored < 1:
            raise GenloomError("a watermark is read from two tokens at the least; give a longer text")
        green = sum(token in green_set(self.hash_key, previous, vocab_size, self.green_fraction)
                    for previous, token in pairs)
        gamma = self.green_fraction
        z = (green - gamma * scored) / math.sqrt(scored * gamma * (1 - gamma))
        return WatermarkVerdict(z, 0.5 * math.erfc(z / math.sqrt(2)), green, scored, z > threshold)


def watermark_of(key: str | None) -> TextWatermark | None:
    """The watermark a key asks for (the defaults' green fraction and bias); none without a key."""
    return None if key is None else TextWatermark(key)


@lru_cache(maxsize=65_536)
def green_list(hash_key: int, previous: int, vocab_size: int, green_fraction: float) -> torch.Tensor:
    """The green token ids after `previous`: the first green_fraction of a permutation seeded by the key and the
    token (counted from 1)."""
    import torch

    generator = torch.Generator().manual_seed(hash_key * (previous + 1) % (2 ** 64 - 1))
    return torch.randperm(vocab_size, generator=generator)[:int(vocab_size * green_fraction)]


@lru_cache(maxsize=65_536)
def green_set(hash_key: int, previous: int, vocab_size: int, green_fraction: float) -> frozenset[int]:
    return frozenset(green_list(hash_key, previous, vocab_size, green_fraction).tolist())
