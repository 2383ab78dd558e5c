"""Reading a run folder's config and codec, with one-line errors for folders that are not runs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import GenloomError


def read_run_config(path: str | Path) -> dict[str, Any]:
    """config.json with the codec state from codec.json added as 'codec_state'."""
    path = Path(path)
    if not path.is_dir():
        raise GenloomError(f"{path} is not a folder; give the folder a training run was written to")
    try:
        record = json.loads((path / "config.json").read_text(encoding="utf-8"))
        record["codec_state"] = json.loads((path / "codec.json").read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise GenloomError(f"{path} is not a genloom run (no {Path(error.filename).name}); "
                           "give the folder written by `genloom train --out`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GenloomError(f"{path}: the run's config is damaged ({error}); train the run again") from None
    for key in ("family", "family_options", "codec", "data", "train"):
        if key not in record:
            raise GenloomError(f"{path}/config.json lacks '{key}'; it was not written by genloom")
    return record
