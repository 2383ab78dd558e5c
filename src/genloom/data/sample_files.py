"""Sample files, written chunk by chunk into a temporary file that replaces the target only when complete: any
number of samples streams to disk with one chunk in memory, and an interrupted write leaves nothing behind.
The file type comes from the suffix; each codec says which types its samples take."""
from __future__ import annotations

import json
import shutil
from abc import ABC, abstractmethod
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, ContextManager, Mapping

import numpy as np
from PIL import Image, PngImagePlugin

from ..errors import GenloomError
from ..files import atomic_folder, atomic_path, check_writable
from .images import grid_layout, grid_tiles, image_grid, read_image_file
from .provenance import png_info, png_record, write_sidecar

if TYPE_CHECKING:
    from .content_credentials import ContentSigner

MAX_GRID = 4096           # images in one PNG grid; more belong in an .npy
TEXT_SEPARATOR = "\n\n-----\n\n"


class SampleWriter(ABC):
    """`with Writer(path, total) as writer: writer.write(chunk)` for chunks that add up to `total` samples."""

    staging: ClassVar[Callable[[Path], ContextManager[Path]]] = staticmethod(atomic_path)  # where it writes first
    writes_pngs: ClassVar[bool] = False  # which C2PA Content Credentials can sign

    def __init__(self, path: Path, total: int, provenance: Mapping[str, Any] | None = None,
                 signer: ContentSigner | None = None):
        if signer is not None and not self.writes_pngs:
            raise GenloomError(f"C2PA Content Credentials are signed into PNG images, and {path.name} is not one "
                               "(its provenance goes in its sidecar): write PNGs, or sign nothing")
        self.path, self.total, self.written, self.bytes = path, total, 0, 0
        self.provenance = provenance  # where the samples come from (provenance.py), carried by the file
        self.signer = signer  # signs each PNG's C2PA manifest (content_credentials.py), if given
        self._stack = ExitStack()

    def __enter__(self) -> SampleWriter:
        self.check_target()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self._stack.enter_context(self.staging(self.path))
        self.open()
        return self

    def __exit__(self, kind: Any, error: BaseException | None, trace: Any) -> bool:
        failure = error
        if failure is None:
            try:
                self.finish()
            except BaseException as raised:  # noqa: BLE001  (an incomplete file must not replace one)
                failure = raised
        self.close()
        # renames the file into place, or, after any failure, removes it
        self._stack.__exit__(*((type(failure), failure, failure.__traceback__) if failure else (None, None, None)))
        if isinstance(failure, OSError):
            raise GenloomError(f"cannot write {self.path}: {failure.strerror or failure}") from None
        if failure is not None and failure is not error:
            raise failure
        if failure is None and self.provenance is not None:
            self.record_provenance()
        return False

    def check_target(self) -> None:
        check_writable(self.path)

    def write(self, chunk: Any) -> None:
        """Append a chunk of decoded samples, refusing, at the first, a file the disk cannot hold."""
        first, expected = self.written == 0, self.expected_size(chunk)
        if first and expected is not None:
            self.check_space(expected)
        self.append(chunk)
        self.written += len(chunk)
        if first and expected is None and self.written < self.total and self.tmp.exists():
            self.check_space(self.tmp.stat().st_size / self.written * self.total)  # measured on the first chunk

    def expected_size(self, chunk: Any) -> float | None:
        """The whole file's size, where it is known from the first chunk before writing; else None."""
        return None

    def check_space(self, size: float) -> None:
        """Refuse a file of `size` bytes that the disk cannot hold, saying how much it would take."""
        free = shutil.disk_usage(self.tmp.parent).free
        if size > free:
            raise GenloomError(f"{self.total:,} samples would take about {_size(size)} in {self.path.name}; "
                               f"{self.path.parent} has {_size(free)} free: ask for fewer")

    def open(self) -> None:
        """Start the temporary file (at self.tmp)."""

    @abstractmethod
    def append(self, chunk: Any) -> None:
        """Add a chunk to the temporary file."""

    def finish(self) -> None:
        """Complete the file once every chunk is in."""

    def close(self) -> None:
        """Release what `open` took, whether or not the file is complete."""

    def record_provenance(self) -> None:
        """Say where the finished file came from: a sidecar FILE.provenance.json (PNGs carry it inside)."""
        write_sidecar(self.path, self.provenance)

    def png_info(self, image: Image.Image, **facts: Any) -> PngImagePlugin.PngInfo | None:
        """The provenance chunk of a PNG this writer saves, with `facts` of this one PNG (its index among the
        samples, the layout of a grid), or None without provenance."""
        if self.provenance is None:
            return None
        return png_info(image, {**self.provenance, **facts})

    def save_png(self, image: Image.Image, path: Path, name: str, **facts: Any) -> None:
        """Save one PNG of the samples at `path` (in the staging place; `name`, the file's own): with its
        provenance chunk and, given a signer, its signed C2PA manifest."""
        image.save(path, format="PNG", pnginfo=self.png_info(image, **facts))
        if self.signer is not None:
            self.signer.sign(path, None if self.provenance is None else {**self.provenance, **facts}, title=name)


