"""Experiment trackers: a fit's numbers, samples and record sent to TensorBoard or MLflow as well as to its run
folder. The run folder stays the record: a tracker that fails mid-run warns once and stops, and the training
goes on without it."""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlparse

from .errors import GenloomError, warn
from .extras import require
from .files import check_writable

TEXT_SAMPLE_ROWS = 20  # rows of a table sample shown as text


def hyperparameters(record: dict[str, Any]) -> dict[str, Any]:
    """The run's settings as flat name -> scalar pairs: the family, the data, the family's and training options."""
    flat = {"family": record["family"], "data": record["data"]["name"], "data_kind": record["data"]["kind"]}
    for section in ("family_options", "train"):
        for name, value in record.get(section, {}).items():
            if isinstance(value, (bool, int, float, str)):
                flat[f"{section}.{name}"] = value
    return flat


def numbers(line: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a metrics.jsonl line, but its step."""
    return {key: float(value) for key, value in line.items()
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)}


class Tracker:
    """What a fit tells a tracker: the start (the record as config.json has it), every metrics.jsonl line,
    every sample file the run writes, and the end (the final record, the run folder complete)."""

    name = "tracker"

    def start(self, run_dir: Path, record: dict[str, Any]) -> None:
        pass

    def metrics(self, line: dict[str, Any]) -> None:
        pass

    def samples(self, step: int, path: Path) -> None:
        pass

    def finish(self, run_dir: Path, record: dict[str, Any]) -> None:
        pass

    def abort(self) -> None:
        """The fit stopped with an error: close what was opened."""


@dataclass
class TensorBoard(Tracker):
    """Scalars (losses, learning rate, validation numbers, steps/s), sample grids as images, text and table
    samples as text, and the hyper-parameters with the final metrics; in `log_dir` (default: <run>/tensorboard)."""

    log_dir: str | Path | None = None
    name = "tensorboard"
    writer: Any = field(default=None, init=False, repr=False)
    last: tuple[float, float] | None = field(default=None, init=False, repr=False)  # (step, elapsed) of a line

    def __post_init__(self) -> None:
        require("tensorboard", "tracking", "--tensorboard")
        if self.log_dir is not None:
            check_writable(self.log_dir, folder=True)

    def start(self, run_dir: Path, record: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.log_dir or run_dir / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(record, indent=1, default=str) + "\n```", 0)

    def metrics(self, line: dict[str, Any]) -> None:
        step = line["step"]
        values = numbers(line)
        if "elapsed" in values:  # steps/s over the stretch since the last line that had a time
            if self.last is not None and values["elapsed"] > self.last[1] and step > self.last[0]:
                self.writer.add_scalar("steps_per_s", (step - self.last[0]) / (values["elapsed"] - self.last[1]), step)
            self.last = (step, values["elapsed"])
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def samples(self, step: int, path: Path) -> None:
        if path.suffix == ".png":
            import numpy as np
            from PIL import Image

            with Image.open(path) as image:
                self.writer.add_image("samples", np.asarray(image.convert("RGB")), step, dataformats="HWC")
        elif path.suffix == ".csv":
            rows = path.read_text(encoding="utf-8").splitlines()[:TEXT_SAMPLE_ROWS + 1]
            self.writer.add_text("samples", "```\n" + "\n".join(rows) + "\n```", step)
        elif path.suffix == ".txt":
            self.writer.add_text("samples", "```\n" + path.read_text(encoding="utf-8") + "\n```", step)

    def finish(self, run_dir: Path, record: dict[str, Any]) -> None:
        final = {f"final/{key}": float(value) for key, value in record.get("final_metrics", {}).items()}
        for key, value in final.items():
            self.writer.add_scalar(key, value, record["steps_trained"])
        # beside the scalars, in the same folder: TensorBoard's HParams tab lists the run with its final metrics
        self.writer.add_hparams(hyperparameters(record), final, run_name=".", global_step=record["steps_trained"])
        self.writer.close()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class MLflow(Tracker):
    """A run in MLflow: the settings as parameters, every logged number per step, the samples, the final
    metrics, the run folder as artifacts and the model card as the description. The store is
    `tracking_uri`, else MLFLOW_TRACKING_URI, else MLflow's default (./mlflow.db, artifacts in ./mlruns)."""

    tracking_uri: str | None = None
    experiment: str = "genloom"
    name = "mlflow"
    client: Any = field(default=None, init=False, repr=False)
    run_id: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        require("mlflow", "tracking", "--mlflow")

    def start(self, run_dir: Path, record: dict[str, Any]) -> None:
        from mlflow import MlflowClient
        from mlflow.entities import Param

        uri = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        check_reachable(uri)
        self.client = MlflowClient(uri)
        experiment = self.client.get_experiment_by_name(self.experiment)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(self.experiment)
        run = self.client.create_run(experiment_id, run_name=run_dir.name,
                                     tags={"genloom.run_dir": str(run_dir.absolute())})
        self.run_id = run.info.run_id
        params = [Param(key, str(value)[:500]) for key, value in hyperparameters(record).items()]
        self.client.log_batch(self.run_id, params=params)

    def metrics(self, line: dict[str, Any]) -> None:
        self._log_numbers(numbers(line), line["step"])

    def samples(self, step: int, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path), "samples")

    def finish(self, run_dir: Path, record: dict[str, Any]) -> None:
        self._log_numbers({f"final_{key}": value for key, value in record.get("final_metrics", {}).items()},
                          record["steps_trained"])
        card = run_dir / "MODEL_CARD.md"
        if card.exists():
            self.client.set_tag(self.run_id, "mlflow.note.content", card.read_text(encoding="utf-8"))
        self.client.log_artifacts(self.run_id, str(run_dir), "run")
        self.client.set_terminated(self.run_id)

    def abort(self) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status="FAILED")

    def _log_numbers(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now, step) for key, value in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)


