import torch
import torch.nn.functional as F

from genloom.data.table_conditions import CategoryConditions
from genloom.data.table_layout import TableLayout
from genloom.layout import Span

# a number (value + 2 modes), a 3-category column and a 2-category column
SPANS = (Span("continuous", 1), Span("mode", 2), Span("category", 3), Span("category", 2))


def _rows(n=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    first = torch.multinomial(torch.tensor([0.90, 0.09, 0.01]), n, replacement=True, generator=g)
    second = torch.multinomial(torch.tensor([0.5, 0.5]), n, replacement=True, generator=g)
    modes = F.one_hot(torch.randint(2, (n,), generator=g), 2).float()
    return torch.cat([torch.rand(n, 1, generator=g), modes, F.one_hot(first, 3).float(), F.one_hot(second, 2).float()], 1)


def test_only_category_spans_are_conditioned():
    conditions = CategoryConditions(SPANS)
    assert conditions.width == 5 and conditions.positions.tolist() == [3, 4, 5, 6, 7]


def test_training_by_sampling_weights_give_log_frequency_categories():
    x = _rows()
    conditions = CategoryConditions(SPANS)
    weights = conditions.fit(x)
    counts = x[:, 3:].sum(0)
    assert torch.equal(conditions.counts, counts)
    # a column drawn at random, then a category by log-frequency: the share of rows holding category k of the
    # first column is 1/2 * log(1+n_k)/sum log(1+n) from that column, plus its share among rows picked via the other
    share = (weights[:, None] * x[:, 3:6]).sum(0) / weights.sum()
    log_frequency = torch.log1p(counts[:3]) / torch.log1p(counts[:3]).sum()
    expected = 0.5 * log_frequency + 0.5 * counts[:3] / counts[:3].sum()
    torch.testing.assert_close(share, expected, rtol=1e-4, atol=1e-6)
    assert share[2] > 5 * counts[2] / len(x)  # the rare category is seen far more often than its 1%


def test_conditions_for_rows_name_their_own_categories_and_draws_follow_the_data():
    x = _rows()
    conditions = CategoryConditions(SPANS)
    conditions.fit(x)
    chosen = conditions.for_rows(x)
    assert torch.equal(chosen.sum(1), torch.ones(len(x))) and bool((chosen <= x[:, 3:]).all())
    drawn = conditions.draw(20_000, torch.Generator().manual_seed(0))
    expected = torch.cat([x[:, 3:6].mean(0), x[:, 6:].mean(0)]) / 2
    torch.testing.assert_close(drawn.mean(0), expected, atol=0.01, rtol=0)


def test_condition_loss_is_the_cross_entropy_of_the_asked_span():
    conditions = CategoryConditions(SPANS)
    output = torch.randn(4, 8)
    asked = F.one_hot(torch.tensor([0, 2, 3, 4]), 5).float()  # first column's 0 and 2, second column's 0 and 1
    expected = torch.stack([F.cross_entropy(output[0:1, 3:6], torch.tensor([0])),
                            F.cross_entropy(output[1:2, 3:6], torch.tensor([2])),
                            F.cross_entropy(output[2:3, 6:8], torch.tensor([0])),
                            F.cross_entropy(output[3:4, 6:8], torch.tensor([1]))])
    torch.testing.assert_close(conditions.cross_entropy(output, asked), expected)


def test_a_table_without_categories_has_no_conditions():
    assert TableLayout((8,), spans=SPANS).category_conditions().width == 5
    assert TableLayout((3,), spans=(Span("continuous", 1), Span("mode", 2))).category_conditions() is None
