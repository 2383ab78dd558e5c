"""Reward-guided fine-tuning: a reward scores the model's own samples into preference pairs for DPO; a reward that
raises or is not a number, or a property RDKit lacks, stops it before anything is written."""
import json
import math

import numpy as np
import pytest

import genloom as gl
from genloom.data.preferences import PreferencePair
from genloom.reward import property_reward, reward_pairs, scored
from tests.conftest import QUIET


def test_the_better_of_two_samples_is_chosen_and_ties_are_dropped():
    assert reward_pairs(["a", "b", "c", "d", "e", "f"], [1, 2, 3, 3, 5, 4], "P:") == [
        PreferencePair("P:", "b", "a"), PreferencePair("P:", "e", "f")]


def test_a_reward_that_fails_is_named_with_its_sample():
    with pytest.raises(gl.GenloomError, match=r"the reward raised ZeroDivisionError on sample 1 \('b'\)"):
        scored(["a", "b"], lambda text: 1 / (text == "a"))
    with pytest.raises(gl.GenloomError, match=r"the reward gave nan for sample 0 \('a'\)"):
        scored(["a"], lambda text: math.nan)
    with pytest.raises(gl.GenloomError, match="no molecule property 'toxicity'"):
        property_reward("toxicity")
    qed = property_reward("QED")
    assert qed("CC(=O)Oc1ccccc1C(=O)O") == pytest.approx(0.55, abs=0.01) and qed("C(C") < 0


def test_a_reward_function_tunes_text_toward_it(text_run, tmp_path):
    base = gl.load(text_run)

    def vowels(text):
        return sum(text.count(vowel) for vowel in "aeiou") / max(len(text), 1)

    tuned = gl.finetune_reward(base, vowels, out=tmp_path / "tuned", objective="dpo", pairs=48, steps=40, lr=1e-2,
                               beta=0.5, rank=4,
                               **QUIET)
    adapter = json.loads((tmp_path / "tuned" / "adapter.json").read_text())
    assert adapter["objective"] == "dpo" and 0 < adapter["preferences"]["pairs"] <= 48
    before = np.mean([vowels(text) for text in gl.load(text_run).sample(48, seed=7, progress=False)])
    after = np.mean([vowels(text) for text in tuned.sample(48, seed=7, progress=False)])
    assert after > before + 0.01


def test_a_molecule_property_by_name(molecule_run, text_run, tmp_path):
    tuned = gl.finetune_reward(molecule_run, "QED", out=tmp_path / "qed", objective="dpo", pairs=100, steps=2, **QUIET)
    assert json.loads((tmp_path / "qed" / "adapter.json").read_text())["preferences"]["pairs"] > 0
    assert len(tuned.sample(3, progress=False)) == 3
    with pytest.raises(gl.GenloomError, match="a reward by name is a molecule property; this model makes text data"):
        gl.finetune_reward(text_run, "QED", out=tmp_path / "x")
    with pytest.raises(gl.GenloomError, match="every pair of samples scored alike"):
        gl.finetune_reward(text_run, lambda text: 1.0, out=tmp_path / "y", objective="dpo", pairs=4)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
