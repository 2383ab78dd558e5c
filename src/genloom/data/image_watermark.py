"""An invisible watermark in sampled images: 32 bits (a 16-bit tag of the run and a 16-bit image counter) written
into the low spatial frequencies of the picture's brightness, which JPEG compression and resizing keep.

The scheme is spread-transform dither modulation (Chen & Wornell 2001) on the whole image's 2-D DCT: a fixed key
shares out the 208 coefficients with 2 <= u + v <= 20 (u, v <= 16) among the 32 bits, six each, and gives each bit
a random +-1 direction over its six; a bit is written by moving the projection on its direction to the nearest
point of one of two interleaved lattices (step DELTA, shifted by a keyed dither), and read by which lattice is
nearer. Coefficients are scaled to the amplitude of the cosine they stand for, so a resized image keeps them (its
frequencies, counted per image, stay where they were) and the reader needs neither the original nor its size.

Written here rather than taken from the `invisible-watermark` package (the DWT-DCT watermark of Stable
Diffusion's scripts): it refuses images under 256x256, and its 8x8-block embedding is lost when an image is
resized. Measured at 64x64 in benchmarks/image_watermark.py."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.fft import dctn, idctn

from ..errors import GenloomError
from .images import read_image_file
from .sample_files import read_png_samples

SCHEME = "genloom-dct-stdm-1"
MIN_SIZE = 64        # the smaller side an image needs to be marked (bit accuracy and PSNR are measured from here)
READ_MIN_SIZE = 32   # the smaller side a reader needs: the band's highest frequency (16) must fit
BITS, TAG_BITS = 32, 16
DELTA = 2.0          # lattice step in grey levels of cosine amplitude: PSNR ~42 dB; 1.5 lost bits after JPEG 50
ROUNDS = 4           # embedding passes: each puts back what rounding and clipping to 0..255 took
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, JPEG's brightness


def _band() -> tuple[np.ndarray, np.ndarray]:
    pairs = [(u, v) for u in range(17) for v in range(17) if 2 <= u + v <= 20]
    return np.array([u for u, _ in pairs]), np.array([v for _, v in pairs])


ROWS, COLUMNS = _band()


@dataclass(frozen=True)
class _Key:
    groups: np.ndarray  # (BITS, 6) coefficient indices of each bit
    signs: np.ndarray   # (BITS, 6) its unit direction
    dither: np.ndarray  # (BITS,) lattice shift, in steps


def _key() -> _Key:
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(SCHEME.encode()).digest()[:8], "little"))
    per_bit = len(ROWS) // BITS
    groups = rng.permutation(len(ROWS))[:per_bit * BITS].reshape(BITS, per_bit)
    signs = rng.choice([-1.0, 1.0], size=(BITS, per_bit)) / math.sqrt(per_bit)
    return _Key(groups, signs, rng.uniform(0, 1, BITS))


KEY = _key()


def _brightness(images: np.ndarray) -> np.ndarray:
    pixels = images.astype(np.float64)
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels[..., :3] @ LUMA


def _projections(images: np.ndarray) -> np.ndarray:
    """(N, BITS): each bit's projection of the band, in grey levels of cosine amplitude."""
    height, width = images.shape[1:3]
    spectrum = dctn(_brightness(images), axes=(1, 2), norm="ortho") * (2 / math.sqrt(height * width))
    band = spectrum[:, ROWS, COLUMNS]
    return (band[:, KEY.groups] * KEY.signs).sum(2)


def payload_bits(payloads: np.ndarray) -> np.ndarray:
    """(N,) 32-bit integers -> (N, BITS) bits, the most significant first."""
    shifts = np.arange(BITS - 1, -1, -1, dtype=np.uint64)
    return ((np.asarray(payloads, dtype=np.uint64)[:, None] >> shifts) & 1).astype(np.int64)


def payload_of(run_tag: int, index: int) -> int:
    """The 32 bits an image carries: its run's tag, then its counter (the sample's index, modulo 2**16)."""
    return (run_tag % (1 << TAG_BITS)) << (BITS - TAG_BITS) | index % (1 << (BITS - TAG_BITS))