def _size(count: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1000
    return ""


class NpyWriter(SampleWriter):
    """Images as one uint8 array (N, H, W, C), filled in place."""

    def open(self) -> None:
        self.array: np.ndarray | None = None

    def expected_size(self, chunk: np.ndarray) -> float:
        return chunk[:1].nbytes * self.total

    def append(self, chunk: np.ndarray) -> None:
        if self.array is None:
            self.array = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=chunk.dtype,
                                                   shape=(self.total, *chunk.shape[1:]))
        self.array[self.written:self.written + len(chunk)] = chunk

    def finish(self) -> None:
        self.array.flush()

    def close(self) -> None:
        self.array = None  # unmapped before the rename or removal


class GridWriter(SampleWriter):
    """Images tiled into one PNG."""

    writes_pngs = True

    def open(self) -> None:
        if self.total > MAX_GRID:
            raise GenloomError(f"a PNG grid holds at most {MAX_GRID:,} images; write {self.total:,} samples to an .npy")
        self.chunks: list[np.ndarray] = []

    def append(self, chunk: np.ndarray) -> None:
        self.chunks.append(chunk)

    def finish(self) -> None:
        images = np.concatenate(self.chunks)
        grid = image_grid(images)
        self.save_png(grid, self.tmp, self.path.name, grid=grid_layout(images))

    def record_provenance(self) -> None:
        """In the PNG already."""


def read_png_samples(path: Path, mode: str) -> tuple[np.ndarray, list[str]]:
    """The images of a PNG as uint8 (N, H, W, C) in `mode` ("L" or "RGB") and their names: one image, or each
    image of a grid GridWriter wrote (its provenance says where they lie)."""
    pixels = read_image_file(path, mode)
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    with Image.open(path) as image:
        grid = (png_record(image) or {}).get("grid")
    if grid is None:
        return pixels[None], [str(path)]
    return grid_tiles(pixels, grid["images"], *grid["tile"]), [f"{path}[{i}]" for i in range(grid["images"])]


class FolderWriter(SampleWriter):
    """Images as numbered PNGs (000000.png, ...) in a new folder, which appears only when all are written."""

    staging = staticmethod(atomic_folder)
    writes_pngs = True

    def check_target(self) -> None:
        check_writable(self.path, folder=True)
        if self.path.is_dir() and any(self.path.iterdir()):
            raise GenloomError(f"{self.path} is a folder with files in it; write the images to a new or empty folder")

    def append(self, chunk: np.ndarray) -> None:
        for index, pixels in enumerate(chunk, start=self.written):
            image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
            name = f"{index:06d}.png"
            self.save_png(image, self.tmp / name, name, index=index)

    def record_provenance(self) -> None:
        """In each PNG already."""


class CsvWriter(SampleWriter):
    def append(self, chunk: Any) -> None:
        chunk.to_csv(self.tmp, mode="a", header=self.written == 0, index=False)


class ParquetWriter(SampleWriter):
    def open(self) -> None:
        self.writer = None

    def append(self, chunk: Any) -> None:
        import pyarrow as pa  # only for Parquet files
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(chunk, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class TextWriter(SampleWriter):
    """Texts separated by a rule."""

    def append(self, chunk: list[str]) -> None:
        with open(self.tmp, "a", encoding="utf-8") as handle:
            handle.write("".join((TEXT_SEPARATOR if self.written or i else "") + text for i, text in enumerate(chunk)))

    def finish(self) -> None:
        with open(self.tmp, "a", encoding="utf-8") as handle:
            handle.write("\n")


class JsonlWriter(SampleWriter):
    """One {"text": ...} per line."""

    def append(self, chunk: list[str]) -> None:
        with open(self.tmp, "a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps({"text": text}) + "\n" for text in chunk))


class SmilesWriter(SampleWriter):
    """One SMILES string a line (a .smi file)."""

    def append(self, chunk: list[str]) -> None:
        with open(self.tmp, "a", encoding="utf-8") as handle:
            handle.write("".join(smiles + "\n" for smiles in chunk))


FOLDER = ""  # the suffix of a path that names a folder
WRITERS: dict[str, type[SampleWriter]] = {
    ".npy": NpyWriter, ".png": GridWriter, FOLDER: FolderWriter, ".csv": CsvWriter, ".parquet": ParquetWriter,
    ".txt": TextWriter, ".jsonl": JsonlWriter, ".smi": SmilesWriter}
