import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genloom.data.table_layout import RowTokens, TableLayout
from genloom.data.text_layout import TextLayout
from genloom.errors import GenloomError
from genloom.layout import Layout, Span

SPANS = (Span("continuous", 1), Span("category", 3), Span("continuous", 1), Span("missing", 1))
LAYOUT = TableLayout((6,), spans=SPANS)


def _rows(n=1000):
    g = torch.Generator().manual_seed(0)
    first = torch.rand(n, 1, generator=g) * 2 - 1
    second = torch.where(torch.rand(n, 1, generator=g) < 0.5, torch.zeros(n, 1), torch.rand(n, 1, generator=g))
    categories = F.one_hot(torch.randint(3, (n,), generator=g), 3).float()
    return torch.cat([first, categories, second, torch.ones(n, 1)], 1)


def test_a_row_is_one_token_per_span_in_its_own_range():
    tokens = RowTokens(SPANS, bins=4)
    assert (tokens.length, tokens.vocab_size, tokens.offsets) == (4, 12, [0, 4, 7, 11])
    x = _rows()
    tokens.fit(x)
    encoded = tokens.encode(x)
    allowed = tokens.allowed(14)  # room for a start token and a class after the row's tokens
    assert encoded.shape == (1000, 4) and bool(allowed.gather(1, encoded.T).all())
    assert not allowed[:, 12:].any() and allowed.sum(1).tolist() == [4, 3, 4, 1]


def test_numbers_fall_into_equal_share_bins_and_come_back_within_them():
    tokens = RowTokens(SPANS, bins=4)
    x = _rows()
    tokens.fit(x)
    encoded = tokens.encode(x)
    assert torch.bincount(encoded[:, 0], minlength=4).tolist() == [250, 250, 250, 250]  # quartiles
    decoded = tokens.decode(encoded, torch.Generator().manual_seed(0))
    assert torch.equal(decoded[:, 1:4], x[:, 1:4]) and torch.equal(decoded[:, 5], x[:, 5])
    quartiles = np.quantile(x[:, 0].numpy(), [0, 0.25, 0.5, 0.75, 1])
    assert np.array_equal(np.digitize(decoded[:, 0].numpy(), quartiles[1:-1]), encoded[:, 0].numpy())
    assert (decoded[x[:, 4] == 0, 4] == 0).float().mean() > 0.9  # a spike at 0 is a bin of width 0


def test_each_kind_gets_its_tokeniser_and_a_kind_without_one_says_so():
    assert TextLayout((), vocab_size=10).tokens(16, 32) is None  # text is tokens already
    assert isinstance(LAYOUT.tokens(16, 32), RowTokens) and LAYOUT.tokens(16, 32).length == 4
    with pytest.raises(GenloomError, match="no tokenizer for signal data"):
        Layout("signal", (1, 100)).tokens(16, 32)
    with pytest.raises(GenloomError, match="no reconstruction likelihood for text data"):
        TextLayout((), vocab_size=10).reconstruction()


def test_nll_per_column_divides_by_the_row_length():
    assert RowTokens(SPANS, bins=4).likelihood_scores(torch.tensor([-8.0, -12.0]))["nll_per_column"] == 2.5


def test_spans_refuse_impossible_blocks():
    with pytest.raises(GenloomError, match="impossible table span 'continuous' of width 2"):
        Span("continuous", 2)
    with pytest.raises(GenloomError, match="impossible table span 'discrete'"):
        Span("discrete", 3)
    assert Span("category", 3).conditionable and Span("mode", 2).one_hot and not Span("mode", 2).conditionable


def test_table_reconstruction_is_gaussian_on_numbers_and_categorical_on_one_hots():
    import torch.nn.functional as F
    from torch.distributions import Normal

    layout = TableLayout((6,), spans=(Span("continuous", 1), Span("category", 3), Span("mode", 2)))
    recon = layout.reconstruction()
    torch.manual_seed(0)
    x = torch.tensor([[0.3, 0, 1, 0, 1, 0], [-0.5, 1, 0, 0, 0, 1]])
    output, log_scale = torch.randn(2, 6), torch.randn(6) * 0.1
    expected = (Normal(torch.tanh(output[:, 0]), log_scale[0].exp()).log_prob(x[:, 0])
                + F.log_softmax(output[:, 1:4], 1)[[0, 1], [1, 0]] + F.log_softmax(output[:, 4:], 1)[[0, 1], [0, 1]])
    torch.testing.assert_close(recon.log_prob(x, output, log_scale), expected)
    mean = recon.mean(output)
    torch.testing.assert_close(mean[:, 1:4].sum(1), torch.ones(2))
    drawn = recon.sample(output.repeat(500, 1), torch.Generator().manual_seed(0))
    assert set(drawn[:, 1:4].sum(1).tolist()) == {1.0}  # one-hot draws
    share = drawn[0::2, 1:4].mean(0)
    torch.testing.assert_close(share, F.softmax(output[0, 1:4], 0), atol=0.06, rtol=0)

