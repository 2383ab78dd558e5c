"""The invisible image watermark: bit accuracy of its 32-bit payload after JPEG and resizing, and the PSNR it
costs, on 64x64 pictures (natural photo crops in colour, MNIST digits enlarged in grey) and, beside the
`invisible-watermark` package (Stable Diffusion's DWT-DCT watermark, which refuses images under 256x256), on
256x256 photo crops. genloom's detector verdicts (z > 2.33) and their false positives on unmarked images too.

Targets (the responsible-generation issue), on 64x64 or larger: bit accuracy >= 0.95 after JPEG quality 75,
>= 0.90 after a 0.75x resize, PSNR >= 38 dB.

The peer is optional and, as its dependencies want opencv, kept out of the venv:
    .venv/bin/pip install --target /tmp/iwpeer --no-deps invisible-watermark opencv-python-headless PyWavelets
    PYTHONPATH=/tmp/iwpeer taskset -c 1 .venv/bin/python benchmarks/image_watermark.py      (about a minute)
    PYTHONPATH=/tmp/iwpeer .venv/bin/python benchmarks/image_watermark.py --speed   (its cost in each thread setting)
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

from genloom.data.image_watermark import BITS, embed, payload_bits, read
from shared_parts import THREAD_SETTINGS, log, results_arguments, thread_setting, write_section

RESULTS = Path(__file__).parent / "results" / "image_watermark.md"
THRESHOLD = 2.33
MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist28.npz"


def photo_crops(count: int, size: int, crop: int, seed: int) -> np.ndarray:
    """Random crop x crop pieces of scikit-learn's two sample photographs, resized to size x size."""
    rng = np.random.default_rng(seed)
    photos = load_sample_images().images
    crops = []
    for i in range(count):
        photo = photos[i % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - crop), rng.integers(0, photo.shape[1] - crop)
        piece = Image.fromarray(photo[top:top + crop, left:left + crop])
        crops.append(np.asarray(piece.resize((size, size), Image.BICUBIC)))
    return np.stack(crops)


def mnist_digits(count: int) -> np.ndarray:
    digits = np.load(MNIST)["test_images"][:count]
    return np.stack([np.asarray(Image.fromarray(d).resize((64, 64), Image.BICUBIC))[..., None] for d in digits])


def _picture(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def _array(picture: Image.Image, channels: int) -> np.ndarray:
    array = np.asarray(picture)
    return array[..., None] if channels == 1 else array


def jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    def attack(image: np.ndarray) -> np.ndarray:
        buffer = io.BytesIO()
        _picture(image).save(buffer, "JPEG", quality=quality)
        return _array(Image.open(buffer), image.shape[-1])
    return attack


def resized(factor: float, back: bool) -> Callable[[np.ndarray], np.ndarray]:
    def attack(image: np.ndarray) -> np.ndarray:
        picture = _picture(image)
        small = picture.resize((round(picture.width * factor), round(picture.height * factor)), Image.BICUBIC)
        return _array(small.resize(picture.size, Image.BICUBIC) if back else small, image.shape[-1])
    return attack


ATTACKS = {"none": lambda image: image, "JPEG 75": jpeg(75), "JPEG 50": jpeg(50),
           "0.75x": resized(0.75, back=False), "0.75x and back": resized(0.75, back=True),
           "0.5x": resized(0.5, back=False)}


class Genloom:
    name = "genloom (DCT spread-transform)"

    def embed(self, images: np.ndarray, payloads: np.ndarray) -> np.ndarray:
        return embed(images, payloads)

    def read_bits(self, images: list[np.ndarray]) -> np.ndarray:
        return payload_bits(np.array([f.payload for f in self.read(images)], dtype=np.uint64))

    @staticmethod
    def read(images: list[np.ndarray]) -> list:
        """Images of one size at a time (a resize keeps the size of all alike)."""
        return read(np.stack(images), THRESHOLD)


class InvisibleWatermark:
    """The `invisible-watermark` package's encoder/decoder in one of its methods (BGR images, as it takes them)."""

    def __init__(self, method: str):
        self.method, self.name = method, f"invisible-watermark {method}"

    def embed(self, images: np.ndarray, payloads: np.ndarray) -> np.ndarray:
        import cv2
        from imwatermark import WatermarkEncoder

        marked = []
        for image, bits in zip(images, payload_bits(payloads)):
            encoder = WatermarkEncoder()
            encoder.set_watermark("bits", bits.tolist())
            bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            marked.append(cv2.cvtColor(encoder.encode(bgr, self.method), cv2.COLOR_BGR2RGB))
        return np.stack(marked)

    def read_bits(self, images: list[np.ndarray]) -> np.ndarray | None:
        """The payloads read, or None where the package refuses the images (under 256x256)."""
        import cv2
        from imwatermark import WatermarkDecoder

        if images[0].shape[0] * images[0].shape[1] < 256 * 256:
            return None
        decoder = WatermarkDecoder("bits", BITS)
        return np.stack([np.asarray(decoder.decode(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), self.method), dtype=int)
                         for image in images])


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    error = ((a.astype(float) - b.astype(float)) ** 2).reshape(len(a), -1).mean(1)
    return 10 * np.log10(255 ** 2 / error)


