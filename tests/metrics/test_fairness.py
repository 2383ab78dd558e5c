import re

import numpy as np
import pandas as pd
import pytest

from genloom.errors import GenloomError
from genloom.metrics.fairness import fairness_request, fairness_scores, joint_distribution_figure, joint_shares

KINDS = {"group": "categorical", "x": "numerical", "target": "categorical"}


def _separable(n=200, seed=0):
    """Rows whose target is x > 0, whatever the group: trees learn the sign of x and nothing of the group."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 2, n) * rng.choice([-1, 1], n)
    return pd.DataFrame({"group": rng.choice(["A", "B"], n), "x": x, "target": np.where(x > 0, "yes", "no")})


def test_a_classifier_that_favours_one_group_scores_fairlearns_known_answer():
    # held out: group A's x all positive, so all predicted yes (selection 1, TPR 1, FPR 1); group B's one
    # positive x of four: selection 1/4, TPR 1/2, FPR 0. Parity: 1 - 1/4; equalised odds: max(1 - 1/2, 1 - 0).
    held_out = pd.DataFrame({"group": ["A"] * 4 + ["B"] * 4, "x": [1.5] * 4 + [1.5, -1.5, -1.5, -1.5],
                             "target": ["yes", "yes", "no", "no"] * 2})
    train = _separable()
    one_class = train.assign(target="no")  # trees of one class guess "no" for all: alike for every group
    scores = fairness_scores(one_class, train, held_out, KINDS, "target", ["group"], "yes")
    assert scores == pytest.approx({"parity_difference_group_real": 0.75, "parity_difference_group_synthetic": 0.0,
                                    "equalized_odds_difference_group_real": 1.0,
                                    "equalized_odds_difference_group_synthetic": 0.0})


def test_a_bias_injected_into_synthetic_rows_shows_in_its_parity_difference():
    train, held_out = _separable(400, seed=1), _separable(400, seed=2)
    rng = np.random.default_rng(3)
    biased = train.assign(target=np.where(rng.random(400) < np.where(train.group == "A", 0.9, 0.1), "yes", "no"))
    scores = fairness_scores(biased, train, held_out, KINDS, "target", ["group"], "yes")
    assert scores["parity_difference_group_real"] < 0.1  # the real rows' target ignores the group
    assert scores["parity_difference_group_synthetic"] > 0.6
    assert scores["equalized_odds_difference_group_synthetic"] > scores["equalized_odds_difference_group_real"] + 0.5


def test_joint_shares_count_each_group_and_outcome():
    rows = pd.DataFrame({"group": ["A", "A", "A", "B"], "target": ["yes", "yes", "no", "no"]})
    shares = joint_shares(rows, "group", "target", "yes")
    assert shares.index.tolist() == ["A", "B"]
    assert shares.to_dict("list") == {"positive": [0.5, 0.0], "other": [0.25, 0.25], "positive rate": [2 / 3, 0.0]}


def test_the_joint_distribution_is_drawn_one_panel_per_protected_column(tmp_path):
    from PIL import Image

    rows = _separable().assign(band=lambda f: np.where(f.x > 1, "high x", "low x"))
    joint_distribution_figure(rows, rows.iloc[:50], "target", ["group", "band"], "yes", tmp_path / "f.png")
    pixels = np.asarray(Image.open(tmp_path / "f.png").convert("L"))
    inked = np.flatnonzero((pixels < 200).mean(1) > 0.02)  # rows of the picture with bars or axes drawn on them
    assert inked.size and (np.diff(inked) > 20).any()  # two panels: a blank band between them


def test_the_positive_class_is_the_rarer_of_two_or_the_one_named():
    rows = _separable().assign(target=lambda f: np.where(f.x > 1.5, " >50K", " <=50K"))
    assert fairness_request(rows, KINDS, ["group"], "target") == " >50K"
    assert fairness_request(rows, KINDS, ["group"], "target", positive="<=50K") == " <=50K"  # spaces ignored
    with pytest.raises(GenloomError, match="the target 'target' has no value 'rich'"):
        fairness_request(rows, KINDS, ["group"], "target", positive="rich")
    with pytest.raises(GenloomError, match="has 3 values, not two; name the positive one"):
        fairness_request(rows.assign(target=np.arange(len(rows)) % 3), KINDS, ["group"], "target")


@pytest.mark.parametrize("protected, target, message", [
    (["x"], "target", "protected column 'x' is continuous (200 distinct values), not a set of groups: bin it"),
    (["target"], "target", "protected column 'target' is the target"),
    (["group"], "x", "the target 'x' is numerical; fairness measures a yes/no prediction"),
])
def test_protected_columns_must_be_groups_and_the_target_a_class(protected, target, message):
    with pytest.raises(GenloomError, match=re.escape(message)):
        fairness_request(_separable(), KINDS, protected, target)


def test_a_number_of_few_values_is_a_set_of_groups():
    rows = _separable().assign(x=lambda f: np.sign(f.x))
    assert fairness_request(rows, KINDS, ["x"], "target") in ("yes", "no")
