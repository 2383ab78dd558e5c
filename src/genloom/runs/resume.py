"""What may be trained into a run folder: a new run into a free folder, or more training of a run that
kept its trainer state, on the same data. Everything is refused before any file is touched."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..choice import AUTO
from ..data.codec import Codec
from ..data.dataset import Dataset
from ..data.loaders import load_data, load_source
from ..errors import GenloomError
from ..train.config import TrainConfig
from ..train.loop import METRICS_FILE, STATE_FILE
from .folder import read_run
from .record import ADAPTER_CONFIG, CONFIG_FILE, WEIGHTS_FILE


RUN_FILES = (CONFIG_FILE, ADAPTER_CONFIG, WEIGHTS_FILE, STATE_FILE, METRICS_FILE)  # what marks a folder as taken


def check_free_folder(path: Path, hint: str = "") -> None:
    """A new run or adapter goes into a folder that holds none, nor what is left of one (a trainer state or
    metrics of an interrupted run would be taken for its own)."""
    taken = [name for name in RUN_FILES if (path / name).exists()]
    if taken:
        raise GenloomError(f"{path} already holds a run (or what is left of one: {', '.join(taken)}); "
                           f"{hint}choose another output folder")


def check_new_run(path: Path | None, resume: bool) -> None:
    """A new run (not resumed) must not overwrite one."""
    if not resume and path is not None:
        check_free_folder(path, "pass resume=True (CLI: --resume) to continue it, or ")


def read_run_to_resume(path: Path | None, family: str) -> tuple[dict[str, Any], Codec]:
    """The record and codec of the run to continue; a run whose weights are final (no trainer state) is
    refused, so that more training never replaces a finished model."""
    if path is None:
        raise GenloomError("resume needs the run's folder: pass out= (CLI: --out)")
    if not (path / CONFIG_FILE).exists():
        raise GenloomError(f"nothing was saved in {path}: training stopped before it wrote its run, or never "
                           "started there; start it anew (without resume=True; CLI: drop --resume)")
    if (path / WEIGHTS_FILE).exists() and not (path / STATE_FILE).exists():
        raise GenloomError(f"the run in {path} has no {STATE_FILE} to resume from and its weights are final; "
                           "train into a new output folder (CLI: --out) instead")
    record, codec = read_run(path)
    if family != AUTO and record["family"] != family:
        raise GenloomError(f"the run in {path} was trained with family '{record['family']}', not '{family}'; "
                           f"resume it with --family {record['family']}")
    try:
        TrainConfig.from_options(record["train"], "training setting")
    except GenloomError as error:
        raise GenloomError(f"{path / CONFIG_FILE}: {error}") from None
    return record, codec


def check_same_data(record: dict[str, Any], data: Dataset) -> None:
    """A resumed run trains on the data it started with."""
    seen = (record["data"]["kind"], record["data"]["name"], record["data"]["examples"])
    if (data.kind, data.name, len(data)) != seen:
        raise GenloomError(f"this data ({data.name}, {len(data)} {data.kind}) differs from the data the run was "
                           f"trained on ({seen[1]}, {seen[2]} {seen[0]}); resume with the same data")


def starting_point(path: Path | None, resume: bool, family: str, data: Any) -> tuple[dict | None, Codec | None, Dataset]:
    """What `fit` starts from: the record and codec of the run to resume (None, None for a new run) and the data
    (anything load_data takes; a resumed run may leave it out), all checked before anything is written."""
    record, codec = read_run_to_resume(path, family) if resume else (None, None)
    check_new_run(path, resume)
    if data is None and record is None:
        raise GenloomError("no data given: name a built-in data set, a folder or a file")
    dataset = load_data(data) if data is not None else load_source(record["data"]["source"])
    if record is not None:
        check_same_data(record, dataset)
    return record, codec, dataset