def check_reachable(uri: str | None, timeout: float = 3.0) -> None:
    """An MLflow server that does not answer is found out in seconds (MLflow's own client retries for minutes)."""
    if uri is None or urlparse(uri).scheme not in ("http", "https"):
        return
    parts = urlparse(uri)
    try:
        socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)),
                                 timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(f"the MLflow server at {uri} does not answer ({error.strerror or error})") from None


TRACKERS: dict[str, type[Tracker]] = {"tensorboard": TensorBoard, "mlflow": MLflow}


def make_tracker(spec: str | Tracker) -> Tracker:
    """A tracker from its name ("tensorboard", "mlflow") or as given."""
    if isinstance(spec, Tracker):
        return spec
    if spec not in TRACKERS:
        raise GenloomError(f"unknown tracker {spec!r}; choose from {', '.join(TRACKERS)} (or pass a Tracker)")
    return TRACKERS[spec]()


class Trackers:
    """The trackers of one fit behind one guard: whatever a tracker raises (a server gone, a disk full) is a
    warning, after which that tracker is dropped; the training and its run folder never depend on one."""

    def __init__(self, specs: Iterable[str | Tracker] = ()):
        self.active = [make_tracker(spec) for spec in specs]

    def __bool__(self) -> bool:
        return bool(self.active)

    def _each(self, method: str, *args: Any) -> None:
        for tracker in list(self.active):
            try:
                getattr(tracker, method)(*args)
            except Exception as error:  # noqa: BLE001 - any failure of a tracker must not stop the training
                self.active.remove(tracker)
                warn(f"{tracker.name} tracking stopped: {' '.join(str(error).split())[:300]}; the run folder "
                     "keeps everything")
                if method != "abort":
                    try:
                        tracker.abort()
                    except Exception:  # noqa: BLE001 - it already failed once; nothing more to say
                        pass

    def start(self, run_dir: Path, record: dict[str, Any]) -> None:
        self._each("start", run_dir, record)

    def metrics(self, line: dict[str, Any]) -> None:
        self._each("metrics", line)

    def samples(self, step: int, path: Path) -> None:
        self._each("samples", step, path)

    def finish(self, run_dir: Path, record: dict[str, Any]) -> None:
        self._each("finish", run_dir, record)

    def abort(self) -> None:
        self._each("abort")

