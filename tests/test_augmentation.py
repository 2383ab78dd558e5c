"""Augmentation: the rare classes filled with a model's examples of them (not copies, not the common class),
marked, in the original's order and types, and written to files that load back as the same labelled data."""
from dataclasses import replace
from typing import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import genloom as gl
from genloom import augmentation, augmentation_check
from genloom.augmentation import KINDS, balanced_resampling, shortfalls
from genloom.augmentation_check import PRIOR_RATIO


@pytest.fixture(scope="module")
def imbalanced():
    """300 rows of class 0 around x = 0 and 30 of class 1 around x = 4 (an integer-coded target)."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, 300), rng.normal(4, 1, 30)])
    return pd.DataFrame({"x": x, "z": rng.normal(0, 1, 330), "label": [0] * 300 + [1] * 30})


@pytest.fixture(scope="module")
def augmented(imbalanced):
    return gl.augment(imbalanced, target="label", ratio=1.0, family="vae", steps=300)


def test_the_rare_class_is_filled_to_balance_and_marked(augmented, imbalanced):
    values = augmented.values
    assert augmented.added == {"1": 270}
    assert values["label"].value_counts().to_dict() == {0: 300, 1: 300}
    assert values["label"].dtype == imbalanced["label"].dtype  # trained on as a category, written back as 0/1
    pd.testing.assert_frame_equal(values.iloc[:330].drop(columns="synthetic"), imbalanced)
    assert values["synthetic"].tolist() == [0] * 330 + [1] * 270
    assert augmented.synthetic.tolist() == [False] * 330 + [True] * 270


def test_the_added_rows_are_new_rows_of_the_rare_class(augmented, imbalanced):
    added = augmented.values[augmented.synthetic]
    assert added["x"].mean() > 2.5  # class 1 lies around 4, class 0 around 0: not the common class's rows
    assert not added["x"].isin(imbalanced["x"]).any()  # made, not copied


def test_a_ratio_fills_part_way_and_a_balanced_set_is_left_alone(imbalanced):
    assert shortfalls(imbalanced["label"].astype(str).to_numpy(), 0.5) == {"1": 120}
    balanced = imbalanced.iloc[:60].assign(label=[0, 1] * 30)
    result = gl.augment(balanced, target="label")
    assert result.added == {} and result.model is None and len(result.values) == 60
    assert result.summary() == "added nothing (already balanced); 60 examples in all"


def test_balanced_resampling_repeats_the_rare_rows(imbalanced):
    data = gl.load_data(imbalanced)
    resampled = balanced_resampling(data, imbalanced["label"].astype(str).to_numpy(), 0, KINDS["table"].take)
    assert resampled.values["label"].value_counts().to_dict() == {0: 300, 1: 300}
    assert resampled.values["x"].iloc[330:].isin(imbalanced["x"].iloc[300:]).all()


def test_images_of_a_cut_class_are_made_by_a_conditional_model(tmp_path):
    digits = gl.load_data("digits")
    rng = np.random.default_rng(0)
    keep = np.concatenate([np.flatnonzero(digits.labels != 3), rng.choice(np.flatnonzero(digits.labels == 3), 18)])
    cut = gl.Dataset("image", digits.values[keep], "digits-cut", digits.labels[keep], digits.class_names)
    result = gl.augment(cut, ratio=0.5, steps=400)
    largest = np.bincount(cut.labels).max()
    assert set(result.added) == {"3"} and result.added["3"] == int(np.ceil(0.5 * largest)) - 18
    classifier = LogisticRegression(max_iter=2000).fit(digits.values.reshape(len(digits), -1) / 16, digits.labels)
    made = result.values[result.synthetic]
    called_three = (classifier.predict(made.reshape(len(made), -1) / 16) == 3).mean()
    assert called_three > 0.5  # chance is 0.1
    path = result.save(tmp_path / "augmented.npz")
    loaded = gl.load_data(path)
    assert len(loaded) == len(result.values) and np.array_equal(loaded.values, result.values)
    assert np.array_equal(np.asarray(loaded.class_names)[loaded.labels], result.classes)
    assert np.load(path)["synthetic"].sum() == result.added["3"]


def test_a_table_is_written_with_its_marker(augmented, tmp_path):
    path = augmented.save(tmp_path / "augmented.csv")
    written = pd.read_csv(path)
    assert written["synthetic"].sum() == 270 and len(written) == 600


# -- ratio="auto": how many to add, judged on held-out examples --------------------------------------------------
def blobs(rare: int, seed: int = 0) -> pd.DataFrame:
    """1,000 rows of class "common" around (0, 0) and `rare` of class "rare" around (2, 2), overlapping."""
    rng = np.random.default_rng(seed)
    points = np.r_[rng.normal(0, 1, (1000, 2)), rng.normal(2, 1, (rare, 2))]
    return pd.DataFrame({"a": points[:, 0], "b": points[:, 1], "label": ["common"] * 1000 + ["rare"] * rare})


def drawing(points: Callable[[np.random.Generator, int], np.ndarray]):
    """A stand-in for the model's draw: `points(rng, n)` as the rows of the asked class."""
    def draw(model, data, target, name, n, seed):
        xy = points(np.random.default_rng(seed + 100), n)
        return pd.DataFrame({"a": xy[:, 0], "b": xy[:, 1], "label": name})
    return draw


