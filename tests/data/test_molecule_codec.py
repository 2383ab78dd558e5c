"""MoleculeCodec: SMILES and SELFIES tokens, fixed-length sequences closed by the end token, round trips, the
one-line errors of molecules the vocabulary cannot hold, and drawings of molecules as sample files."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import genloom as gl
from genloom.data.molecule_codec import MoleculeCodec, smiles_tokens
from genloom.data.molecule_drawing import MAX_DRAWN
from genloom.data.molecules import canonical
from genloom.data.provenance import png_record

MOLECULES = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "Clc1ccc(Br)cc1", "C[C@H](N)C(=O)O", "c1cc[nH]c1"]


def _data(values=MOLECULES):
    return gl.Dataset("molecule", np.array(values, dtype=object), "m")


def test_smiles_tokens_keep_atoms_brackets_and_ring_closures_whole():
    assert smiles_tokens("Clc1ccc(Br)cc1[nH]%12") == ["Cl", "c", "1", "c", "c", "c", "(", "Br", ")", "c", "c", "1",
                                                     "[nH]", "%12"]
    assert smiles_tokens("C[C@H](N)C(=O)O")[1] == "[C@H]"
    with pytest.raises(gl.GenloomError, match=r"holds characters that are not SMILES: 'X', 'y'"):
        smiles_tokens("CXyO")


@pytest.mark.parametrize("tokenizer", ["smiles", "selfies"])
def test_molecules_round_trip_through_fixed_length_sequences(tokenizer):
    codec = MoleculeCodec(tokenizer).fit(_data())
    ids = codec.encode(MOLECULES)
    assert ids.dtype == torch.long and ids.shape == (len(MOLECULES), codec.length)
    assert (ids[:, -1] == 0).all()  # every molecule ends, the longest too
    decoded = codec.decode(ids)
    assert [canonical(smiles) for smiles in decoded] == [canonical(smiles) for smiles in MOLECULES]
    assert codec.layout.kind == "molecule" and codec.layout.shape == (codec.length,)
    again = MoleculeCodec.from_json(json.loads(json.dumps(codec.to_json())))
    assert torch.equal(again.encode(MOLECULES), ids)


def test_smiles_sequences_decode_to_strings_whether_or_not_they_are_molecules():
    codec = MoleculeCodec().fit(_data())
    ring, carbon = codec.vocabulary.index("1"), codec.vocabulary.index("C")
    assert codec.decode(torch.tensor([[carbon, ring, carbon, 0, carbon]])) == ["C1C"]  # unclosed ring: not valid
    assert canonical("C1C") is None


def test_every_selfies_sequence_is_a_molecule():
    codec = MoleculeCodec("selfies").fit(_data())
    random = torch.randint(1, len(codec.vocabulary), (50, codec.length), generator=torch.Generator().manual_seed(0))
    assert all(canonical(smiles) is not None for smiles in codec.decode(random) if smiles)


def test_molecules_the_vocabulary_cannot_hold_are_one_line_errors():
    codec = MoleculeCodec().fit(_data())
    with pytest.raises(gl.GenloomError, match=r"'CCS' holds tokens the model never saw: S; it knows only"):
        codec.encode(["CCS"])
    with pytest.raises(gl.GenloomError, match=r"has 30 tokens; this model's molecules have at most 22"):
        codec.encode(["C" * 30])
    unended = codec.decode(torch.full((1, codec.length), codec.vocabulary.index("C")))  # never drew the end token
    assert torch.equal(codec.encode(unended), torch.full((1, codec.length), codec.vocabulary.index("C")))
    with pytest.raises(gl.GenloomError, match="unknown molecule tokenizer 'bpe'; use one of smiles, selfies"):
        MoleculeCodec("bpe")


def test_the_autoregressive_family_may_draw_any_molecule_token_but_never_the_start():
    codec = MoleculeCodec().fit(_data())
    allowed = codec.layout.tokens(16, 32).allowed(len(codec.vocabulary) + 1)
    assert allowed.shape == (codec.length, len(codec.vocabulary) + 1)
    assert allowed[:, :-1].all() and not allowed[:, -1].any()


def test_molecules_are_written_as_smiles_lines_or_drawn(tmp_path):
    codec = MoleculeCodec().fit(_data())
    codec.save_samples(MOLECULES + ["C1C"], tmp_path / "m.smi", {"run": "r"})
    assert (tmp_path / "m.smi").read_text(encoding="utf-8").splitlines() == MOLECULES + ["C1C"]
    codec.save_samples(MOLECULES + ["C1C"], tmp_path / "m.png", {"run": "r"})
    with Image.open(tmp_path / "m.png") as drawing:
        assert drawing.size == (7 * 200, 200) and png_record(drawing)["run"] == "r"
        pixels = np.asarray(drawing.convert("L"))
    assert (pixels[:, :200] < 128).sum() > 50 and (pixels[:, 6 * 200:] < 128).sum() < (pixels[:, :200] < 128).sum()
    with pytest.raises(gl.GenloomError, match=f"a drawing holds at most {MAX_DRAWN} molecules"):
        codec.save_samples(["CCO"] * (MAX_DRAWN + 1), tmp_path / "many.png")
    codec.save_samples(MOLECULES, tmp_path / "m.csv")  # a table with a smiles column, which load_data reads back
    assert gl.load_data(tmp_path / "m.csv").values.tolist() == [canonical(smiles) for smiles in MOLECULES]
    with pytest.raises(gl.GenloomError, match=r"cannot write molecule samples to m.txt; use a .smi or .png or .csv "
                                              r"path"):
        codec.save_samples(MOLECULES, tmp_path / "m.txt")
    assert not (tmp_path / "many.png").exists() and not (tmp_path / "m.txt").exists()


def test_a_property_follows_the_tokens_scaled_over_the_training_range_and_designs_read_it_back():
    codec = MoleculeCodec("selfies", property="QED").fit(_data())
    qed = codec.property_values(MOLECULES)
    assert codec.property_range == (pytest.approx(qed.min()), pytest.approx(qed.max()))
    x = codec.encode(MOLECULES)
    assert x.shape == (len(MOLECULES), codec.length + 1) and codec.layout.property_position == codec.length
    assert x[qed.argmin(), -1] == pytest.approx(-1) and x[qed.argmax(), -1] == pytest.approx(1)
    assert torch.equal(x[:, :-1].long(), MoleculeCodec("selfies").fit(_data()).encode(MOLECULES))
    assert codec.decode(x) == MoleculeCodec("selfies").fit(_data()).decode(x[:, :-1].long())
    designs = codec.designed(x)
    np.testing.assert_allclose(designs["QED"], qed)
    np.testing.assert_allclose(designs["QED (the model's estimate)"], qed, atol=1e-6)  # the slot, scaled back
    again = MoleculeCodec.from_json(json.loads(json.dumps(codec.to_json())))
    assert again.property == "QED" and torch.allclose(again.encode(MOLECULES), x)
    with pytest.raises(gl.GenloomError, match="no molecule property 'toxicity'; properties: logP, SA, QED, weight"):
        MoleculeCodec(property="toxicity")
