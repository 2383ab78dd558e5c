"""A run's record (config.json): read and checked without building anything, so `genloom info` stays light."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import GenloomError
from ..layout import data_kind

CONFIG_FILE, CODEC_FILE = "config.json", "codec.json"
ADAPTER_CONFIG, ADAPTER_WEIGHTS = "adapter.json", "adapter.safetensors"
WEIGHTS_FILE, EMA_FILE = "model.safetensors", "ema.safetensors"
ANOMALY_REFERENCE_FILE = "anomaly_reference.safetensors"  # an anomaly detector's training codes (anomaly.py)
RUN_FOLDER = "give the folder written by `genloom train --out`"
REQUIRED = {"family": str, "family_options": dict, "codec": str, "data": dict, "train": dict}
REQUIRED_DATA = {"name": str, "kind": str, "examples": int, "shape": list, "source": dict}


def read_json(path: Path, what: str, fix: str = "") -> Any:
    """A JSON file, or a one-line error that says which file is missing or damaged (and `fix`, what to do)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenloomError(f"{path.parent} is not {what} (no {path.name}){'; ' + fix if fix else ''}") from None
    except IsADirectoryError:
        raise GenloomError(f"{path} is a folder, not a file; {path.parent} is not {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GenloomError(f"{path} is damaged ({type(error).__name__}: {error}); it cannot be read") from None
    except OSError as error:
        raise GenloomError(f"{path} cannot be read ({error.strerror or error})") from None


def read_record(path: str | Path) -> dict[str, Any]:
    """A run's config.json, checked for the keys a run needs; data kinds spelt as this genloom spells them."""
    path = Path(path)
    if not path.is_dir():
        raise GenloomError(f"{path} is not a folder; give the folder a training run was written to")
    record = read_json(path / CONFIG_FILE, "a genloom run", RUN_FOLDER)
    if not isinstance(record, dict):
        raise GenloomError(f"{path / CONFIG_FILE} is not a genloom run config; train the run again")
    for key, kind in REQUIRED.items():
        if not isinstance(record.get(key), kind):
            raise GenloomError(f"{path / CONFIG_FILE} lacks '{key}'; it was not written by genloom")
    for key, kind in REQUIRED_DATA.items():
        if not isinstance(record["data"].get(key), kind):
            raise GenloomError(f"{path / CONFIG_FILE} lacks 'data.{key}'; it was not written by genloom")
    record["codec"] = data_kind(record["codec"])
    record["data"]["kind"] = data_kind(record["data"]["kind"])
    return record


def is_adapter(path: Path) -> bool:
    """A LoRA adapter folder (adapter.json beside its tensors) rather than a run."""
    return (path / ADAPTER_CONFIG).exists()


def adapted_record(base: dict[str, Any], adapter: dict[str, Any]) -> dict[str, Any]:
    """The record of a base run with an adapter: its data is the adapter's (which evaluation scores on)."""
    data = adapter.get("data")
    data = {**base["data"], **data} if isinstance(data, dict) else base["data"]  # 0.1.0 kept only the name
    return {**base, "adapter": adapter, "data": data}


def read_adapter_record(path: Path) -> tuple[dict[str, Any], Path]:
    """An adapter's record (its base run's, with the adapter in it) and the base run's folder."""
    adapter = read_json(path / ADAPTER_CONFIG, "a LoRA adapter")
    if not isinstance(adapter, dict) or not isinstance(adapter.get("base"), str):
        raise GenloomError(f"{path / ADAPTER_CONFIG} names no base run; it was not written by genloom")
    base = path / adapter["base"]  # relative to the adapter (an absolute path stays as it is)
    if not base.is_dir():
        raise GenloomError(f"{path}: its base run {base} is not there; keep the adapter beside the run it adapts")
    return adapted_record(read_record(base), adapter), base


def is_gpt2_checkpoint(path: Path) -> bool:
    """A Hugging Face GPT-2 folder rather than a genloom run."""
    try:
        return json.loads((path / CONFIG_FILE).read_text(encoding="utf-8")).get("model_type") == "gpt2"
    except (OSError, ValueError, AttributeError):
        return False


def run_problems(path: Path, record: dict[str, Any]) -> list[str]:
    """What keeps a run (or an adapter's base run) from loading: a weights file that is missing or does not
    open whole (read without torch), or a damaged codec.json."""
    from safetensors import SafetensorError, safe_open

    problems = []
    if not (path / WEIGHTS_FILE).exists():
        problems.append(f"no {WEIGHTS_FILE}: training did not finish")
    if not (path / EMA_FILE).exists() and record["train"].get("ema_decay"):
        problems.append(f"no {EMA_FILE}: the weight average it samples from is gone")
    for weights in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="numpy"):
                pass
        except (SafetensorError, OSError) as error:
            problems.append(f"{weights.name} is damaged ({error})")
    try:
        read_json(path / CODEC_FILE, "a genloom run")
    except GenloomError as error:
        problems.append(str(error))
    return problems
