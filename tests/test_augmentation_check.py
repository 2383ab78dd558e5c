"""Judging how many made examples to add: held-out examples of each class, a classifier's AUPRC on them, and a
choice that trusts a difference only beyond its bootstrap standard error."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from genloom import augmentation_check
from genloom.augmentation_check import (PRIOR_RATIO, average_precisions, held_out, judge_amounts, judged_probabilities,
                                        mean_auprc, resampled_auprc, stratified_resamplings)


def test_held_out_takes_a_quarter_of_each_class_or_nothing_where_a_rare_class_is_too_small():
    classes = np.array(["a"] * 100 + ["b"] * 9)
    held = held_out(classes, ["b"], seed=0)
    assert held[:100].sum() == 25 and held[100:].sum() == 2
    assert held_out(classes[:107], ["b"], seed=0) is None  # 7 of b: 1 held out, too few to rank


def test_the_judge_scores_how_well_training_examples_find_the_held_out_rare_class():
    rng = np.random.default_rng(0)
    x, classes = np.r_[rng.normal(0, 1, (1000, 2)), rng.normal(2, 1, (200, 2))], np.array(["c"] * 1000 + ["r"] * 200)
    check = np.r_[rng.normal(0, 1, (100, 2)), rng.normal(2, 1, (20, 2))]
    check_classes = np.array(["c"] * 100 + ["r"] * 20)
    sound = judged_probabilities(x, classes, check, ["r"], None, seed=0)
    shuffled = judged_probabilities(x, rng.permutation(classes), check, ["r"], None, seed=0)
    assert sound.shape == (120, 1)
    # 20 of 120 are rare: a ranking by chance scores about 0.17
    assert mean_auprc(sound, check_classes, ["r"]) > 0.6 and mean_auprc(shuffled, check_classes, ["r"]) < 0.4


def test_resamplings_keep_each_class_count_and_draw_within_it():
    classes = np.array(["a"] * 30 + ["b"] * 3)
    rows = stratified_resamplings(classes, 50, seed=0)
    assert rows.shape == (50, 33)
    assert all((classes[resampling] == "b").sum() == 3 for resampling in rows)
    assert len(np.unique(rows[:, 30:])) == 3 and len(np.unique(rows)) == 33


@pytest.mark.parametrize("levels", [None, 5], ids=["distinct scores", "scores tied in five levels"])
def test_average_precisions_at_once_equal_scikit_learns_one_at_a_time(levels):
    rng = np.random.default_rng(0)
    positive = rng.random((40, 30)) < 0.2
    positive[:, 0] = True  # every row has a positive example
    scores = rng.random((40, 30)) + positive * rng.random((40, 1))  # rows from chance to well ranked
    if levels:
        scores = np.floor(scores * levels)
    expected = [average_precision_score(labels, row) for labels, row in zip(positive, scores)]
    np.testing.assert_allclose(average_precisions(positive, scores), expected, rtol=1e-12)
    assert np.ptp(expected) > 0.3  # the rows differ: a constant would not pass


def test_resampled_auprcs_are_mean_auprc_on_each_resampling():
    rng = np.random.default_rng(1)
    classes = np.array(["a"] * 50 + ["b"] * 8 + ["c"] * 6)
    probabilities = rng.random((64, 2))
    resamplings = stratified_resamplings(classes, 30, seed=0)
    expected = [mean_auprc(probabilities[rows], classes[rows], ["b", "c"]) for rows in resamplings]
    np.testing.assert_allclose(resampled_auprc(probabilities, classes, ["b", "c"], resamplings), expected, rtol=1e-12)


CHECK = np.array(["rare"] * 25 + ["common"] * 250)


def rankings(monkeypatch, **by_candidate: np.ndarray) -> dict:
    """Candidates whose judge gives the check examples the probabilities named; each candidate's "training
    examples" are its index, which the stand-in judge reads."""
    table = list(by_candidate.values())
    monkeypatch.setattr(augmentation_check, "judged_probabilities",
                        lambda train, *rest: table[int(train[0, 0])][:, None])
    return {float(name.replace("r", "").replace("_", ".")): (np.array([[index]]), None)
            for index, name in enumerate(by_candidate)}


def ranked(*misplaced: tuple[int, float]) -> np.ndarray:
    """Every rare example above every common one (probabilities 0.9..0.66 and 0..0.5), except the rare examples
    given, each put at the probability given."""
    probabilities = np.r_[np.linspace(0.9, 0.66, 25), np.linspace(0.0, 0.5, 250)]
    for example, probability in misplaced:
        probabilities[example] = probability
    return probabilities


def test_of_amounts_within_a_standard_error_of_the_best_the_fewest_is_taken(monkeypatch):
    # 1 ranks one rare example among the commons, 0.5 another one a little lower: 1 scores best, but which
    # example is misplaced is all that differs, and resamplings count the two alike
    trainings = rankings(monkeypatch, r0=ranked(*((i, 0.1) for i in range(10))), r0_5=ranked((1, 0.29)),
                         r1=ranked((0, 0.3)))
    choice = judge_amounts(trainings, np.zeros((275, 1)), CHECK, ["rare"], None, seed=0)
    assert choice.scores[1.0] > choice.scores[0.5] > choice.scores[0.0]
    assert choice.alike == (0.5, 1.0) and choice.ratio == 0.5


def test_an_amount_clearly_best_is_taken(monkeypatch):
    trainings = rankings(monkeypatch, r0=ranked(*((i, 0.1) for i in range(10))), r0_25=ranked(),
                         r1=ranked(*((i, 0.2) for i in range(5))))
    choice = judge_amounts(trainings, np.zeros((275, 1)), CHECK, ["rare"], None, seed=0)
    assert choice.alike == (0.25,) and choice.ratio == 0.25
    assert choice.describe().startswith("ratio 0.25 did best on held-out examples;")


@pytest.mark.parametrize("candidates, taken", [(("r0", "r0_25", "r1"), PRIOR_RATIO), (("r0", "r0_5", "r1"), 0.0)])
def test_where_no_amount_is_told_from_another_the_nearest_to_the_prior_is_taken(monkeypatch, candidates, taken):
    trainings = rankings(monkeypatch, **dict.fromkeys(candidates, ranked()))
    choice = judge_amounts(trainings, np.zeros((275, 1)), CHECK, ["rare"], None, seed=0)
    assert len(choice.alike) == 3 and choice.ratio == taken
    assert "told no amount from another (each within a standard error of the best), so " in choice.describe()
