"""Molecules as SMILES strings: reading .smi files and tables with a SMILES column, parsing them with RDKit
(canonical form, randomised forms for augmentation), and the MOSES benchmark set the set-up extracts."""
from __future__ import annotations

import gzip
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np

from ..errors import GenloomError, warn
from ..extras import require
from .dataset import Dataset

if TYPE_CHECKING:
    from rdkit.Chem import Mol

# `make install` extracts MOSES (Polykovskiy et al. 2020) from the molsets wheel into this folder: train, test and
# test_scaffolds .csv.gz (one SMILES column), and the structural filters (mcf.csv, wehi_pains.csv)
MOSES_FOLDER = Path(__file__).parent / "builtin_data" / "moses"
MOSES_SUBSET = 250_000  # molecules of the built-in `moses`: a fixed random share of the 1,584,663 (moses-full: all)
SMILES_COLUMNS = ("smiles", "SMILES", "Smiles")  # a table column that holds molecules


def chemistry() -> ModuleType:
    """RDKit's Chem module, or a one-line error naming the extra that brings it."""
    return require("rdkit.Chem", "molecules", "molecules")


def parsed(smiles: str) -> Mol | None:
    """RDKit's molecule of a SMILES string, None when it is not one (RDKit's complaint kept off the terminal)."""
    Chem = chemistry()  # first: a missing RDKit is a one-line error
    from rdkit import rdBase

    with rdBase.BlockLogs():
        return Chem.MolFromSmiles(smiles) if smiles else None


def canonical(smiles: str) -> str | None:
    """The canonical SMILES of a molecule (one string per molecule, whatever form it was written in), or None."""
    molecule = parsed(smiles)
    return chemistry().MolToSmiles(molecule) if molecule is not None else None


def _sa_score(molecule: Mol) -> float:
    from rdkit.Contrib.SA_Score import sascorer  # RDKit's contribution (Ertl & Schuffenhauer 2009)

    return sascorer.calculateScore(molecule)


def _property_functions() -> dict[str, Callable[[Mol], float]]:
    """What MOSES compares between generated and reference molecules: name -> RDKit's function."""
    chemistry()  # first: a missing RDKit is a one-line error
    from rdkit.Chem import QED, Crippen, Descriptors

    return {"logP": Crippen.MolLogP, "SA": _sa_score, "QED": QED.qed, "weight": Descriptors.MolWt}


PROPERTY_NAMES = ("logP", "SA", "QED", "weight")


def molecule_property(name: str) -> Callable[[Mol], float]:
    """RDKit's function for a property name (logP, SA, QED, weight), or a one-line error naming them; RDKit's
    warnings while it computes (QED's about lone hydrogens) are kept off the terminal."""
    functions = _property_functions()
    if name not in functions:
        raise GenloomError(f"no molecule property {name!r}; properties: {', '.join(functions)}")
    from rdkit import rdBase

    def value(molecule: Mol) -> float:
        with rdBase.BlockLogs():
            return functions[name](molecule)

    return value


def randomised(smiles: str, count: int, rng: np.random.Generator) -> list[str]:
    """`count` SMILES of one molecule, each from a random atom order (Bjerrum 2017's augmentation)."""
    Chem = chemistry()
    molecule = parsed(smiles)
    atoms = molecule.GetNumAtoms()
    forms = []
    for _ in range(count):
        order = [int(i) for i in rng.permutation(atoms)]
        forms.append(Chem.MolToSmiles(Chem.RenumberAtoms(molecule, order), canonical=False))
    return forms


def checked_molecules(smiles: Iterable[str], where: str) -> np.ndarray:
    """The canonical SMILES of those strings RDKit reads; the rest are counted and skipped with a warning (the
    first few named), and none readable is an error."""
    kept, bad = [], []
    for number, text in enumerate(smiles, start=1):
        form = canonical(text.strip()) if isinstance(text, str) else None
        if form is None:
            bad.append((number, text))
        else:
            kept.append(form)
    if bad and not kept:
        raise GenloomError(f"{where}: none of its {len(bad)} SMILES can be read by RDKit (first: {bad[0][1]!r}); "
                           "give one SMILES string per molecule")
    if bad:
        shown = ", ".join(f"#{number} {text!r}" for number, text in bad[:3])
        warn(f"{where}: skipped {len(bad)} of {len(bad) + len(kept)} SMILES that RDKit cannot read ({shown})")
    return np.array(kept, dtype=object)


def with_randomised(values: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Each molecule followed by `count` randomised SMILES of it."""
    rng = np.random.default_rng(seed)
    return np.array([form for smiles in values for form in [smiles, *randomised(smiles, count, rng)]], dtype=object)


def read_smi(path: Path) -> list[str]:
    """The first field of each line of a .smi file (a name may follow the SMILES), a header line left out."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise GenloomError(f"{path} is not UTF-8 text (byte at offset {error.start}); write one SMILES per line") \
            from None
    fields = [line.split()[0] for line in lines if line.strip()]
    return fields[1:] if fields and fields[0] in SMILES_COLUMNS else fields


def smiles_column(columns: Sequence[str]) -> str | None:
    """The column of a table that holds SMILES, if it has one."""
    return next((name for name in SMILES_COLUMNS if name in columns), None)


def molecules_dataset(smiles: Iterable[str], name: str, where: str, randomised_smiles: int = 0) -> Dataset:
    """A Dataset of the molecules RDKit reads among `smiles` (canonical), each followed by `randomised_smiles`
    randomised forms."""
    values = checked_molecules(smiles, where)
    if randomised_smiles:
        values = with_randomised(values, randomised_smiles)
    return Dataset("molecule", values, name)


def _moses_part(part: str) -> np.ndarray:
    path = MOSES_FOLDER / f"{part}.csv.gz"
    if not path.exists():  # 13 MB: `make install` extracts it from the molsets wheel on the package registry
        raise GenloomError(f"the built-in MOSES set is not installed: run `make install`, or put {part}.csv.gz from "
                           f"the molsets 0.3.1 wheel (moses/dataset/data/) at {path}")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        lines = handle.read().split()
    return np.array(lines[1:], dtype=object)  # its header: SMILES


def moses(part: str, subset: int | None = None) -> Dataset:
    """A MOSES split as curated (canonical RDKit SMILES already: not parsed again); `subset`: that many molecules
    drawn once with a fixed seed, the same on every machine."""
    values = _moses_part(part)
    if subset is not None:
        values = values[np.sort(np.random.default_rng(0).choice(len(values), subset, replace=False))]
    name = {"train": "moses-full" if subset is None else "moses", "test": "moses-test",
            "test_scaffolds": "moses-scaffolds"}[part]
    return Dataset("molecule", values, name, source={"source": name})


def structural_filters() -> tuple[Path, Path]:
    """MOSES' medicinal-chemistry and PAINS filter files (SMARTS), as the set-up extracted them."""
    files = (MOSES_FOLDER / "mcf.csv", MOSES_FOLDER / "wehi_pains.csv")
    missing = [path.name for path in files if not path.exists()]
    if missing:
        raise GenloomError(f"MOSES' filter files are not installed ({', '.join(missing)}): run `make install`, or "
                           f"put them from the molsets 0.3.1 wheel (moses/metrics/) in {MOSES_FOLDER}")
    return files
