"""Loading any folder a model can be read from: a genloom run, a LoRA adapter (and its base run), or a
Hugging Face GPT-2 checkpoint; the first format that recognises the folder reads it."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .adapter import read_adapter
from .folder import LoadedRun, load_run_folder
from .gpt2 import read_gpt2
from .record import is_adapter, is_gpt2_checkpoint

FORMATS: list[tuple[Callable[[Path], bool], Callable[[Path, str], LoadedRun]]] = [
    (is_adapter, read_adapter),
    (is_gpt2_checkpoint, read_gpt2),
    (lambda path: True, load_run_folder),
]


def load_run(path: str | Path, device: str = "cpu") -> LoadedRun:
    """The model parts of the folder at `path`; no pickled code is read."""
    path = Path(path)
    read = next(read for recognises, read in FORMATS if recognises(path))
    return read(path, device)
