"""Image I/O: folders of files, arrays in any common layout, and sample grids.

Pillow + numpy only (no torchvision: it would pull in a second torch build).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import GenloomError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def as_uint8_images(array: np.ndarray, what: str = "images") -> np.ndarray:
    """Bring an image array of any usual layout and dtype to uint8 (N, H, W, C) with C in {1, 3}."""
    array = np.asarray(array)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise GenloomError(f"{what} must be an array of shape (N, H, W) or (N, H, W, C); got shape {array.shape}")
    if array.shape[-1] not in (1, 3, 4) and array.shape[1] in (1, 3, 4):
        array = array.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    if array.shape[-1] not in (1, 3, 4):
        raise GenloomError(f"{what} must have 1, 3 or 4 channels; got shape {array.shape}")
    if len(array) == 0:
        raise GenloomError(f"{what} is empty: give at least one image")
    array = _to_uint8(array, what)
    if array.shape[-1] == 4:  # composite RGBA on white, as a viewer would show it
        rgb, alpha = array[..., :3].astype(np.float32), array[..., 3:].astype(np.float32) / 255
        array = np.round(rgb * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return array


def _to_uint8(array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise GenloomError(f"{what}: integer pixels must lie in 0..255; got {array.min()}..{array.max()}")
        return array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.floating):
        raise GenloomError(f"{what}: unsupported pixel type {array.dtype}; use uint8 or float")
    if not np.isfinite(array).all():
        raise GenloomError(f"{what} contain NaN or infinite pixels; clean or drop those images first")
    low, high = float(array.min()), float(array.max())
    if low >= 0 and high <= 1:
        scaled = array * 255
    elif low >= -1 and high <= 1:
        scaled = (array + 1) * 127.5
    else:
        raise GenloomError(f"{what}: float pixels must lie in [0, 1] or [-1, 1]; got [{low:g}, {high:g}]")
    return np.round(scaled).astype(np.uint8)


def resize_images(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 (N, H, W, C) images to size (H, W) with Pillow's antialiasing filter."""
    if images.shape[1:3] == tuple(size):
        return images
    height, width = size
    out = np.empty((len(images), height, width, images.shape[-1]), dtype=np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        resized = np.asarray(pil.resize((width, height), Image.Resampling.LANCZOS))
        out[i] = resized.reshape(height, width, -1)
    return out


def parse_image_size(size: int | tuple[int, int] | str | None) -> tuple[int, int] | None:
    """Accept 32, (32, 48) or "32x48"; return (H, W) or None."""
    if size is None:
        return None
    if isinstance(size, str):
        parts = size.lower().replace("×", "x").split("x")
        try:
            size = tuple(int(p) for p in parts) if len(parts) == 2 else int(parts[0])
        except ValueError:
            raise GenloomError(f"image size {size!r} is not understood; write 32 or 32x48") from None
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or min(pair) < 1:
        raise GenloomError(f"image size {size!r} is impossible; give positive pixels, e.g. 32 or 32x48")
    return int(pair[0]), int(pair[1])


def read_image_folder(folder: Path, image_size: tuple[int, int] | None
                      ) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Read a folder of images (one sub-folder per class, or none); return images, labels, class names."""
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subfolders:
        groups = [(d.name, _image_files(d)) for d in subfolders]
        groups = [(name, files) for name, files in groups if files]
    else:
        groups = [(None, _image_files(folder))]
    files = [(name, f) for name, group in groups for f in group]
    if not files:
        raise GenloomError(f"no images found in {folder}; put PNG or JPEG files there (or one sub-folder per class)")
    images = [_read_image(path) for _, path in files]
    if image_size is None:
        sizes = {im.size for im in images}
        if len(sizes) > 1:
            (a, im_a), (b, im_b) = _two_sizes(files, images)
            raise GenloomError(
                f"images differ in size: {a} is {im_a.height}x{im_a.width}, {b} is {im_b.height}x{im_b.width}; "
                "pass image_size=(H, W) (CLI: --image-size HxW) to resize them all")
    mode = "RGB" if any(im.mode not in ("L", "1", "I", "I;16", "F") for im in images) else "L"
    arrays = [np.asarray(_convert(im, mode)) for im in images]
    if image_size is not None:
        arrays = [resize_images(a.reshape(1, a.shape[0], a.shape[1], -1), image_size)[0] for a in arrays]
    stacked = np.stack([a.reshape(a.shape[0], a.shape[1], -1) for a in arrays])
    if subfolders:
        class_names = [name for name, _ in groups]
        labels = np.array([class_names.index(name) for name, _ in files], dtype=np.int64)
        return stacked, labels, class_names
    return stacked, None, None


def _image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    for path in files:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise GenloomError(f"{path} is not an image file ({path.suffix or 'no suffix'}); "
                               f"remove it from the folder or keep only {', '.join(sorted(IMAGE_SUFFIXES))}")
    return files


def _read_image(path: Path | BinaryIO) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise GenloomError(f"{path} is not a readable image ({type(error).__name__}); remove or replace it") from None


def _convert(image: Image.Image, mode: str) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I", "F"):  # 16-bit or float pictures: scale, don't clip, to 8 bits
        pixels = np.asarray(image, dtype=np.float64)
        top = 1.0 if image.mode == "F" and pixels.max() <= 1 else (255.0 if pixels.max() <= 255 else 65535.0)
        image = Image.fromarray(np.round(np.clip(pixels / top, 0, 1) * 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "P") and mode == "RGB":
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert(mode)


def _two_sizes(files, images):
    first = images[0]
    other = next(i for i, im in enumerate(images) if im.size != first.size)
    return (files[0][1], first), (files[other][1], images[other])


GRID_PAD = 2  # white pixels between and around the tiles of a grid


def grid_shape(count: int, columns: int | None = None) -> tuple[int, int]:
    """The rows and columns of a grid of `count` images (near square unless the columns are given)."""
    columns = columns or math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


def grid_scale(height: int, width: int, min_tile: int = 32) -> int:
    """How much a grid enlarges tiles of this size, so tiny images can be seen."""
    return max(1, math.ceil(min_tile / min(height, width)))


def tile_origin(index: int, columns: int, height: int, width: int) -> tuple[int, int]:
    """The top left pixel of the index-th tile of a grid (before enlarging)."""
    row, column = divmod(index, columns)
    return GRID_PAD + row * (height + GRID_PAD), GRID_PAD + column * (width + GRID_PAD)


def grid_layout(images: np.ndarray) -> dict[str, Any]:
    """What a near-square grid's provenance says of its tiles, so that grid_tiles can take them back out."""
    return {"images": len(images), "tile": list(images.shape[1:3])}


def image_grid(images: np.ndarray, columns: int | None = None, min_tile: int = 32) -> Image.Image:
    """Tile uint8 (N, H, W, C) images into one picture, enlarging tiny images so they can be seen."""
    n, height, width, channels = images.shape
    rows, columns = grid_shape(n, columns)
    canvas = np.full((rows * (height + GRID_PAD) + GRID_PAD, columns * (width + GRID_PAD) + GRID_PAD, channels), 255,
                     np.uint8)
    for i, image in enumerate(images):
        top, left = tile_origin(i, columns, height, width)
        canvas[top:top + height, left:left + width] = image
    grid = Image.fromarray(canvas[..., 0] if channels == 1 else canvas)
    scale = grid_scale(height, width, min_tile)
    return grid.resize((grid.width * scale, grid.height * scale), Image.Resampling.NEAREST)


def grid_tiles(grid: np.ndarray, count: int, height: int, width: int) -> np.ndarray:
    """The `count` (H, W) images image_grid tiled into `grid` (near square), taken back out."""
    _, columns = grid_shape(count)
    scale = grid_scale(height, width)
    full = grid[::scale, ::scale]
    origins = [tile_origin(i, columns, height, width) for i in range(count)]
    return np.stack([full[top:top + height, left:left + width] for top, left in origins])


def read_image_file(path: Path, mode: str) -> np.ndarray:
    """One image file as uint8 (H, W) for mode "L" or (H, W, 3) for "RGB"; a one-line error if unreadable."""
    if not path.is_file():
        raise GenloomError(f"{path} is not an image file; give the path of one")
    return image_pixels(path, mode)


def image_pixels(source: Path | BinaryIO, mode: str) -> np.ndarray:
    """A file's (or an open stream's) picture as uint8 in `mode`, converted as training images are."""
    return np.asarray(_convert(_read_image(source), mode))
