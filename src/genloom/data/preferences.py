"""Preference pairs for preference tuning (DPO): a JSON-lines file of {"prompt", "chosen", "rejected"}, the
layout of Anthropic's HH-RLHF and of TRL's preference data sets; the prompt may be left out (molecules have none)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import GenloomError
from .text import read_text


@dataclass(frozen=True)
class PreferencePair:
    """One judgement: after `prompt`, `chosen` is preferred to `rejected`."""

    prompt: str
    chosen: str
    rejected: str


def preference_pairs(records: Iterable[Mapping[str, Any]], where: str) -> list[PreferencePair]:
    """Pairs from records with `chosen`, `rejected` and an optional `prompt`, each a string; a one-line error
    naming the first record that is not one, or an empty list of them."""
    pairs = []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, Mapping):
            raise GenloomError(f"{where}, record {number}: not an object; write {{\"prompt\": ..., \"chosen\": ..., "
                               "\"rejected\": ...}")
        missing = [key for key in ("chosen", "rejected") if not isinstance(record.get(key), str)]
        if missing or not isinstance(record.get("prompt", ""), str):
            named = " and ".join(map(repr, missing)) or "'prompt'"
            raise GenloomError(f"{where}, record {number}: no {named} string; each pair needs \"chosen\" and "
                               "\"rejected\" (and may have a \"prompt\")")
        pairs.append(PreferencePair(record.get("prompt", ""), record["chosen"], record["rejected"]))
    if not pairs:
        raise GenloomError(f"{where} holds no preference pairs; write one {{\"prompt\", \"chosen\", \"rejected\"}} "
                           "object per line")
    return pairs


def read_preferences(path: str | Path) -> list[PreferencePair]:
    """The pairs of a .jsonl file, one JSON object a line."""
    path = Path(path)
    if path.suffix.lower() != ".jsonl" or not path.is_file():
        raise GenloomError(f"{path}: preferences are a .jsonl file of {{\"prompt\", \"chosen\", \"rejected\"}} "
                           "objects, one a line")
    records = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise GenloomError(f"{path}, line {number}: not JSON ({error.msg}); write one object per line") \
                    from None
    return preference_pairs(records, str(path))
