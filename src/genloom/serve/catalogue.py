"""The runs a server may answer for: named by their folder, found by name without leaving the served folders,
loaded when first asked for, kept under a bound, and loaded again when rewritten on disk."""
from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import GenloomError
from ..runs.record import (ADAPTER_CONFIG, ADAPTER_WEIGHTS, CONFIG_FILE, EMA_FILE, WEIGHTS_FILE, is_adapter,
                           is_gpt2_checkpoint, read_adapter_record, read_record)

if TYPE_CHECKING:
    from ..model import Model

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
STAMPED_FILES = (CONFIG_FILE, WEIGHTS_FILE, EMA_FILE, ADAPTER_CONFIG, ADAPTER_WEIGHTS)


class UnknownRun(GenloomError):
    """No run of that name is served (HTTP 404)."""


class DamagedRun(GenloomError):
    """The run exists but cannot be read (HTTP 503): its files are missing or damaged."""


def is_run(path: Path) -> bool:
    """A folder genloom can load: a run, a LoRA adapter or a GPT-2 checkpoint."""
    return path.is_dir() and ((path / CONFIG_FILE).exists() or is_adapter(path) or is_gpt2_checkpoint(path))


@dataclass(frozen=True)
class RunSummary:
    """What the run list shows of a run, read from its record without loading weights."""

    name: str
    family: str | None
    kind: str | None
    final_metrics: dict[str, Any]
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        shown = {"name": self.name, "family": self.family, "kind": self.kind, "final_metrics": self.final_metrics}
        return shown | ({"problem": self.problem} if self.problem else {})


def summarise(name: str, path: Path) -> RunSummary:
    """The run's family, data kind and final metrics; a damaged run says what is wrong instead."""
    if is_gpt2_checkpoint(path) and not is_adapter(path):
        return RunSummary(name, "autoregressive", "text", {})
    try:
        record = read_adapter_record(path)[0] if is_adapter(path) else read_record(path)
    except GenloomError as error:
        return RunSummary(name, None, None, {}, str(error))
    return RunSummary(name, record["family"], record["data"]["kind"], record.get("final_metrics") or {})


class RunCatalogue:
    """Runs by name: each argument is a run (served under its folder's name) or a folder of runs (each served
    under its own name, runs added later included). Loaded models are shared by all requests."""

    def __init__(self, paths: list[str | Path], max_loaded: int = 4, device: str = "cpu"):
        self.max_loaded, self.device = max_loaded, device
        self.runs: dict[str, Path] = {}      # runs given one by one
        self.folders: list[Path] = []        # folders whose runs are served
        for given in map(Path, paths):
            if not given.is_dir():
                raise GenloomError(f"{given} is not a folder; give run folders or folders of runs to serve")
            if is_run(given):
                self._add_run(given)
            else:
                self.folders.append(given.resolve())
        if not self.runs and not any(is_run(child) for folder in self.folders for child in folder.iterdir()):
            raise GenloomError(f"no runs in {', '.join(map(str, paths)) or 'nothing'}; give folders written by "
                               "`genloom train --out`, or folders that hold them")
        self._loaded: OrderedDict[str, tuple[tuple, Model]] = OrderedDict()
        self._lock = threading.Lock()

    def _add_run(self, path: Path) -> None:
        name = path.resolve().name
        if not NAME.fullmatch(name):
            raise GenloomError(f"run folder {path} cannot be served under its name {name!r}; rename it with "
                               "letters, digits, '.', '_' or '-'")
        if name in self.runs:
            raise GenloomError(f"two runs are named {name!r} ({self.runs[name]} and {path}); rename one")
        self.runs[name] = path.resolve()

    def names(self) -> list[str]:
        """Every served run's name, sorted; a run given by itself hides a folder's run of the same name."""
        found = {child.name for folder in self.folders for child in folder.iterdir()
                 if NAME.fullmatch(child.name) and self._inside(child, folder) and is_run(child)}
        return sorted(found | set(self.runs))

    def path(self, name: str) -> Path:
        """The folder of run `name`; an UnknownRun for a name that is not served or that leads out of the
        served folders ('..', a path, a symbolic link to elsewhere)."""
        if name in self.runs:
            return self.runs[name]
        if NAME.fullmatch(name):
            for folder in self.folders:
                if self._inside(folder / name, folder) and is_run(folder / name):
                    return (folder / name).resolve()
        raise UnknownRun(f"no run named {name!r} is served; GET /v1/runs lists them")

    @staticmethod
    def _inside(path: Path, folder: Path) -> bool:
        return path.resolve().parent == folder

    def summary(self, name: str) -> RunSummary:
        return summarise(name, self.path(name))

    def model(self, name: str) -> Model:
        """The loaded model of run `name`, loaded now if it is not in memory or its files changed on disk."""
        from ..model import load

        path = self.path(name)
        stamp = _stamp(path)
        with self._lock:
            cached = self._loaded.get(name)
            if cached is not None and cached[0] == stamp:
                self._loaded.move_to_end(name)
                return cached[1]
        # loaded outside the lock: a run taking seconds to load must not hold up requests for the others
        try:
            model = load(path, device=self.device)
        except GenloomError as error:
            raise DamagedRun(f"run {name!r} cannot be loaded: {error}") from None
        except (OSError, ValueError, RuntimeError, KeyError) as error:  # safetensors and torch on torn files
            raise DamagedRun(f"run {name!r} cannot be loaded: its files are damaged ({error}); "
                             "train or save it again") from None
        with self._lock:
            self._loaded[name] = (stamp, model)
            self._loaded.move_to_end(name)
            while len(self._loaded) > self.max_loaded:
                self._loaded.popitem(last=False)
        return model

    def loaded(self) -> list[str]:
        """Names of the runs in memory, least recently used first."""
        return list(self._loaded)


def _stamp(path: Path) -> tuple:
    """Changes whenever the files a model is loaded from are rewritten."""
    stamps = []
    for name in STAMPED_FILES:
        try:
            stat = (path / name).stat()
        except OSError:
            continue
        stamps.append((name, stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)
