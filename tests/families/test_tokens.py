import numpy as np
import torch
import torch.nn.functional as F

from genloom.data import Layout
from genloom.families.tokens import RowTokens, tokens_for

LAYOUT = Layout("table", (6,), spans=(("continuous", 1), ("category", 3), ("continuous", 1), ("missing", 1)))


def _rows(n=1000):
    g = torch.Generator().manual_seed(0)
    first = torch.rand(n, 1, generator=g) * 2 - 1
    second = torch.where(torch.rand(n, 1, generator=g) < 0.5, torch.zeros(n, 1), torch.rand(n, 1, generator=g))
    categories = F.one_hot(torch.randint(3, (n,), generator=g), 3).float()
    return torch.cat([first, categories, second, torch.ones(n, 1)], 1)


def test_a_row_is_one_token_per_span_in_its_own_range():
    tokens = RowTokens(LAYOUT, bins=4)
    assert (tokens.length, tokens.vocab_size, tokens.offsets) == (4, 12, [0, 4, 7, 11])
    x = _rows()
    tokens.fit(x)
    encoded = tokens.encode(x)
    allowed = tokens.allowed(14)  # room for a start token and a class after the row's tokens
    assert encoded.shape == (1000, 4) and bool(allowed.gather(1, encoded.T).all())
    assert not allowed[:, 12:].any() and allowed.sum(1).tolist() == [4, 3, 4, 1]


def test_numbers_fall_into_equal_share_bins_and_come_back_within_them():
    tokens = RowTokens(LAYOUT, bins=4)
    x = _rows()
    tokens.fit(x)
    encoded = tokens.encode(x)
    assert torch.bincount(encoded[:, 0], minlength=4).tolist() == [250, 250, 250, 250]  # quartiles
    decoded = tokens.decode(encoded, torch.Generator().manual_seed(0))
    assert torch.equal(decoded[:, 1:4], x[:, 1:4]) and torch.equal(decoded[:, 5], x[:, 5])
    quartiles = np.quantile(x[:, 0].numpy(), [0, 0.25, 0.5, 0.75, 1])
    assert np.array_equal(np.digitize(decoded[:, 0].numpy(), quartiles[1:-1]), encoded[:, 0].numpy())
    assert (decoded[x[:, 4] == 0, 4] == 0).float().mean() > 0.9  # a spike at 0 is a bin of width 0


def test_each_kind_gets_its_tokeniser():
    assert tokens_for(Layout("sequence", (), vocab_size=10), 16, 32) is None
    assert tokens_for(Layout("image", (1, 8, 8)), 16, 32).length == 64
    assert isinstance(tokens_for(LAYOUT, 16, 32), RowTokens)
