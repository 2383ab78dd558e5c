"""Molecule metrics against known answers and against MOSES' own code in the molsets wheel (its metrics module
imported with the two things it needs that RDKit and pandas removed shimmed back)."""
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import genloom as gl
from genloom.data.molecules import molecule_property
from genloom.metrics import molecules as metrics

WHEEL = Path(sys.prefix) / "wheels" / "molsets-0.3.1-py3-none-any.whl"  # `make install` downloads it


@pytest.fixture(scope="module")
def moses_metrics(tmp_path_factory):
    """MOSES' metrics module, from the wheel the set-up downloaded."""
    if not WHEEL.exists():
        pytest.skip(f"no {WHEEL.name}: run `make install`")
    folder = tmp_path_factory.mktemp("molsets")
    with zipfile.ZipFile(WHEEL) as wheel:
        wheel.extractall(folder, [name for name in wheel.namelist() if name.startswith("moses/")])
    six = types.ModuleType("rdkit.six")
    six.iteritems, six.PY3 = (lambda mapping: iter(mapping.items())), True
    patch = pytest.MonkeyPatch()
    patch.setitem(sys.modules, "rdkit.six", six)
    patch.setattr(pd.DataFrame, "append", lambda self, other, sort=False: pd.concat([self, other], sort=sort),
                  raising=False)
    patch.syspath_prepend(str(folder))
    from moses.metrics import metrics as moses, utils
    yield moses, utils
    patch.undo()
    for name in [name for name in sys.modules if name == "moses" or name.startswith("moses.")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def generated():
    """Real molecules, some repeated, some of the training set, some invalid, some charged or with a large ring."""
    test = gl.load_data("moses-test").values[:150].tolist()
    training = gl.load_data("moses").values[:50].tolist()
    return test + training + ["C(C", "xyz", "", "c1ccccc1[N+](=O)[O-]", "C1CCCCCCC1", "CCO", "CCO"] + test[:40]


def test_validity_uniqueness_and_novelty_agree_with_moses(moses_metrics, generated):
    moses, _ = moses_metrics
    made, training = metrics.Molecules.of(generated), set(gl.load_data("moses").values[:50])
    assert made.validity == pytest.approx(moses.fraction_valid(generated), abs=1e-12)
    valid = moses.remove_invalid(generated)
    assert made.smiles == valid
    assert metrics.unique_at(made.smiles, 200) == pytest.approx(moses.fraction_unique(valid, 200), abs=1e-12)
    assert metrics.novelty(made.smiles, training) == pytest.approx(moses.novelty(generated, training), abs=1e-12)


def test_diversity_filters_similarity_and_properties_agree_with_moses(moses_metrics, generated):
    moses, utils = moses_metrics
    made = metrics.Molecules.of(generated)
    reference = metrics.Molecules.of(gl.load_data("moses-test").values[1000:1150].tolist())
    bits = metrics.fingerprints(made.molecules)
    for p in (1, 2):
        assert metrics.internal_diversity(bits, p) == pytest.approx(moses.internal_diversity(made.molecules, p=p),
                                                                    abs=1e-6)
    patterns = metrics.filter_patterns()
    ours = np.mean([metrics.passes_filters(molecule, patterns) for molecule in made.molecules])
    assert ours == pytest.approx(moses.fraction_passes_filters(made.molecules), abs=1e-12)
    assert ours < 1  # the charged molecule and the 8-ring fail
    snn = metrics.nearest_similarity(bits, metrics.fingerprints(reference.molecules))
    assert snn == pytest.approx(moses.SNNMetric()(gen=made.molecules, ref=reference.molecules), abs=1e-6)
    values = metrics.property_values(made.molecules[:20])
    for name, function in (("logP", utils.logP), ("SA", utils.SA), ("QED", utils.QED), ("weight", utils.weight)):
        np.testing.assert_allclose(values[name], [function(molecule) for molecule in made.molecules[:20]], atol=1e-9)


def test_known_answers():
    assert metrics.unique_at(["CCO", "CCO", "CC"], 3) == pytest.approx(2 / 3)
    assert metrics.novelty(["CCO", "CC", "CC"], {"CCO"}) == 0.5
    same = metrics.fingerprints(metrics.Molecules.of(["c1ccccc1O"] * 5).molecules)
    assert metrics.internal_diversity(same) == pytest.approx(0.0)
    assert metrics.nearest_similarity(same, same) == pytest.approx(1.0)
    with pytest.raises(gl.GenloomError, match="no molecule property 'toxicity'; properties: logP, SA, QED, weight"):
        molecule_property("toxicity")


def test_the_frechet_chemnet_distance_is_near_zero_for_one_set_and_large_for_another():
    drugs = gl.load_data("moses-test").values[:200].tolist()
    alkanes = ["C" * n for n in range(2, 40)] * 5
    same = metrics.frechet_chemnet_distance(drugs, drugs)
    other = metrics.frechet_chemnet_distance(drugs, alkanes)
    assert abs(same) < 1e-3 and other > 20


def test_scores_of_held_out_molecules_against_their_set_are_those_of_a_perfect_model(tmp_path):
    test = gl.load_data("moses-test").values
    scores, real, made = metrics.molecule_scores(test[:150].tolist(), test[150:300].tolist(), set(test[:75]))
    assert scores["validity"] == 1 and scores["unique"] == 1 and scores["novelty"] == 0.5
    assert scores["filters"] > 0.95 and scores["QED_wasserstein"] < 0.1
    junk, _, _ = metrics.molecule_scores(["C" * n for n in range(1, 40)] + ["C(C"], test[150:300].tolist(), None)
    assert junk["QED_wasserstein"] > 5 * scores["QED_wasserstein"] and junk["fcd"] > 3 * scores["fcd"]
    assert "novelty" not in junk
    figure = metrics.property_histograms(real, made, tmp_path / "p.png")
    assert figure.stat().st_size > 10_000
