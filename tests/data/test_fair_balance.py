import numpy as np
import pandas as pd
import pytest

import genloom as gl
from genloom.data.fair_balance import balance_request, balanced_rows, whole_counts
from genloom.data.table_codec import TabularCodec
from genloom.errors import GenloomError

SHARES = {"F": 0.3, "M": 0.7}


def biased_draw(rates):
    """A stand-in for a model: rows whose share of income 'high' is rates[sex], drawn from the seed."""
    def draw(size, seed, given):
        rng = np.random.default_rng(seed)
        sex = rng.choice(list(SHARES), size, p=list(SHARES.values()))
        high = rng.random(size) < pd.Series(sex).map(rates).to_numpy()
        return pd.DataFrame({"sex": sex, "x": rng.normal(size=size), "income": np.where(high, "high", "low")})
    return draw


@pytest.fixture(scope="module")
def codec():
    return TabularCodec().fit(gl.load_data(biased_draw({"F": 0.1, "M": 0.6})(300, 0, [])))


def rates_by_group(rows):
    return (rows.income == "high").groupby(rows.sex).mean()


def test_every_group_gets_the_overall_positive_rate_and_keeps_its_share(codec):
    draw = biased_draw({"F": 0.1, "M": 0.6})
    plain = draw(4000, 1, [])
    assert rates_by_group(plain).max() - rates_by_group(plain).min() > 0.45  # the bias the stand-in makes
    rows = balanced_rows(codec, "sex", "income", "high", 1000, 0, draw)
    sizes, rates = rows.sex.value_counts(), rates_by_group(rows)
    assert len(rows) == 1000 and list(rows.columns) == ["sex", "x", "income"]
    overall = 0.3 * 0.1 + 0.7 * 0.6  # the stand-in's own share of 'high'; its first draw measures it
    for group, share in SHARES.items():
        assert sizes[group] / 1000 == pytest.approx(share, abs=0.03)
        assert abs(rates[group] - (rows.income == "high").mean()) <= 0.5 / sizes[group]  # to the nearest row
        assert rates[group] == pytest.approx(overall, abs=0.03)
    # group F's 'high' rows are five times rarer than its quota: most come from conditioned draws, not repeats
    assert not rows.duplicated().any()


def test_a_group_the_model_never_makes_positive_cannot_be_balanced(codec):
    with pytest.raises(GenloomError, match="the model made no rows of sex='F' with income = 'high' in 2,000 draws"):
        balanced_rows(codec, "sex", "income", "high", 100, 0, biased_draw({"F": 0.0, "M": 0.6}))


def test_the_request_names_a_column_of_groups_and_a_target_with_a_positive_class(codec):
    assert balance_request(codec, "sex", "income", None) == ("sex", "income", "high")  # the rarer of two
    assert balance_request(codec, "sex", "income", "low") == ("sex", "income", "low")
    for column, target, message in [("age", "income", "the table has no such column"),
                                    ("x", "income", "'x' is numerical: bin it into groups first"),
                                    ("sex", None, "trained without one: name it (target=COLUMN; CLI: --target"),
                                    ("sex", "sex", "the target 'sex' is not a column other than 'sex'"),
                                    ("sex", "x", "the target 'x' is numerical")]:
        with pytest.raises(GenloomError, match=message.replace("(", r"\(")):
            balance_request(codec, column, target, None)


def test_whole_counts_share_out_every_row():
    assert whole_counts(10, pd.Series({"a": 1, "b": 1, "c": 1})).tolist() == [4, 3, 3]
    assert whole_counts(7, pd.Series({"a": 0.5, "b": 0.25, "c": 0.25})).to_dict() == {"a": 3, "b": 2, "c": 2}