def test_auto_adds_nothing_where_the_made_rows_would_mislead(monkeypatch):
    monkeypatch.setitem(KINDS, "table", replace(KINDS["table"], draw=drawing(lambda rng, n: rng.normal(0, 1, (n, 2)))))
    result = gl.augment(blobs(200), target="label", family="vae", steps=5)
    assert result.choice.ratio == 0 and result.added == {} and len(result.values) == 1200
    assert result.choice.scores[0] > max(score for ratio, score in result.choice.scores.items() if ratio)
    assert result.summary().startswith("added nothing (adding none did best on held-out examples; the model learnt "
                                       "from the other three quarters; a gradient-boosted judge's rare-class AUPRC: "
                                       "none ")


def judging(ranks: dict[int, str], monkeypatch) -> list[int]:
    """A stand-in judge: for a training set with the given number of rare rows, `ranks` says whether it ranks
    the check's rare examples "perfectly" (an AUPRC of 1) or "badly" (last: 25 of 275 rare, about 0.09)."""
    judged = []

    def judge(train, classes, check, rare, categorical, seed):
        judged.append(int((classes == "rare").sum()))
        found = check[:, 0] > 1 if ranks[judged[-1]] == "perfectly" else check[:, 0] < 1  # the rare blob's side
        return found.astype(float)[:, None]

    monkeypatch.setattr(augmentation_check, "judged_probabilities", judge)
    return judged


def test_auto_adds_the_fewest_made_rows_of_the_amounts_that_judge_best(monkeypatch):
    monkeypatch.setitem(KINDS, "table", replace(KINDS["table"], draw=drawing(lambda rng, n: rng.normal(2, 1, (n, 2)))))
    data = blobs(100).assign(a=lambda frame: np.where(frame["label"] == "rare", 3.0, -1.0))  # split by a at 1
    judged = judging({75: "badly", 188: "badly", 375: "perfectly", 750: "perfectly"}, monkeypatch)
    fitted, fit = [], augmentation.Model.fit
    monkeypatch.setattr(augmentation.Model, "fit", lambda self, data, **options: fitted.append(
        (len(data), len(options["codec_data"]))) or fit(self, data, **options))
    result = gl.augment(data, target="label", family="vae", steps=5)
    assert fitted == [(750 + 750, 750 + 75)]  # the held-out quarter is not learnt from (nor its codec fitted on)
    # learnt from 750 common and 75 rare rows; 0.1 is skipped (75 is already a tenth of 750); 0.5 (+300 made rows)
    # and 1 (+675) rank the 25 rare of the 275 held out perfectly
    assert judged == [75, 188, 375, 750]
    assert result.choice.alike == (0.5, 1.0) and result.choice.ratio == 0.5
    assert result.added == {"rare": 500 - 100}
    assert len(result.values) == 1100 + 400 and result.values[result.synthetic]["b"].mean() > 1.5  # the pool's rows
    assert "ratios 0.5 and 1 did alike on held-out examples (within a standard error of the best), ratio 0.5 the " \
        "fewest made" in result.summary()


