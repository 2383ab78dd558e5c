"""Reading corpora: a .txt file, a folder of .txt files, or .jsonl with a text field."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import GenloomError

DOCUMENT_SEPARATOR = "\n\n"


def read_text(path: Path, encoding: str = "utf-8", errors: str = "strict") -> str:
    """A text file's contents; undecodable bytes are an error that names their offset."""
    raw = path.read_bytes()
    try:
        return raw.decode(encoding, errors=errors)
    except UnicodeDecodeError as error:
        raise GenloomError(f"{path} is not valid {encoding}: byte 0x{raw[error.start]:02x} at offset {error.start}; "
                           "pass encoding= (CLI: --encoding latin-1) or errors='replace' (CLI: --errors replace)") from None
    except LookupError:
        raise GenloomError(f"unknown text encoding '{encoding}'; use e.g. utf-8, latin-1 or cp1252") from None


def read_text_folder(folder: Path, encoding: str = "utf-8", errors: str = "strict") -> str:
    """All .txt files of a folder, in name order, joined by blank lines."""
    files = sorted(folder.glob("*.txt"))
    return DOCUMENT_SEPARATOR.join(read_text(f, encoding, errors) for f in files)


def read_jsonl(path: Path, field: str = "text", encoding: str = "utf-8", errors: str = "strict") -> str:
    """The `field` of every line of a JSON-lines file, joined by blank lines."""
    texts = []
    for number, line in enumerate(read_text(path, encoding, errors).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise GenloomError(f"{path}, line {number}: not JSON ({error.msg}); write one JSON object per line") from None
        if not isinstance(record, dict) or not isinstance(record.get(field), str):
            raise GenloomError(f"{path}, line {number}: no text field '{field}'; pass text_field= (CLI: --text-field)")
        texts.append(record[field])
    return DOCUMENT_SEPARATOR.join(texts)
