"""Reading a run folder's config and codec, with one-line errors for folders that are not runs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .data import CODECS, Codec
from .errors import GenloomError

REQUIRED = {"family": str, "family_options": dict, "codec": str, "data": dict, "train": dict}


def is_gpt2_checkpoint(path: Path) -> bool:
    """A Hugging Face GPT-2 folder rather than a genloom run."""
    try:
        return json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type") == "gpt2"
    except (OSError, ValueError, AttributeError):
        return False


def read_run(path: str | Path) -> tuple[dict[str, Any], Codec]:
    """A run's config.json and its codec rebuilt from codec.json."""
    path = Path(path)
    if not path.is_dir():
        raise GenloomError(f"{path} is not a folder; give the folder a training run was written to")
    try:
        record = json.loads((path / "config.json").read_text(encoding="utf-8"))
        codec_state = json.loads((path / "codec.json").read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise GenloomError(f"{path} is not a genloom run (no {Path(error.filename).name}); "
                           "give the folder written by `genloom train --out`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GenloomError(f"{path}: the run's config is damaged ({error}); train the run again") from None
    if not isinstance(record, dict):
        raise GenloomError(f"{path}/config.json is not a genloom run config; train the run again")
    for key, kind in REQUIRED.items():
        if not isinstance(record.get(key), kind):
            raise GenloomError(f"{path}/config.json lacks '{key}'; it was not written by genloom")
    if record["codec"] not in CODECS:
        raise GenloomError(f"{path} uses codec '{record['codec']}', which this genloom does not have; "
                           f"known: {', '.join(sorted(CODECS))}")
    try:
        return record, CODECS[record["codec"]].from_json(codec_state)
    except (KeyError, TypeError, ValueError) as error:
        raise GenloomError(f"{path}/codec.json is damaged ({type(error).__name__}: {error}); train the run again") from None
