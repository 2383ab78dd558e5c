"""Our logits processing against transformers' processors on the same scores."""
import pytest
import torch
from transformers.generation.logits_process import (EpsilonLogitsWarper, RepetitionPenaltyLogitsProcessor,
                                                    TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

from genloom.errors import GenloomError
from genloom.families.configs import TokenSampling
from genloom.families.sampling import choose_next, next_token_scores


@pytest.mark.parametrize("temperature, top_k, top_p, penalty", [
    (1.0, None, 1.0, 1.0), (0.7, 5, 1.0, 1.0), (1.3, None, 0.8, 1.0), (0.9, 10, 0.5, 1.3), (1.0, 3, 0.95, 0.8),
])
def test_matches_transformers_processors(temperature, top_k, top_p, penalty):
    torch.manual_seed(0)
    logits, previous = torch.randn(4, 40) * 3, torch.randint(40, (4, 7))
    ours = next_token_scores(logits, previous, TokenSampling(temperature, top_k, top_p, penalty))
    theirs = RepetitionPenaltyLogitsProcessor(penalty)(previous, logits.clone())
    theirs = TemperatureLogitsWarper(temperature)(previous, theirs)
    if top_k:
        theirs = TopKLogitsWarper(top_k)(previous, theirs)
    if top_p < 1:
        theirs = TopPLogitsWarper(top_p)(previous, theirs)
    assert torch.equal(torch.isinf(ours), torch.isinf(theirs))
    assert torch.allclose(ours[~torch.isinf(ours)], theirs[~torch.isinf(theirs)], atol=1e-6)


@pytest.mark.parametrize("temperature, top_p, epsilon", [(1.0, 1.0, 3e-3), (0.8, 1.0, 0.02), (1.2, 0.9, 1e-2),
                                                         (1.0, 1.0, 0.9)])
def test_epsilon_matches_transformers(temperature, top_p, epsilon):
    """Epsilon sampling after temperature and top-p, as transformers orders its warpers; a cut above every
    token's probability still keeps the likeliest."""
    torch.manual_seed(1)
    logits, previous = torch.randn(6, 30) * 3, torch.randint(30, (6, 4))
    ours = next_token_scores(logits, previous, TokenSampling(temperature, top_p=top_p, epsilon=epsilon))
    theirs = TemperatureLogitsWarper(temperature)(previous, logits.clone())
    if top_p < 1:
        theirs = TopPLogitsWarper(top_p)(previous, theirs)
    theirs = EpsilonLogitsWarper(epsilon)(previous, theirs)
    assert torch.equal(torch.isinf(ours), torch.isinf(theirs)) and torch.isinf(ours).any()
    assert torch.allclose(ours[~torch.isinf(ours)], theirs[~torch.isinf(theirs)], atol=1e-6)


def test_greedy_and_seeded_draws():
    scores = torch.tensor([[0.0, 3.0, 1.0], [5.0, 0.0, 0.0]])
    assert choose_next(scores, TokenSampling(temperature=0), torch.Generator()).tolist() == [1, 0]
    draw = lambda seed: choose_next(scores, TokenSampling(), torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.equal(draw(3), draw(3))


def test_draws_follow_the_distribution_and_never_take_a_masked_token():
    """200,000 draws of a row with masked tokens (as a table column's), against its probabilities: a chi-square
    test at the 0.1% level, and nothing drawn where the probability is zero."""
    from scipy.stats import chisquare

    scores = torch.tensor([[-float("inf"), 0.5, 2.0, -float("inf"), 1.0, -1.0, -float("inf")]])
    probabilities = scores.softmax(dim=-1)[0]
    draws = choose_next(scores.expand(200_000, -1), TokenSampling(), torch.Generator().manual_seed(0))
    counts = torch.bincount(draws, minlength=scores.shape[1])
    assert counts[probabilities == 0].sum() == 0
    possible = probabilities > 0
    expected = probabilities[possible].double() / probabilities[possible].double().sum() * len(draws)
    assert chisquare(counts[possible].double().numpy(), expected.numpy()).pvalue > 1e-3


def test_a_draw_at_the_top_of_the_cumulative_sum_takes_the_last_possible_token(monkeypatch):
    """A uniform number that rounds onto the total falls past the last token: the last drawable one is taken,
    in every row of a batch."""
    monkeypatch.setattr(torch, "rand", lambda *shape, generator=None, dtype=None: torch.ones(*shape, dtype=dtype))
    scores = torch.tensor([[1.0, 2.0, -float("inf")], [1.0, -float("inf"), -float("inf")], [1.0, 2.0, 3.0]])
    assert choose_next(scores, TokenSampling(), torch.Generator()).tolist() == [1, 0, 2]


def test_a_row_without_finite_scores_still_draws_a_token_of_the_vocabulary():
    """A diverged model's NaN (or a row masked to -inf everywhere) must not index past the vocabulary."""
    scores = torch.tensor([[float("nan")] * 4, [-float("inf")] * 4, [0.0, 1.0, 2.0, 3.0]])
    drawn = choose_next(scores, TokenSampling(), torch.Generator().manual_seed(0))
    assert drawn.shape == (3,) and bool(((drawn >= 0) & (drawn < 4)).all())


@pytest.mark.parametrize("options, message", [
    ({"temperature": -0.1}, "temperature must be at least 0; got -0.1"),
    ({"top_p": 0.0}, r"top_p must lie in \(0, 1\]"),
    ({"top_p": 1.5}, r"top_p must lie in \(0, 1\]"),
    ({"top_k": 0}, "top_k must be at least 1"),
    ({"top_k": 2.5}, "top_k must be a whole number; got 2.5"),
    ({"repetition_penalty": 0}, "repetition_penalty must be greater than 0"),
    ({"temperature": "hot"}, "temperature must be a finite number; got 'hot'"),
])
def test_impossible_settings(options, message):
    with pytest.raises(GenloomError, match=message):
        TokenSampling(**options)
