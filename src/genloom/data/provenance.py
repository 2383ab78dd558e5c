"""Where a sample file came from: the run, its configuration's hash, the seed, genloom's version, the time and a
SHA-256 of the content, carried in a PNG's own text chunk or, for other files, in a sidecar FILE.provenance.json;
and the check that the content is still what was written.

A PNG's digest covers its pixels (mode, size and bytes), not the file, whose bytes include the chunk itself; any
other file's covers its bytes. A PNG may also carry a signed C2PA manifest (content_credentials.py)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from PIL import Image, PngImagePlugin

from ..errors import GenloomError
from ..files import write_text

PNG_KEY = "genloom-provenance"
SIDECAR_SUFFIX = ".provenance.json"
PROVENANCE_FIELD = "provenance"  # in a JSON document (the server's responses)


def image_digest(image: Image.Image) -> str:
    """SHA-256 of an image's mode, size and pixels."""
    return hashlib.sha256(f"{image.mode} {image.size[0]}x{image.size[1]}\n".encode() + image.tobytes()).hexdigest()


def bytes_digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def json_digest(value: Any) -> str:
    """SHA-256 of a JSON value in its canonical form (keys sorted, no spaces, UTF-8)."""
    return bytes_digest(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def with_json_provenance(document: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON document with its provenance as the field "provenance", whose content_sha256 is the json_digest of
    the document without that field."""
    return {**document, PROVENANCE_FIELD: {**record, "content_sha256": json_digest(dict(document))}}


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def png_info(image: Image.Image, record: Mapping[str, Any]) -> PngImagePlugin.PngInfo:
    """The text chunk that carries `record` and the image's digest, for Image.save(..., pnginfo=...)."""
    info = PngImagePlugin.PngInfo()
    info.add_text(PNG_KEY, json.dumps({**record, "content_sha256": image_digest(image)}))
    return info


def png_record(image: Image.Image) -> dict[str, Any] | None:
    """The provenance an open PNG carries in its text chunk, or None."""
    text = getattr(image, "text", {}).get(PNG_KEY)
    return json.loads(text) if text is not None else None


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def write_sidecar(path: Path, record: Mapping[str, Any]) -> Path:
    """FILE.provenance.json beside a finished file: `record` and the file's digest."""
    write_text(sidecar(path), json.dumps({**record, "file": path.name, "content_sha256": file_digest(path)},
                                         indent=2) + "\n")
    return sidecar(path)


def check_provenance(path: str | Path) -> tuple[dict[str, Any], bool]:
    """A file's provenance record and whether its content still matches the digest written with it."""
    path = Path(path)
    if not path.is_file():
        raise GenloomError(f"{path} is not a file; name a sample file (a PNG, or a file with a {SIDECAR_SUFFIX} "
                           "beside it)")
    if path.suffix.lower() == ".png":
        with Image.open(path) as image:
            record = png_record(image)
            if record is not None:
                return record, record.get("content_sha256") == image_digest(image.copy())
    if path.suffix.lower() == ".json":
        record = _json_record(path)
        if record is not None:
            return record
    if sidecar(path).is_file():
        record = json.loads(sidecar(path).read_text(encoding="utf-8"))
        return record, record.get("content_sha256") == file_digest(path)
    raise GenloomError(f"{path} carries no genloom provenance: no {PNG_KEY} text chunk and no "
                       f"{sidecar(path).name} beside it")


def _json_record(path: Path) -> tuple[dict[str, Any], bool] | None:
    """The provenance field of a JSON document and whether the rest still matches it; None if it has none."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get(PROVENANCE_FIELD), dict):
        return None
    record = document.pop(PROVENANCE_FIELD)
    return record, record.get("content_sha256") == json_digest(document)