def test_auto_takes_the_prior_where_the_check_tells_no_amount_from_another(monkeypatch):
    monkeypatch.setitem(KINDS, "table", replace(KINDS["table"], draw=drawing(lambda rng, n: rng.normal(2, 1, (n, 2)))))
    data = blobs(100).assign(a=lambda frame: np.where(frame["label"] == "rare", 3.0, -1.0))
    judging(dict.fromkeys((75, 188, 375, 750), "perfectly"), monkeypatch)
    result = gl.augment(data, target="label", family="vae", steps=5)
    assert result.choice.alike == (0.0, 0.25, 0.5, 1.0) and result.choice.ratio == PRIOR_RATIO
    assert result.added == {"rare": 250 - 100}
    assert "held-out examples told no amount from another" in result.summary()


def test_auto_takes_the_prior_ratio_where_a_rare_class_is_too_small_to_check():
    result = gl.augment(blobs(6), target="label", family="vae", steps=5)
    assert result.choice.ratio == PRIOR_RATIO and result.choice.scores == {}
    assert result.added == {"rare": 250 - 6}
    assert "ratio 0.25: a rare class has fewer than 8 examples, too few to hold some out" in result.summary()


def test_auto_adds_nothing_where_the_classes_are_level_once_a_quarter_is_held_out():
    # 12 and 11 examples: 9 of each are learnt from, so no amount differs from another
    frame = pd.DataFrame({"x": np.arange(23.0), "label": ["a"] * 12 + ["b"] * 11})
    result = gl.augment(frame, target="label", family="vae", steps=5)
    assert result.choice.ratio == 0 and result.added == {} and len(result.values) == 23
    assert "adding none: with a quarter of each class held out the classes are level" in result.summary()


def test_the_judge_never_sees_the_marker_or_a_column_of_the_users_named_like_it(monkeypatch):
    monkeypatch.setitem(KINDS, "table", replace(KINDS["table"], draw=drawing(lambda rng, n: rng.normal(2, 1, (n, 2)))))
    seen = []
    monkeypatch.setattr(augmentation_check, "judged_probabilities", lambda train, classes, check, *rest: seen.append(
        (train.shape[1], check.shape[1], train[:, 2].copy(), check[:, 2].copy())) or np.ones((len(check), 1)))
    frame = blobs(100).assign(synthetic=np.linspace(-1, 1, 1100))  # the user's own column, kept apart by --marker
    gl.augment(frame, target="label", family="vae", steps=5, marker="made")
    assert {(columns, check_columns) for columns, check_columns, _, _ in seen} == {(3, 3)}  # a, b, synthetic
    assert all(np.isin(column[:825], frame["synthetic"]).all() for _, _, column, _ in seen)


def test_a_boolean_target_keeps_its_classes(monkeypatch):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": np.r_[rng.normal(0, 1, 60), rng.normal(4, 1, 6)], "flag": [True] * 60 + [False] * 6})
    result = gl.augment(frame, target="flag", ratio=1.0, family="vae", steps=50)
    assert result.values["flag"].dtype == bool and result.added == {"False": 54}
    assert (~result.values["flag"][result.synthetic]).all()  # made rows of False are False, not bool("False")


def test_images_too_judge_how_many_to_add():
    digits = gl.load_data("digits")
    rng = np.random.default_rng(0)
    keep = np.concatenate([np.flatnonzero(digits.labels != 3), rng.choice(np.flatnonzero(digits.labels == 3), 12)])
    cut = gl.Dataset("image", digits.values[keep], "digits-cut", digits.labels[keep], digits.class_names)
    result = gl.augment(cut, steps=30)
    assert set(result.choice.scores) == {0.0, 0.1, 0.25, 0.5, 1.0}  # 9 of 3 learnt against up to 143 of a digit
    largest = np.bincount(cut.labels).max()
    assert result.added == ({"3": int(np.ceil(result.choice.ratio * largest)) - 12} if result.choice.ratio else {})
    assert (result.classes[result.synthetic] == "3").all() and len(result.values) == len(cut.values) + sum(
        result.added.values())
