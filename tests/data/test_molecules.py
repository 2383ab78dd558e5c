"""Reading molecules: canonical SMILES from .smi files and SMILES columns, bad strings counted and skipped,
randomised forms of the same molecule, and the MOSES built-ins."""
import numpy as np
import pandas as pd
import pytest

import genloom as gl
from genloom.data.molecules import canonical, checked_molecules, read_smi, randomised
from genloom.errors import GenloomError


def test_canonical_forms_are_one_string_per_molecule():
    assert canonical("OCC") == canonical("C(O)C") == "CCO"
    assert canonical("c1ccccc1") == canonical("C1=CC=CC=C1") == "c1ccccc1"
    assert canonical("C(C") is None and canonical("") is None


def test_unreadable_smiles_are_counted_skipped_and_named(capsys):
    kept = checked_molecules(["CCO", "C(C", "c1ccccc1", "xyz"], "mols.smi")
    assert list(kept) == ["CCO", "c1ccccc1"]
    warning = capsys.readouterr().err
    assert "mols.smi: skipped 2 of 4 SMILES that RDKit cannot read (#2 'C(C', #4 'xyz')" in warning


def test_a_file_of_no_readable_smiles_is_an_error():
    with pytest.raises(GenloomError, match=r"none of its 2 SMILES can be read by RDKit \(first: 'C\(C'\)"):
        checked_molecules(["C(C", "Q"], "bad.smi")


def test_smi_files_give_the_first_field_and_skip_a_header(tmp_path):
    path = tmp_path / "mols.smi"
    path.write_text("SMILES\nOCC ethanol\n\nc1ccccc1\tbenzene\n", encoding="utf-8")
    assert read_smi(path) == ["OCC", "c1ccccc1"]
    data = gl.load_data(path)
    assert data.kind == "molecule" and list(data.values) == ["CCO", "c1ccccc1"] and data.name == "mols"
    assert data.source["source"] == str(path.resolve())


def test_a_table_with_a_smiles_column_loads_as_molecules(tmp_path, capsys):
    path = tmp_path / "mols.csv"
    pd.DataFrame({"SMILES": ["OCC", "CC(=O)O"], "qed": [0.4, 0.5]}).to_csv(path, index=False)
    data = gl.load_data(path)
    assert data.kind == "molecule" and list(data.values) == ["CCO", "CC(=O)O"]
    assert "molecules from its column 'SMILES'; 'qed' left out" in capsys.readouterr().err


def test_randomised_smiles_are_other_strings_of_the_same_molecule(tmp_path):
    forms = randomised("CC(=O)Oc1ccccc1C(=O)O", 6, np.random.default_rng(0))
    assert {canonical(form) for form in forms} == {"CC(=O)Oc1ccccc1C(=O)O"}
    assert len(set(forms)) > 3  # aspirin has many atom orders
    path = tmp_path / "m.smi"
    path.write_text("CCO\nc1ccccc1O\n", encoding="utf-8")
    data = gl.load_data(path, randomised_smiles=2)
    assert len(data) == 6 and data.values[0] == "CCO" and data.values[3] == "Oc1ccccc1"
    assert data.source["randomised_smiles"] == 2
    assert gl.load_data(data.source["source"], randomised_smiles=2).values.tolist() == data.values.tolist()


def test_randomised_smiles_of_other_data_is_an_error():
    with pytest.raises(GenloomError, match="randomised SMILES augment molecules; this is text data"):
        gl.load_data("shakespeare", randomised_smiles=1)


def test_the_moses_subset_is_the_same_fixed_share_on_every_load():
    first, again = gl.load_data("moses"), gl.load_data("moses")
    assert len(first) == 250_000 and first.values[:5].tolist() == again.values[:5].tolist()
    assert first.kind == "molecule" and first.source == {"source": "moses"}
    test = gl.load_data("moses-test")
    assert len(test) == 176_074 and not set(test.values[:1000]) & set(first.values)
