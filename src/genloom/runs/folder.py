"""genloom run folders: the record, the codec and the weights read back into networks, and written out with
the run's pages. No pickled code is ever read: weights are safetensors, everything else JSON."""
from __future__ import annotations

import copy
import platform
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from .. import __version__
from ..data.codec import Codec, codec_class
from ..data.dataset import Dataset
from ..defaults import stored_family_config
from ..errors import GenloomError
from ..families import build_family
from ..families.base import Family
from ..files import check_writable, write_json, write_text
from ..metrics.report import write_model_card, write_report
from ..nets.lora import merge_lora
from ..options import Options
from ..train.checkpoint import load_weights, save_weights
from ..train.config import TrainConfig
from ..train.device import resolve_device
from ..train.loop import BEST_FILE, METRICS_FILE, STATE_FILE, read_metrics
from .record import (ANOMALY_REFERENCE_FILE, CODEC_FILE, CONFIG_FILE, EMA_FILE, RUN_FOLDER, WEIGHTS_FILE, read_json,
                     read_record)

TRAINER_FILES = (METRICS_FILE, STATE_FILE, BEST_FILE)  # what the training loop keeps in a run folder
# what a run folder keeps beside its weights and record, carried along when the run is saved elsewhere
CARRIED_FILES = TRAINER_FILES + (ANOMALY_REFERENCE_FILE,)


@dataclass
class LoadedRun:
    """Everything a Model is made of, as read from disk."""

    record: dict[str, Any]
    codec: Codec
    config: Options          # the family's options
    net: Family              # the trained weights
    ema_net: Family          # their moving average, used for sampling
    path: Path


def read_run(path: str | Path) -> tuple[dict[str, Any], Codec]:
    """A run's config.json and its codec rebuilt from codec.json."""
    path = Path(path)
    record = read_record(path)
    state = read_json(path / CODEC_FILE, "a genloom run", RUN_FOLDER)
    try:
        codec = codec_class(record["codec"])
    except GenloomError as error:
        raise GenloomError(f"{path / CONFIG_FILE}: {error}") from None
    try:
        return record, codec.from_json(state)
    except GenloomError as error:
        raise GenloomError(f"{path / CODEC_FILE}: {error}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise GenloomError(f"{path / CODEC_FILE} is damaged ({type(error).__name__}: {error}); train the run "
                           "again") from None


def build_networks(record: dict[str, Any], codec: Codec, device: str = "cpu") -> tuple[Options, Family, Family]:
    """The family's options and freshly initialised networks (weights and their average) for a run record."""
    try:
        config = stored_family_config(record["family"], record["family_options"])
        net = build_family(record["family"], codec.layout, config).to(resolve_device(device)).eval()
    except GenloomError as error:
        raise GenloomError(f"the run's config.json does not describe a model this genloom can build: {error}") from None
    return config, net, copy.deepcopy(net)


def load_run_folder(path: Path, device: str = "cpu") -> LoadedRun:
    """A saved run with its weights; a run whose training did not finish, or whose weight average is gone,
    is refused with what to do."""
    record, codec = read_run(path)
    if not (path / WEIGHTS_FILE).exists():
        raise GenloomError(f"{path} has no {WEIGHTS_FILE}: its training did not finish; "
                           f"continue it with `genloom train --resume --out {path}`")
    ema_decay = record["train"].get("ema_decay", 0)
    if not (path / EMA_FILE).exists() and ema_decay:
        raise GenloomError(f"{path} lacks {EMA_FILE}, the weight average it samples from (ema_decay {ema_decay}); "
                           "restore the file, or train the run again")
    config, net, ema_net = build_networks(record, codec, device)
    check_weights_fit(path, codec, net)
    load_weights(net, path / WEIGHTS_FILE)
    load_weights(ema_net, path / (EMA_FILE if (path / EMA_FILE).exists() else WEIGHTS_FILE))  # equal without EMA
    return LoadedRun(record, codec, config, net, ema_net, path)


