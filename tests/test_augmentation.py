"""Augmentation: the rare classes filled with a model's examples of them (not copies, not the common class),
marked, in the original's order and types, and written to files that load back as the same labelled data."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import genloom as gl
from genloom import augmentation
from genloom.augmentation import (KINDS, PRIOR_RATIO, balanced_resampling, held_out, judged_probabilities, mean_auprc,
                                  shortfalls, stratified_resamplings)


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


def drawing(points: callable):
    """A stand-in for the model's draw: `points(rng, n)` as the rows of the asked class."""
    def draw(model, data, target, name, n, seed):
        xy = points(np.random.default_rng(seed + 100), n)
        return pd.DataFrame({"a": xy[:, 0], "b": xy[:, 1], "label": name})
    return draw


def test_held_out_takes_a_quarter_of_each_class_or_nothing_where_a_rare_class_is_too_small():
    classes = np.array(["a"] * 100 + ["b"] * 9)
    held = held_out(classes, ["b"], seed=0)
    assert held[:100].sum() == 25 and held[100:].sum() == 2
    assert held_out(classes[:107], ["b"], seed=0) is None  # 7 of b: 1 held out, too few to rank


def test_the_judge_scores_how_well_training_rows_find_the_held_out_rare_class():
    frame = blobs(200)
    x, classes = frame[["a", "b"]].to_numpy(), frame["label"].to_numpy()
    check = np.r_[np.random.default_rng(1).normal(0, 1, (100, 2)), np.random.default_rng(2).normal(2, 1, (20, 2))]
    check_classes = np.array(["common"] * 100 + ["rare"] * 20)
    sound = judged_probabilities(x, classes, check, ["rare"], None, seed=0)
    shuffled = judged_probabilities(x, np.random.default_rng(0).permutation(classes), check, ["rare"], None, seed=0)
    assert sound.shape == (120, 1)
    # 20 of 120 are rare: a ranking by chance scores about 0.17
    assert mean_auprc(sound, check_classes, ["rare"]) > 0.6 and mean_auprc(shuffled, check_classes, ["rare"]) < 0.4


def test_resamplings_keep_each_class_count_and_draw_within_it():
    classes = np.array(["a"] * 30 + ["b"] * 3)
    rows = stratified_resamplings(classes, 50, seed=0)
    assert rows.shape == (50, 33)
    assert all((classes[resampling] == "b").sum() == 3 for resampling in rows)
    assert len(np.unique(rows[:, 30:])) == 3 and len(np.unique(rows)) == 33


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

    monkeypatch.setattr(augmentation, "judged_probabilities", judge)
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