def measure(method, images: np.ndarray, seed: int) -> list[str]:
    """One table row per attack: bit accuracy, whole payloads right, and (genloom) the detection rate."""
    payloads = np.random.default_rng(seed).integers(0, 2 ** BITS, len(images), dtype=np.uint64)
    started = time.perf_counter()
    marked = method.embed(images, payloads)
    per_image = (time.perf_counter() - started) / len(images) * 1000
    quality = psnr(images, marked)
    expected = payload_bits(payloads)
    rows = []
    for attack_name, attack in ATTACKS.items():
        attacked = [attack(image) for image in marked]
        bits = method.read_bits(attacked)
        if bits is None:
            rows.append(f"| {method.name} | {attack_name} | refused (under 256x256) | - | - | - | - |")
            continue
        found = (f"{np.mean([f.watermarked for f in method.read(attacked)]):.3f}"
                 if isinstance(method, Genloom) else "-")
        right = bits == expected
        rows.append(f"| {method.name} | {attack_name} | {right.mean():.4f} | {right.all(1).mean():.3f} | {found} | "
                    f"{quality.mean():.2f} / {quality.min():.2f} | {per_image:.2f} |")
    if isinstance(method, Genloom):
        unmarked = np.mean([f.watermarked for f in method.read(list(images))])
        rows.append(f"| {method.name} | unmarked images (false positives) | - | - | {unmarked:.3f} | - | - |")
    return rows


def speed(repeats: int, count: int) -> list[str]:
    """Milliseconds per image to embed and to read, genloom at 64x64 and 256x256 (the peer's embedding at
    256x256 beside it), in each of THREAD_SETTINGS; best of `repeats`, the methods in turn within each."""
    sets = {"64x64": photo_crops(count, 64, 128, 0), "256x256": photo_crops(max(10, count // 3), 256, 256, 1)}
    genloom = Genloom()
    timed = {f"genloom embed {size}": (genloom.embed, images) for size, images in sets.items()}
    timed.update({f"genloom read {size}": (lambda images, _: genloom.read(list(images)), images)
                  for size, images in sets.items()})
    if importlib.util.find_spec("imwatermark") is not None:
        timed["invisible-watermark dwtDct embed 256x256"] = (InvisibleWatermark("dwtDct").embed, sets["256x256"])
    lines = ["| setting | " + " | ".join(timed) + " |", "|---" * (len(timed) + 1) + "|"]
    for setting in THREAD_SETTINGS:
        with thread_setting(setting):
            best = {name: math.inf for name in timed}
            for _ in range(repeats):
                for name, (run, images) in timed.items():
                    payloads = np.arange(len(images), dtype=np.uint64)
                    started = time.perf_counter()
                    run(images, payloads)
                    best[name] = min(best[name], (time.perf_counter() - started) / len(images) * 1000)
        log(f"{setting}: " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in best.items()))
        lines.append(f"| {setting} | " + " | ".join(f"{ms:.2f}" for ms in best.values()) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300, help="images of each 64x64 set (256x256: a third)")
    parser.add_argument("--speed", action="store_true", help="time embedding and reading in each thread setting "
                        "instead (its own section)")
    results_arguments(parser, RESULTS, "20 images a set")
    args = parser.parse_args()
    count = 20 if args.quick else args.images
    if args.speed:
        body = [f"Run {time.strftime('%Y-%m-%d %H:%M')}: milliseconds per image, best of 3, {count} images at 64x64, "
                f"{max(10, count // 3)} at 256x256.", "", *speed(3, count)]
        write_section(args.out, "speed", "Image watermark", body)
        print("\n".join(body))
        return
    sets = {"photos 64x64 (RGB)": photo_crops(count, 64, 128, 0), "MNIST 64x64 (grey)": mnist_digits(count),
            "photos 256x256 (RGB)": photo_crops(max(10, count // 3), 256, 256, 1)}
    methods = [Genloom()]
    if importlib.util.find_spec("imwatermark") is not None:  # the optional peer
        methods += [InvisibleWatermark("dwtDct"), InvisibleWatermark("dwtDctSvd")]
    else:
        log("invisible-watermark is not importable: genloom rows only (see the docstring to add the peer)")
    header = ["| method | attack | bit accuracy | all 32 bits | detected (z > 2.33) | PSNR dB mean / min | "
              "ms per image |", "|---|---|---|---|---|---|---|"]
    body = [f"Run {time.strftime('%Y-%m-%d %H:%M')}, one thread; {count} images a 64x64 set. Random 32-bit payloads; "
            "each attack on the marked image, then read (0.75x: read at 48x48; 'and back': resized to the size it "
            "had). invisible-watermark refuses images under 256x256, so it has rows at 256x256 only."]
    for set_name, images in sets.items():
        log(f"{set_name}: {len(images)} images")
        body += ["", f"### {set_name}", "", *header]
        for method in methods:
            if isinstance(method, InvisibleWatermark) and images.shape[1] < 256:
                continue
            body += measure(method, images, seed=len(body))
    write_section(args.out, args.section, "Image watermark", body)
    print("\n".join(body))


if __name__ == "__main__":
    main()
