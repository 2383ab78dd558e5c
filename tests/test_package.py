"""genloom as a package: `python -m build` makes a wheel and an sdist, and the wheel, installed into a fresh
virtual environment (its dependencies, torch among them, taken from this one), trains and samples from the
command line, so it carries its built-in data and the studio's files."""
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import genloom

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "CHANGELOG.md", "MANIFEST.in", "src")


def run(*command, cwd=None):
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, cwd=cwd, timeout=600)
    assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The wheel and sdist, built from a copy of the sources (the checkout is left as it is)."""
    tree = tmp_path_factory.mktemp("tree")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, tree / name)
    out = tree / "dist"
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, tree)
    return out


def test_the_sdist_and_wheel_carry_the_data_and_the_studio(dist):
    wheel, = dist.glob(f"genloom-{genloom.__version__}-py3-none-any.whl")
    sdist, = dist.glob(f"genloom-{genloom.__version__}.tar.gz")
    files = set(zipfile.ZipFile(wheel).namelist())
    assert {"genloom/data/builtin_data/tinyshakespeare.txt", "genloom/data/builtin_data/adult.csv.gz",
            "genloom/serve/studio/index.html", "genloom/cli.py"} <= files
    metadata = zipfile.ZipFile(wheel).read(f"genloom-{genloom.__version__}.dist-info/METADATA").decode()
    for extra in ("serve", "tracking", "docs", "bench", "export", "privacy", "all"):
        assert f"Provides-Extra: {extra}" in metadata
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert any(name.endswith("builtin_data/tinyshakespeare.txt") for name in names)
    assert any(name.endswith("CHANGELOG.md") for name in names)


def test_the_wheel_trains_and_samples_in_a_fresh_environment(dist, tmp_path):
    wheel, = dist.glob("*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python, command = venv / "bin" / "python", venv / "bin" / "genloom"
    # the dependencies (torch, numpy, ...) from this environment, as plain paths: not its .pth files, so this
    # checkout's editable genloom stays out and the wheel's is the only one
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel)
    assert run(python, "-c", "import genloom; print(genloom.__file__)").startswith(str(venv))
    assert run(command, "--version").strip() == f"genloom {genloom.__version__}"
    out = run(command, "train", "digits", "--family", "vae", "--steps", 5, "--out", tmp_path / "run", "--quiet",
              "--latent-dim", 4, "--width", 8)
    assert "trained vae on digits for 5 steps" in out
    run(command, "sample", tmp_path / "run", "-n", 4, "-o", tmp_path / "samples.png")
    assert (tmp_path / "samples.png").stat().st_size > 0
    assert "shakespeare" in run(command, "train", "--help")
