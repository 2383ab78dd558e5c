"""Augmentation: the rare classes filled with a model's examples of them (not copies, not the common class),
marked, in the original's order and types, and written to files that load back as the same labelled data."""
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import genloom as gl
from genloom.augmentation import KINDS, balanced_resampling, shortfalls


@pytest.fixture(scope="module")
def imbalanced():
    """300 rows of class 0 around x = 0 and 30 of class 1 around x = 4 (an integer-coded target)."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, 300), rng.normal(4, 1, 30)])
    return pd.DataFrame({"x": x, "z": rng.normal(0, 1, 330), "label": [0] * 300 + [1] * 30})


@pytest.fixture(scope="module")
def augmented(imbalanced):
    return gl.augment(imbalanced, target="label", family="vae", steps=300)


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
