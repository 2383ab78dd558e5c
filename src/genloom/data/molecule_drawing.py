"""Molecules drawn with RDKit: a grid of structure drawings (an invalid string gets an empty cell that says so),
for sample files, reports and the evaluation's pictures."""
from __future__ import annotations

from typing import Sequence

from PIL import Image, ImageDraw

from ..errors import GenloomError
from .molecules import parsed
from .sample_files import SampleWriter

MAX_DRAWN = 400   # molecules in one drawing; more belong in a .smi file
CELL = 200        # pixels per molecule, each way


def _cell(smiles: str) -> Image.Image:
    """One molecule drawn under its SMILES (shortened); a string that is not one, said so in words."""
    from rdkit.Chem import Draw

    legend = smiles if len(smiles) <= 28 else smiles[:26] + "..."
    molecule = parsed(smiles)
    if molecule is not None:
        return Draw.MolToImage(molecule, size=(CELL, CELL), legend=legend).convert("RGB")
    cell = Image.new("RGB", (CELL, CELL), "white")
    sketch = ImageDraw.Draw(cell)
    sketch.text((CELL // 2, CELL // 2 - 10), "not a molecule", fill=(170, 30, 30), anchor="mm")
    sketch.text((CELL // 2, CELL - 14), legend or "(empty)", fill=(90, 90, 90), anchor="mm")
    return cell


def draw_molecules(smiles: Sequence[str], per_row: int = 8) -> Image.Image:
    """One image of the molecules in rows of `per_row`, each under its SMILES."""
    columns = max(1, min(per_row, len(smiles)))
    drawing = Image.new("RGB", (columns * CELL, -(-len(smiles) // columns) * CELL), "white")
    for index, text in enumerate(smiles):
        drawing.paste(_cell(text), ((index % columns) * CELL, (index // columns) * CELL))
    return drawing


class DrawingWriter(SampleWriter):
    """Molecules drawn into one PNG."""

    writes_pngs = True

    def open(self) -> None:
        if self.total > MAX_DRAWN:
            raise GenloomError(f"a drawing holds at most {MAX_DRAWN} molecules; write {self.total:,} samples to a "
                               ".smi file")
        self.molecules: list[str] = []

    def append(self, chunk: Sequence[str]) -> None:
        self.molecules.extend(chunk)

    def finish(self) -> None:
        drawing = draw_molecules(self.molecules)
        self.save_png(drawing, self.tmp, self.path.name)

    def record_provenance(self) -> None:
        """In the PNG already."""
