"""Imports go down the layers, for every module of the package: a family never sees pandas, PIL or a codec,
a codec never sees a family, and nothing below the Model knows the Model. And importing genloom (or starting
its command) loads none of the heavy libraries and changes nothing outside it."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "genloom"

# Each part of the package and its layer: a module may import from its own part and from lower layers only.
LAYERS = {
    "errors": 0,
    "options": 1, "layout": 1, "files": 1, "extras": 1,
    "data": 2, "nets": 2,
    "families": 3,
    "train": 4,
    "metrics": 5,
    "defaults": 6,
    "choice": 7,
    "runs": 8,
    "finetune": 9, "distill": 9, "tracking": 9,
    "model": 10, "augmentation_check": 10,
    "evaluation": 11, "export": 11, "anomaly": 11, "augmentation": 11, "compare": 11, "detector": 11, "reward": 11,
    "serve": 12,
    "cli": 13, "__init__": 13,
    "__main__": 14,
}
THIRD_PARTY_FORBIDDEN = {"families": ("PIL", "pandas"), "nets": ("PIL", "pandas"), "train": ("PIL", "pandas")}


def _part(module: str) -> str:
    """'genloom.data.table_codec' -> 'data'; 'genloom' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[str]:
    """Every module `path` imports (relative imports resolved), at any depth of the file."""
    package = ".".join(("genloom", *path.relative_to(SRC).with_suffix("").parts))
    if path.name == "__init__.py":
        package = package.removesuffix(".__init__") + ".__init__"
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names.append(node.module)
            else:
                base = package.split(".")[:-node.level]
                names.append(".".join(base + ([node.module] if node.module else [])))
    return names


MODULES = sorted(SRC.rglob("*.py"))


def test_every_part_has_a_layer():
    parts = {path.relative_to(SRC).parts[0].removesuffix(".py") for path in MODULES}
    assert parts == set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(SRC)))
def test_imports_go_down_the_layers(path):
    own = path.relative_to(SRC).parts[0].removesuffix(".py")
    for name in _imports(path):
        if name.split(".")[0] != "genloom":
            assert not name.startswith(THIRD_PARTY_FORBIDDEN.get(own, ())), f"{path.name} imports {name}"
            continue
        other = _part(name) if name != "genloom" else "__init__"
        if other == "__init__" and own != "__init__":
            continue  # `from .. import __version__`: the package's version, which imports nothing
        assert other == own or LAYERS[other] < LAYERS[own], f"{path.relative_to(SRC)} ({own}) imports {name} ({other})"


@pytest.mark.parametrize("statement, forbidden", [
    ("import genloom.cli", ("torch", "pandas", "sklearn", "sdmetrics", "matplotlib", "scipy", "genloom.model")),
    ("import genloom", ("torch", "pandas", "matplotlib", "numpy")),
    ("import genloom.runs.record, genloom.metrics.report", ("torch", "pandas", "matplotlib")),
])
def test_starting_up_loads_nothing_heavy(statement, forbidden):
    """The import graph, not the time: `genloom --help` and `genloom info` need none of these."""
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    assert not {name for name in loaded if name.split(".")[0] in forbidden or name in forbidden}


def test_table_reports_leave_the_plotting_backend_alone(tmp_path):
    """A notebook user's matplotlib backend is theirs: drawing a table run's figures must not switch it."""
    code = ("import matplotlib; matplotlib.use('svg'); import genloom as gl, pandas as pd; "
            "table = pd.DataFrame({'x': [float(i % 7) for i in range(60)], 'c': ['a', 'b', 'c'] * 20}); "
            f"gl.Model('vae').fit(table, steps=3, out={str(tmp_path / 'run')!r}, progress=False); "
            f"gl.evaluate({str(tmp_path / 'run')!r}, table, progress=False); "
            "import matplotlib.pyplot as plt; print(matplotlib.get_backend())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "svg" and list((tmp_path / "run").rglob("*.png"))


def test_image_runs_load_and_save_without_matplotlib(trained_run, tmp_path):
    """Grids are drawn with Pillow and the loss curve with pygal: an image run never pays matplotlib's import."""
    code = (f"import sys, genloom as gl; gl.load({trained_run!r}).save({str(tmp_path / 'copy')!r}); "
            "print('matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False" and (tmp_path / "copy" / "loss_curve.svg").exists()
