"""Samples as HTTP bodies and posted examples as model input, per data kind: the one table the server consults,
so no route asks which kind it serves."""
from __future__ import annotations

import base64
import binascii
import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import GenloomError


@dataclass(frozen=True)
class Body:
    """A response body, its media type and any headers of its own."""

    content: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


Provenance = Mapping[str, Any]  # where samples come from (Model.provenance): every body carries it


def _png(image: np.ndarray, provenance: Provenance) -> bytes:
    from PIL import Image

    from ..data.provenance import png_info

    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", pnginfo=png_info(picture, provenance))
    return buffer.getvalue()


def _image_grid(images: np.ndarray, provenance: Provenance) -> Body:
    from ..data.images import grid_layout, image_grid
    from ..data.provenance import png_info

    grid = image_grid(images)
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG", pnginfo=png_info(grid, {**provenance, "grid": grid_layout(images)}))
    return Body(buffer.getvalue(), "image/png")


def _image_zip(images: np.ndarray, provenance: Provenance) -> Body:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
        for index, image in enumerate(images):
            archive.writestr(f"sample-{index:05d}.png", _png(image, {**provenance, "index": index}))
    return Body(buffer.getvalue(), "application/zip")


def _image_json(images: np.ndarray, provenance: Provenance) -> Body:
    encoded = [base64.b64encode(_png(image, {**provenance, "index": index})).decode("ascii")
               for index, image in enumerate(images)]
    return _json({"images": encoded, "media_type": "image/png"}, provenance)


def _with_header(content: bytes, media_type: str, provenance: Provenance) -> Body:
    """A body that is not JSON: its provenance goes in a header, with the digest of its bytes."""
    from ..data.provenance import bytes_digest

    record = json.dumps({**provenance, "content_sha256": bytes_digest(content)})
    return Body(content, media_type, {PROVENANCE_HEADER: record})


def _table_csv(rows: Any, provenance: Provenance) -> Body:
    return _with_header(rows.to_csv(index=False).encode("utf-8"), "text/csv; charset=utf-8", provenance)


def _table_json(rows: Any, provenance: Provenance) -> Body:
    return _json({"rows": json.loads(rows.to_json(orient="records", date_format="iso"))}, provenance)


def _text_json(texts: Any, provenance: Provenance) -> Body:
    return _json({"texts": list(texts)}, provenance)


def _molecule_json(molecules: Any, provenance: Provenance) -> Body:
    return _json({"molecules": list(molecules)}, provenance)


def _molecule_smi(molecules: Any, provenance: Provenance) -> Body:
    return _with_header("".join(smiles + "\n" for smiles in molecules).encode("utf-8"), "chemical/x-daylight-smiles",
                        provenance)


def _wav(wave: np.ndarray, rate: int) -> bytes:
    from ..data.signals import write_wav

    buffer = io.BytesIO()
    write_wav(buffer, wave, rate)
    return buffer.getvalue()


def _signal_rate(signals: Any) -> int:
    if not signals.rate:
        raise GenloomError("series without a sample rate are no WAV files; ask for format json")
    return signals.rate


def _signal_zip(signals: Any, provenance: Provenance) -> Body:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, wave in enumerate(signals.waves):
            archive.writestr(f"sample-{index:05d}.wav", _wav(wave, _signal_rate(signals)))
    return _with_header(buffer.getvalue(), "application/zip", provenance)


def _signal_json(signals: Any, provenance: Provenance) -> Body:
    """Each signal's values (a browser plays them through the Web Audio API), at the rate given."""
    return _json({"signals": [wave.round(5).tolist() for wave in signals.waves], "sample_rate": signals.rate},
                 provenance)


def _json(value: dict[str, Any], provenance: Provenance) -> Body:
    from ..data.provenance import with_json_provenance

    return Body(json.dumps(with_json_provenance(value, provenance)).encode("utf-8"), "application/json")


PROVENANCE_HEADER = "Genloom-Provenance"  # a CSV or SMILES body's provenance (JSON), its content_sha256 over its bytes


def _read_images(items: list[Any], codec: Any) -> np.ndarray:
    """Base64 image files (PNG, JPEG, ...) as uint8 (N, H, W, C) in the run's channels, converted as its
    training images were."""
    from ..data.images import image_pixels

    images = []
    for index, item in enumerate(items):
        try:
            data = base64.b64decode(item, validate=True)
            images.append(image_pixels(io.BytesIO(data), "L" if codec.channels == 1 else "RGB"))
        except (TypeError, ValueError, binascii.Error, GenloomError):
            raise GenloomError(f"examples[{index}] is not a base64-encoded PNG or JPEG image") from None
    if len({image.shape for image in images}) > 1:
        raise GenloomError("the posted images differ in size; send images of the run's one size")
    array = np.stack(images)
    return array[..., None] if array.ndim == 3 else array


def _read_rows(items: list[Any], codec: Any) -> Any:
    import pandas as pd

    if not all(isinstance(item, dict) for item in items):
        raise GenloomError("table examples are rows: JSON objects of column name to value")
    return pd.DataFrame(items)


def _read_texts(items: list[Any], codec: Any) -> list[str]:
    if not all(isinstance(item, str) for item in items):
        raise GenloomError("text examples are strings")
    return items


def _read_molecules(items: list[Any], codec: Any) -> list[str]:
    if not all(isinstance(item, str) for item in items):
        raise GenloomError("molecule examples are SMILES strings")
    return items


def _read_signals(items: list[Any], codec: Any) -> Any:
    """Lists of numbers, one a signal, at the run's rate."""
    from ..data.signals import Signals, as_signals

    if not all(isinstance(item, list) and all(isinstance(v, (int, float)) for v in item) for item in items):
        raise GenloomError("signal examples are lists of numbers, one list a signal, at the run's sample rate")
    return Signals(as_signals([np.asarray(item, dtype=np.float32) for item in items]).waves, codec.rate)


@dataclass(frozen=True)
class KindMedia:
    """How samples of one data kind are sent (by format name; the first is the default) and examples read."""

    formats: dict[str, Callable[[Any, Provenance], Body]]
    read_examples: Callable[[list[Any], Any], Any]  # (examples, the run's codec)

    def format(self, asked: str | None, kind: str) -> str:
        """The format asked for, or the default; a one-line error naming those that fit."""
        chosen = asked or next(iter(self.formats))
        if chosen not in self.formats:
            raise GenloomError(f"format {chosen!r} does not fit {kind} samples; choose {', '.join(self.formats)}")
        return chosen


MEDIA = {
    "image": KindMedia({"png": _image_grid, "zip": _image_zip, "json": _image_json}, _read_images),
    "table": KindMedia({"csv": _table_csv, "json": _table_json}, _read_rows),
    "text": KindMedia({"json": _text_json}, _read_texts),
    "molecule": KindMedia({"json": _molecule_json, "smi": _molecule_smi}, _read_molecules),
    "signal": KindMedia({"zip": _signal_zip, "json": _signal_json}, _read_signals),
}
