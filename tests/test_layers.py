"""Imports go down the layers: a family never sees pandas or PIL, a codec never sees a family."""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "genloom"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


@pytest.mark.parametrize("folder, forbidden", [
    ("families", ("PIL", "pandas", "..data", "..train", "..metrics", "..model")),
    ("nets", ("PIL", "pandas", "..data", "..families", "..train", "..model")),
    ("data", ("..families", "..nets", "..train", "..model")),
    ("train", ("PIL", "pandas", "..data", "..metrics", "..model")),
])
def test_layer_imports(folder, forbidden):
    for path in (SRC / folder).glob("*.py"):
        bad = {name for name in _imports(path) if name.startswith(forbidden)}
        assert not bad, f"{path.name} imports {bad}"
