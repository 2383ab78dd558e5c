import numpy as np
import pytest
import torch
from rdkit import Chem, RDLogger

import genloom as gl
from genloom.data.dataset import Dataset
from genloom.data.molecule_codec import END, MoleculeCodec, smiles_tokens
from genloom.data.smiles_grammar import smiles_grammar, smiles_role

# every construct of the syntax the grammar rules on: branches nested and in a row, ring closures (two-digit, after
# a bond, two on one atom), bracket atoms, bonds after a branch's open and close
SYNTAX = ["CCO", "CC(C)(C)C(=O)O", "CC(C(C)C)O", "c1ccccc1", "C1CC2CCC1C2", "C%10CCCCC%10", "C=1CCCCC=1",
          "O=C(Nc1ccc(Cl)cc1)C#N", "c1cc[nH]c1", "C(=O)(O)c1ccc2c(c1)CC2", "[NH3+]CC([O-])=O", "C/C=C/C"]
VOCABULARY = [END, *sorted({token for smiles in SYNTAX for token in smiles_tokens(smiles)})]


def allowed_after(prefix: str) -> set[str]:
    grammar = smiles_grammar(VOCABULARY, END)
    ids = torch.tensor([[VOCABULARY.index(token) for token in smiles_tokens(prefix)]], dtype=torch.long)
    mask = grammar(ids, len(VOCABULARY) + 2)  # a start token and a class token past the vocabulary
    assert not mask[0, len(VOCABULARY):].any()
    return {VOCABULARY[i] for i in mask[0, :len(VOCABULARY)].nonzero().flatten().tolist()}


def test_roles_of_smiles_tokens():
    assert [smiles_role(token, END) for token in [END, "C", "Cl", "[nH]", "c", "=", "#", "/", "(", ")", "1", "%10",
                                                  "."]] == \
        ["end", "atom", "atom", "atom", "atom", "bond", "bond", "bond", "open", "close", "ring", "ring", "other"]


@pytest.mark.parametrize("prefix, may, may_not", [
    ("", {"C", "c", "[nH]"}, {END, "(", ")", "=", "1"}),  # a molecule starts with an atom
    ("CC(", {"C", "="}, {END, ")", "(", "1"}),  # an open branch needs an atom
    ("CC(C", {")", "(", "1", "="}, {END}),  # ... and a close before the end
    ("CC(C)", {"C", "(", "=", END}, {")", "1"}),  # closed: it may end; a ring closure must follow an atom
    ("c1cccc", {"c", "1", "2"}, {END, ")"}),  # ring 1 is open: no end yet, but it may close
    ("c1ccccc1", {END, "c", "2"}, {")"}),
    ("C=", {"C", "1"}, {END, "=", "(", ")"}),  # a bond wants an atom (or a ring closure after an atom)
    ("C(=", {"C", "O"}, {"1", END, ")", "="}),  # ... but not a ring closure after a branch's open
])
def test_known_answers(prefix, may, may_not):
    allowed = allowed_after(prefix)
    assert may <= allowed and not may_not & allowed


def test_after_the_end_only_ends():
    grammar = smiles_grammar(VOCABULARY, END)
    prefix = torch.tensor([[VOCABULARY.index("C"), VOCABULARY.index("O"), 0]])
    assert grammar(prefix, len(VOCABULARY)).nonzero()[:, 1].tolist() == [0]


def test_no_token_of_real_molecules_is_forbidden():
    """Every token of every real molecule is allowed after the tokens before it, and so is its end: the grammar
    only ever removes strings that are not SMILES."""
    molecules = np.array([*SYNTAX, *gl.load_data("moses-test").values[:3000]], dtype=object)
    codec = MoleculeCodec().fit(Dataset("molecule", molecules, "molecules"))
    ids = codec.encode(molecules)
    ended = torch.zeros(len(ids), dtype=torch.bool)
    for position in range(ids.shape[1]):
        allowed = codec.layout.grammar(ids[:, :position], len(codec.vocabulary) + 1)
        assert (allowed[torch.arange(len(ids)), ids[:, position]] | ended).all(), position
        ended |= ids[:, position] == 0


def test_sampling_with_the_grammar_writes_only_well_formed_smiles(molecule_run, tmp_path):
    """An untrained model draws near-uniform tokens: without the grammar few of its strings are SMILES; with it
    every string that ended is one (RDKit parses it without sanitising: syntax, not chemistry)."""
    RDLogger.DisableLog("rdApp.*")
    model = gl.load(molecule_run)
    untrained = gl.Model("autoregressive", n_layer=1, n_head=2, n_embd=16)
    (tmp_path / "m.smi").write_text("\n".join(gl.load_data("moses-test").values[:500]), encoding="utf-8")
    untrained.fit(tmp_path / "m.smi", steps=1, lr=1e-9, batch_size=8, progress=False)

    def parsed_share(samples):
        return np.mean([Chem.MolFromSmiles(smiles, sanitize=False) is not None for smiles in samples])

    free = untrained.sample(200, seed=0, progress=False, grammar=False)
    held = untrained.sample(200, seed=0, progress=False)
    length = untrained.codec.length
    ended = [smiles for smiles in held if len(smiles_tokens(smiles)) < length]
    assert parsed_share(free) < 0.3 and len(ended) > 20
    assert parsed_share(ended) == 1.0
    # the trained model loses nothing it had: its strings are as often molecules with the grammar as without
    assert parsed_share(model.sample(200, seed=1, progress=False)) >= parsed_share(
        model.sample(200, seed=1, progress=False, grammar=False))
