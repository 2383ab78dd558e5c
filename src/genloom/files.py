"""Atomic file writes: a crash never leaves a half-written file where a good one was."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import GenloomError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        _move_into_place(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _move_into_place(temporary: Path, final: Path) -> None:
    """Flush a written temporary file to disk, then rename it over `final` (the rename makes it visible whole)."""
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, final)


@contextmanager
def atomic_files(paths: Iterable[str | Path]) -> Iterator[list[Path]]:
    """Temporary paths beside `paths`, moved over them together only if the block succeeds (a set of files that
    belong together: none is replaced if any fails); a path the block leaves unwritten is removed, as a file of an
    earlier set that no longer belongs."""
    finals = [Path(path) for path in paths]
    temporaries = [path.with_name(f".{path.name}.tmp-{os.getpid()}") for path in finals]
    try:
        yield temporaries
        for temporary, final in zip(temporaries, finals):
            if temporary.exists():
                _move_into_place(temporary, final)
            else:
                final.unlink(missing_ok=True)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a new temporary folder beside `path`; rename it to `path` (absent, or an empty folder) only if the
    block succeeds, else remove it with what it holds."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.mkdir()
    try:
        yield tmp
        if path.is_dir():
            path.rmdir()  # empty: checked before any work
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_writable(path: str | Path, folder: bool = False) -> None:
    """Refuse, before any work, a file (or with `folder`, a folder) that cannot be written there: its nearest
    existing folder must take a new file (tried for real, so a read-only mount counts even for root)."""
    path = Path(path).absolute()
    if folder and path.exists() and not path.is_dir():
        raise GenloomError(f"cannot write the folder {path}: a file of that name is there; choose another path")
    folder = next(parent for parent in (path, *path.parents) if parent.exists())
    if folder == path and path.is_file():  # a file to be replaced: its folder must take the new one
        folder = path.parent
    if not folder.is_dir():
        raise GenloomError(f"cannot write {path}: {folder} is a file, not a folder; choose another path")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise GenloomError(f"cannot write {path}: {folder} is not writable ({error.strerror or error}); "
                           "choose another folder") from None


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically, indented for people to read."""
    write_text(path, json.dumps(obj, indent=2) + "\n")
