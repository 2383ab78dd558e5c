"""The text watermark: green lists as Hugging Face's processor makes them, the z-test, and text generated with a
key found by that key only."""
import math

import pytest
import torch
from scipy.stats import norm
from transformers.generation.logits_process import WatermarkLogitsProcessor

import genloom as gl
from genloom.errors import GenloomError
from genloom.families.watermark import TextWatermark, green_list

VOCAB = 65


@pytest.mark.parametrize("green_fraction, bias", [(0.25, 2.0), (0.5, 1.0)])
def test_green_lists_and_the_bias_are_hugging_faces_with_tokens_counted_from_one(green_fraction, bias):
    watermark = TextWatermark("secret", green_fraction, bias)
    reference = WatermarkLogitsProcessor(VOCAB, "cpu", greenlist_ratio=green_fraction, bias=bias,
                                         hashing_key=watermark.hash_key)
    previous = torch.tensor([0, 1, 7, 64])
    ours = watermark.tilt(torch.zeros(len(previous), VOCAB), previous)
    theirs = reference(previous.view(-1, 1) + 1, torch.zeros(len(previous), VOCAB))
    assert torch.equal(ours, theirs)
    assert (ours > 0).sum(1).tolist() == [int(VOCAB * green_fraction)] * len(previous)


def test_lists_depend_on_the_key_and_the_previous_token_including_token_zero():
    first, other = TextWatermark("a").hash_key, TextWatermark("b").hash_key
    assert not torch.equal(green_list(first, 0, VOCAB, 0.25), green_list(other, 0, VOCAB, 0.25))
    assert not torch.equal(green_list(first, 0, VOCAB, 0.25), green_list(first, 1, VOCAB, 0.25))


def _all_green(watermark: TextWatermark, length: int) -> list[int]:
    tokens = [3]
    for step in range(length - 1):
        green = green_list(watermark.hash_key, tokens[-1], VOCAB, watermark.green_fraction)
        tokens.append(int(green[step % len(green)]))
    return tokens


def test_the_z_test_counts_distinct_green_pairs_against_chance():
    watermark = TextWatermark("secret")
    tokens = _all_green(watermark, 101)
    pairs = len(set(zip(tokens, tokens[1:])))
    verdict = watermark.detect(tokens, VOCAB)
    # every scored pair green: z = (T - T / 4) / sqrt(T * 0.25 * 0.75)
    assert verdict.green == verdict.scored == pairs > 80
    assert verdict.z_score == pytest.approx(0.75 * pairs / math.sqrt(pairs * 0.1875))
    # a pair repeated counts once: a text of one green pair over and over is one pair, not a hundred
    assert watermark.detect(tokens[:2] * 50, VOCAB).scored == 2  # (a, b) and (b, a)
    assert verdict.p_value == pytest.approx(norm.sf(verdict.z_score), rel=1e-6) and verdict.watermarked
    # random tokens: about a quarter green, no verdict
    tokens = torch.randint(VOCAB, (2000,), generator=torch.Generator().manual_seed(0)).tolist()
    chance = watermark.detect(tokens, VOCAB)
    assert abs(chance.z_score) < 3 and not chance.watermarked
    assert chance.p_value == pytest.approx(norm.sf(chance.z_score), rel=1e-6)


def test_bad_keys_and_texts_too_short_are_refused():
    with pytest.raises(GenloomError, match="the watermark key is empty"):
        TextWatermark("")
    with pytest.raises(GenloomError, match="two tokens at the least"):
        TextWatermark("k").detect([1], VOCAB)


def test_generated_text_carries_the_mark_its_key_finds_and_no_other(text_run):
    model = gl.load(text_run)
    marked = model.generate("", max_tokens=200, seed=1, watermark="secret")
    plain = model.generate("", max_tokens=200, seed=1)
    assert model.detect_watermark(marked, "secret").watermarked
    assert model.detect_watermark(marked, "secret").z_score > model.detect_watermark(plain, "secret").z_score + 4
    assert not model.detect_watermark(plain, "secret").watermarked
    assert not model.detect_watermark(marked, "another key").watermarked  # a verdict, not an error
    streams = model.generate_many(["", ""], max_tokens=[200, 200], stops=[(), ()], seed=2, watermark="secret")
    assert all(model.detect_watermark("".join(stream), "secret").watermarked for stream in streams)
