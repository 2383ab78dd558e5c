"""Metrics of generated molecules as MOSES defines them (Polykovskiy et al. 2020), computed with RDKit: validity,
uniqueness@k, novelty, internal diversity, the medicinal-chemistry filters, similarity to the nearest reference
molecule, the Frechet ChemNet Distance (fcd_torch) and the distance between property distributions.

Written here rather than called from the molsets wheel: its metrics module no longer imports (it needs
`rdkit.six` and pandas' DataFrame.append, both removed); tests/metrics/test_molecules.py checks these against it
with those two shimmed back."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from ..data.molecules import PROPERTY_NAMES, chemistry, molecule_property, parsed, structural_filters
from ..errors import note
from .report import new_figure, save_figure

if TYPE_CHECKING:
    from rdkit.Chem import Mol

UNIQUE_AT = (1000, 10000)   # MOSES' uniqueness@k: distinct molecules among the first k valid ones
FINGERPRINT_BITS = 1024     # Morgan fingerprints of radius 2 (ECFP4), as MOSES'
REFERENCE_MOLECULES = 10_000  # reference molecules the distances are measured against (a seeded draw, if more)
ALLOWED_ATOMS = {"C", "N", "S", "O", "F", "Cl", "Br", "H"}  # MOSES' filters: the atoms of drug-like molecules
LARGEST_RING = 7            # and rings of at most 7 atoms


@dataclass
class Molecules:
    """The valid ones among generated strings: canonical SMILES and RDKit molecules, in the order generated."""

    smiles: list[str]
    molecules: list[Mol]
    total: int  # strings generated, valid or not

    @classmethod
    def of(cls, strings: Sequence[str]) -> Molecules:
        Chem = chemistry()
        pairs = [(Chem.MolToSmiles(molecule), molecule) for molecule in map(parsed, strings) if molecule is not None]
        return cls([smiles for smiles, _ in pairs], [molecule for _, molecule in pairs], len(strings))

    @property
    def validity(self) -> float:
        return len(self.smiles) / self.total if self.total else 0.0


def unique_at(smiles: Sequence[str], k: int) -> float:
    """The share of distinct molecules among the first k canonical SMILES."""
    first = smiles[:k]
    return len(set(first)) / len(first)


def novelty(smiles: Sequence[str], training: set[str]) -> float:
    """The share of distinct generated molecules that are not training molecules."""
    distinct = set(smiles)
    return len(distinct - training) / len(distinct)


def fingerprints(molecules: Sequence[Mol]) -> np.ndarray:
    """(N, 1024) Morgan fingerprint bits of radius 2."""
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=FINGERPRINT_BITS)
    return np.stack([generator.GetFingerprintAsNumPy(molecule) for molecule in molecules]).astype(np.uint8)


def _tanimoto_rows(rows: np.ndarray, columns: np.ndarray, batch: int = 4096):
    """Tanimoto similarities of `rows` against all `columns`, a block of rows at a time."""
    right = torch.from_numpy(columns).float()
    right_counts = right.sum(1)
    for start in range(0, len(rows), batch):
        left = torch.from_numpy(rows[start:start + batch]).float()
        shared = left @ right.T
        union = left.sum(1, keepdim=True) + right_counts - shared
        yield torch.where(union > 0, shared / union.clamp_min(1), torch.ones_like(shared))  # two empty sets: alike


def internal_diversity(bits: np.ndarray, p: int = 1) -> float:
    """1 - the mean over molecules of their (power-p mean) Tanimoto similarity to every molecule of the set, itself
    included: MOSES' IntDiv (p=1) and IntDiv2 (p=2)."""
    means = torch.cat([similarity.pow(p).mean(1).pow(1 / p) for similarity in _tanimoto_rows(bits, bits)])
    return 1 - means.mean().item()


def nearest_similarity(bits: np.ndarray, reference: np.ndarray) -> float:
    """The mean over molecules of the Tanimoto similarity to their nearest reference molecule: MOSES' SNN."""
    return torch.cat([similarity.max(1).values for similarity in _tanimoto_rows(bits, reference)]).mean().item()


def filter_patterns() -> list[Mol]:
    """MOSES' medicinal-chemistry (MCF) and PAINS substructures, from the files the set-up extracts."""
    Chem = chemistry()
    mcf, pains = structural_filters()
    with open(mcf, newline="", encoding="utf-8") as handle:
        smarts = [row["smarts"] for row in csv.DictReader(handle)]
    with open(pains, newline="", encoding="utf-8") as handle:  # no header: SMARTS, name
        smarts += [row[0] for row in csv.reader(handle) if row]
    return [Chem.MolFromSmarts(pattern) for pattern in smarts]


