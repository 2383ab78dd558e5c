"""The documentation site builds in strict mode (every warning an error), and strict mode catches a broken link."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install 'genloom[docs]'")
pytest.importorskip("material", reason="the docs extra is not installed: pip install 'genloom[docs]'")
pytest.importorskip("mkdocstrings", reason="the docs extra is not installed: pip install 'genloom[docs]'")

ROOT = Path(__file__).parents[1]


def build_strict(cwd: Path, site: Path) -> subprocess.CompletedProcess:
    # NO_MKDOCS_2_WARNING: the Material theme's banner about its future, which is no warning of this build
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def test_site_builds_strict_with_the_api_reference(tmp_path):
    site = tmp_path / "site"
    result = build_strict(ROOT, site)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}\n{result.stdout}"
    assert (site / "index.html").is_file()
    reference = (site / "reference" / "index.html").read_text(encoding="utf-8")
    assert "sample_to" in reference  # a Model method: mkdocstrings rendered the docstrings
    assert (site / "families" / "diffusion" / "index.html").is_file()


def test_strict_build_fails_on_a_broken_link(tmp_path):
    shutil.copy2(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    # the snippets' base path (benchmarks/results) and mkdocstrings' source path (src) as in the checkout
    shutil.copytree(ROOT / "benchmarks" / "results", tmp_path / "benchmarks" / "results",
                    ignore=shutil.ignore_patterns("*.png", "*.json", "*.jsonl", "*.npz"))
    (tmp_path / "src").symlink_to(ROOT / "src", target_is_directory=True)
    with open(tmp_path / "docs" / "metrics.md", "a", encoding="utf-8") as page:
        page.write("\nSee also [a page that is not there](no-such-page.md).\n")
    result = build_strict(tmp_path, tmp_path / "site")
    output = result.stderr + result.stdout
    assert result.returncode != 0, f"a broken link passed the strict build:\n{output}"
    assert "no-such-page.md" in output, output