def run_tag(name: str) -> int:
    """A run's 16-bit tag, from its name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:2], "big")


def check_markable(height: int, width: int) -> None:
    if min(height, width) < MIN_SIZE:
        raise GenloomError(f"{height}x{width} images are too small to watermark (at least {MIN_SIZE}x{MIN_SIZE}); "
                           "drop --watermark: they still carry their provenance in the file")


def embed(images: np.ndarray, payloads: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) images carrying one 32-bit payload each, changed in brightness only (every colour
    channel alike)."""
    count, height, width = images.shape[:3]
    check_markable(height, width)
    targets_offset = (KEY.dither + 0.5 * payload_bits(payloads)) * DELTA  # (N, BITS)
    marked = images.astype(np.float64)
    for _ in range(ROUNDS):
        projection = _projections(np.clip(np.round(marked), 0, 255))
        nearest = DELTA * np.round((projection - targets_offset) / DELTA) + targets_offset
        band = np.zeros((count, len(ROWS)))
        np.add.at(band, (slice(None), KEY.groups), (nearest - projection)[..., None] * KEY.signs)
        spectrum = np.zeros((count, height, width))
        spectrum[:, ROWS, COLUMNS] = band * (math.sqrt(height * width) / 2)
        marked = np.clip(marked + idctn(spectrum, axes=(1, 2), norm="ortho")[..., None], 0, 255)
    return np.round(marked).astype(np.uint8)


@dataclass(frozen=True)
class Marker:
    """Marks the images of one run, each with the run's tag and its index among the samples of one sampling."""

    run_tag: int

    def __call__(self, images: np.ndarray, first: int) -> np.ndarray:
        """Images numbered from `first`, marked."""
        indices = np.arange(first, first + len(images))
        return embed(images, np.array([payload_of(self.run_tag, i) for i in indices], dtype=np.uint64))

    def describe(self) -> dict[str, str]:
        """What a sample file's provenance says of the mark."""
        return {"scheme": SCHEME, "run_tag": f"{self.run_tag:04x}", "counter": "the sample's index"}


@dataclass(frozen=True)
class ImageWatermark:
    """What a reader found in one image: the payload, how sure it is (z over the bits' margins), its verdict."""

    payload: int
    z_score: float
    p_value: float
    watermarked: bool

    @property
    def run_tag(self) -> int:
        return self.payload >> (BITS - TAG_BITS)

    @property
    def index(self) -> int:
        return self.payload & ((1 << (BITS - TAG_BITS)) - 1)

    def describe(self) -> str:
        verdict = "watermarked" if self.watermarked else "not watermarked"
        found = f"; run tag {self.run_tag:04x}, image {self.index}" if self.watermarked else ""
        return f"{verdict}: z = {self.z_score:.2f}, p = {self.p_value:.2g}{found}"


def read(images: np.ndarray, threshold: float) -> list[ImageWatermark]:
    """The payload each uint8 (N, H, W, C) image carries, and whether it carries one at all: each bit's margin
    (how much nearer its lattice is than the other, 0..1) is uniform in an unmarked image, near 1 in a marked one;
    their mean's z-score against the uniform's is the evidence."""
    if min(images.shape[1:3]) < READ_MIN_SIZE:
        raise GenloomError(f"{images.shape[1]}x{images.shape[2]} images are too small to carry a watermark (marked "
                           f"from {MIN_SIZE}x{MIN_SIZE}, read down to {READ_MIN_SIZE}x{READ_MIN_SIZE}); genloom "
                           "provenance FILE shows where a sample file came from")
    steps = _projections(images) / DELTA - KEY.dither
    zero = np.abs(steps - np.round(steps))
    one = np.abs(steps - 0.5 - np.round(steps - 0.5))
    bits = (one < zero).astype(np.int64)
    z_scores = (np.abs(zero - one).mean(1) * 2 - 0.5) / math.sqrt(1 / (12 * BITS))
    payloads = bits @ (1 << np.arange(BITS - 1, -1, -1, dtype=np.int64))
    return [ImageWatermark(int(payload), float(z), 0.5 * math.erfc(z / math.sqrt(2)), bool(z > threshold))
            for payload, z in zip(payloads, z_scores)]


def read_file(path: Path, threshold: float) -> list[tuple[str, ImageWatermark]]:
    """What an image file carries, named by file; for a grid genloom wrote, what each of its images carries."""
    if path.suffix.lower() != ".png":
        return [(path.name, read(read_image_file(path, "RGB")[None], threshold)[0])]
    images, names = read_png_samples(path, "RGB")
    found = read(images, threshold)
    return [(path.name, found[0])] if len(found) == 1 else [(f"image {i}", mark) for i, mark in enumerate(found)]