def passes_filters(molecule: Mol, patterns: Sequence[Mol]) -> bool:
    """Whether a molecule passes MOSES' filters: drug-like atoms only, no charge, no ring of 8 atoms or more, none
    of the MCF or PAINS substructures (matched with explicit hydrogens)."""
    Chem = chemistry()
    if any(len(ring) > LARGEST_RING for ring in molecule.GetRingInfo().AtomRings()):
        return False
    atoms = molecule.GetAtoms()
    if any(atom.GetFormalCharge() != 0 or atom.GetSymbol() not in ALLOWED_ATOMS for atom in atoms):
        return False
    with_hydrogens = Chem.AddHs(molecule)
    if any(with_hydrogens.HasSubstructMatch(pattern) for pattern in patterns):
        return False
    flat = Chem.MolToSmiles(molecule, isomericSmiles=False)
    return bool(flat) and parsed(flat) is not None


def property_values(molecules: Sequence[Mol], names: Sequence[str] = PROPERTY_NAMES) -> dict[str, np.ndarray]:
    """Each property of each molecule."""
    functions = {name: molecule_property(name) for name in names}
    return {name: np.array([function(molecule) for molecule in molecules]) for name, function in functions.items()}


def frechet_chemnet_distance(smiles: Sequence[str], reference: Sequence[str]) -> float | None:
    """The Frechet distance between ChemNet's activations of two sets (Preuer et al. 2018), by fcd_torch with
    the weights inside its package; None, with a note, where fcd_torch is not installed."""
    try:
        from fcd_torch import FCD
    except ImportError:
        note("the Frechet ChemNet Distance needs fcd_torch (pip install 'genloom[molecules]'): left out")
        return None
    with torch.random.fork_rng():  # its data loader draws from torch's global generator
        return float(FCD(device="cpu", n_jobs=1)(list(smiles), list(reference)))


def reference_sample(smiles: Sequence[str], seed: int, size: int = REFERENCE_MOLECULES) -> list[str]:
    """At most `size` of the reference molecules, drawn once with `seed`."""
    if len(smiles) <= size:
        return list(smiles)
    chosen = np.sort(np.random.default_rng(seed).choice(len(smiles), size, replace=False))
    return [smiles[i] for i in chosen]


def molecule_scores(generated: Sequence[str], reference: Sequence[str], training: set[str] | None,
                    ) -> tuple[dict[str, float], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """MOSES' metrics of generated strings against reference molecules (held out) and the training molecules
    (novelty: left out when they are unknown); also each property of both sets, for the pictures."""
    made, real = Molecules.of(generated), Molecules.of(reference)
    scores = {"validity": made.validity}
    if not made.smiles:
        return scores, {}, {}
    for k in (k for k in UNIQUE_AT if k <= len(made.smiles)):
        scores[f"unique@{k}"] = unique_at(made.smiles, k)
    scores["unique"] = unique_at(made.smiles, len(made.smiles))
    if training is not None:
        scores["novelty"] = novelty(made.smiles, training)
    bits, reference_bits = fingerprints(made.molecules), fingerprints(real.molecules)
    scores["int_div1"], scores["int_div2"] = internal_diversity(bits, 1), internal_diversity(bits, 2)
    patterns = filter_patterns()
    scores["filters"] = float(np.mean([passes_filters(molecule, patterns) for molecule in made.molecules]))
    scores["snn"] = nearest_similarity(bits, reference_bits)
    fcd = frechet_chemnet_distance(made.smiles, real.smiles) if len(made.smiles) > 1 else None  # two for a covariance
    if fcd is not None:
        scores["fcd"] = fcd
    from scipy.stats import wasserstein_distance

    made_properties, real_properties = property_values(made.molecules), property_values(real.molecules)
    for name in PROPERTY_NAMES:
        scores[f"{name}_wasserstein"] = float(wasserstein_distance(real_properties[name], made_properties[name]))
    return scores, real_properties, made_properties


def property_histograms(real: dict[str, np.ndarray], made: dict[str, np.ndarray], path: Path) -> Path:
    """One panel per property: held-out molecules against generated ones."""
    figure = new_figure(figsize=(3.2 * len(real), 2.8))
    for index, name in enumerate(real, start=1):
        axes = figure.add_subplot(1, len(real), index)
        values = np.concatenate([real[name], made[name]])
        bins = np.linspace(values.min(), values.max(), 31)
        axes.hist(real[name], bins=bins, alpha=0.55, density=True, label="held-out")
        axes.hist(made[name], bins=bins, alpha=0.55, density=True, label="generated")
        axes.set_title(name)
        axes.set_yticks([])
    figure.axes[0].legend(fontsize=8)
    return save_figure(figure, path)
