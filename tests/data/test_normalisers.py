import numpy as np
import pytest

from genloom.data.normalisers import NORMALISERS


@pytest.mark.parametrize("name", sorted(NORMALISERS))
def test_the_spread_is_the_columns_standard_deviation(name):
    rng = np.random.default_rng(0)
    values = rng.normal(5.0, 2.0, 5000)
    state = NORMALISERS[name].fit(values, rng)
    assert NORMALISERS[name].spread(state) == pytest.approx(2.0, rel=0.05)