def check_weights_fit(path: Path, codec: Codec, net: Family) -> None:
    """Refuse weights of another shape than the codec implies, naming both shapes (a codec.json that belongs
    to another run), before torch's own message would."""
    expected = {name: tuple(tensor.shape) for name, tensor in net.state_dict().items()}
    try:
        with safe_open(str(path / WEIGHTS_FILE), framework="pt") as weights:
            found = {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}
    except (SafetensorError, OSError) as error:
        raise GenloomError(f"{path / WEIGHTS_FILE} cannot be read ({error}); the file is damaged") from None
    for name, shape in expected.items():  # the first layer that differs, in the network's order
        if name in found and found[name] != shape:
            shape, expected_shape = found[name], shape
            layout = codec.layout
            data = "x".join(map(str, layout.shape)) if layout.shape else f"{layout.vocab_size} tokens"
            raise GenloomError(f"{path}: the weights in {WEIGHTS_FILE} do not fit the model that config.json and "
                               f"codec.json describe ({layout.kind} data of {data}): {name} is "
                               f"{'x'.join(map(str, shape))} in the file, {'x'.join(map(str, expected_shape))} for "
                               "that model; were config.json or codec.json changed by hand?")


def new_record(family: str, config: Options, codec: Codec, data: Dataset, train: TrainConfig) -> dict[str, Any]:
    """The record (config.json) of a run about to train: everything needed to rebuild it, and the versions."""
    layout = codec.layout
    return {"genloom_version": __version__, "family": family, "family_options": asdict(config), "codec": codec.kind,
            "data": {"name": data.name, "kind": data.kind, "examples": len(data), "shape": list(layout.shape),
                     "classes": layout.num_classes, "source": data.source,
                     **({"personal_data": data.personal_data} if data.personal_data else {})},
            "train": asdict(train), "steps_trained": 0,
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}}


def is_own_run(path: Path | None, record: dict[str, Any]) -> bool:
    """Whether `path` holds the genloom run this record describes (not an imported checkpoint, not an adapter):
    the one folder its pages and evaluations may be written to."""
    return (path is not None and (path / CONFIG_FILE).exists() and "imported_from" not in record
            and "adapter" not in record)


def check_save_target(path: Path, own: Path | None) -> None:
    """A model is saved into a new folder or over its own run, never over another run, adapter or checkpoint."""
    check_writable(path, folder=True)
    taken = any((path / name).exists() for name in (CONFIG_FILE, "adapter.json"))
    if taken and (own is None or path.resolve() != own.resolve()):
        raise GenloomError(f"{path} already holds a run, an adapter or a checkpoint; save into another folder")


def write_config(path: Path, record: dict[str, Any], codec: Codec) -> None:
    """config.json and codec.json: all that is needed to rebuild the model (and to resume its training)."""
    write_json(path / CONFIG_FILE, record)
    write_json(path / CODEC_FILE, codec.to_json())


def write_pages(path: Path, record: dict[str, Any]) -> None:
    """report.html and MODEL_CARD.md, from the record."""
    write_report(path, record, read_metrics(path / METRICS_FILE))
    write_model_card(path, record)


def write_final_samples(codec: Codec, samples: Any, folder: Path) -> None:
    """samples/final.* in each of the codec's preview types (a folder of them for the suffix ""), replacing those an
    earlier write of the run left (a resumed run's)."""
    for suffix in codec.preview_suffixes:
        target = folder / f"final{suffix}"
        if target.is_dir():
            shutil.rmtree(target)
        codec.save_samples(samples, target)


def write_run(path: Path, record: dict[str, Any], codec: Codec, net: Family, ema_net: Family,
              final_samples: Any, previous: Path | None = None) -> None:
    """The whole run folder: the files it carries over from `previous` (where it trained), weights and
    their average (LoRA adapters merged in), codec, the final samples, config and pages."""
    path.mkdir(parents=True, exist_ok=True)
    if previous is not None and previous.resolve() != path.resolve():
        for name in CARRIED_FILES:
            if (previous / name).exists():
                shutil.copy2(previous / name, path / name)
        if (previous / "samples").exists():
            shutil.copytree(previous / "samples", path / "samples", dirs_exist_ok=True)
    metadata = {"family": record["family"], "genloom_version": record["genloom_version"]}
    save_weights(merge_lora(net), path / WEIGHTS_FILE, metadata)
    save_weights(merge_lora(ema_net), path / EMA_FILE, metadata)
    write_final_samples(codec, final_samples, path / "samples")
    for name, text in codec.files().items():
        write_text(path / name, text)
    write_config(path, record, codec)
    write_pages(path, record)

