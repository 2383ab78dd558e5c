"""The invisible image watermark: payloads survive JPEG at quality 75 and a 0.75x resize at a PSNR above 38 dB,
unmarked images are not found marked, and a genloom grid is read image by image."""
import io

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_images

from genloom.data.image_watermark import MIN_SIZE, check_markable, embed, payload_of, read, read_file
from genloom.data.sample_files import GridWriter
from genloom.errors import GenloomError

THRESHOLD = 2.33


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """24 natural 64x64 RGB pictures: crops of scikit-learn's two sample photographs, halved."""
    rng = np.random.default_rng(0)
    crops = []
    for photo in load_sample_images().images:
        for _ in range(12):
            top, left = rng.integers(0, photo.shape[0] - 128), rng.integers(0, photo.shape[1] - 128)
            crop = Image.fromarray(photo[top:top + 128, left:left + 128]).resize((64, 64), Image.BICUBIC)
            crops.append(np.asarray(crop))
    return np.stack(crops)


def _jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


def _resized(image: np.ndarray, factor: float) -> np.ndarray:
    picture = Image.fromarray(image)
    return np.asarray(picture.resize((round(picture.width * factor), round(picture.height * factor)), Image.BICUBIC))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(255 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


def test_payloads_survive_jpeg_and_resizing_invisibly(photos):
    payloads = np.random.default_rng(1).integers(0, 2 ** 32, len(photos), dtype=np.uint64)
    marked = embed(photos, payloads)
    assert min(_psnr(a, b) for a, b in zip(photos, marked)) > 38
    for attack in (lambda x: x, _jpeg, lambda x: _resized(x, 0.75)):
        found = read(np.stack([attack(image) for image in marked]), THRESHOLD)
        assert [f.payload for f in found] == payloads.tolist()
        assert all(f.watermarked for f in found)


def test_unmarked_images_are_not_found_marked(photos):
    found = read(photos, THRESHOLD)
    assert sum(f.watermarked for f in found) <= 1  # a 1% false-positive rate: 0.24 expected among 24
    assert abs(np.mean([f.z_score for f in found])) < 1.0  # z is standard normal without a mark


def test_grey_images_carry_it_too():
    digits = np.zeros((4, 64, 64, 1), np.uint8)  # a black page with a white bar: most pixels clip at 0
    for i in range(4):
        digits[i, 10 + 5 * i:30 + 5 * i, 20:40] = 255
    payloads = np.array([payload_of(0xBEEF, i) for i in range(4)], dtype=np.uint64)
    found = read(embed(digits, payloads), THRESHOLD)
    assert [(f.run_tag, f.index) for f in found] == [(0xBEEF, i) for i in range(4)]


def test_a_grid_is_read_image_by_image(photos, tmp_path):
    path = tmp_path / "grid.png"
    payloads = np.array([payload_of(7, i) for i in range(5)], dtype=np.uint64)
    with GridWriter(path, 5, {"run": "r"}) as writer:
        writer.write(embed(photos[:5], payloads))
    found = read_file(path, THRESHOLD)
    assert [(name, f.index, f.run_tag, f.watermarked) for name, f in found] == [
        (f"image {i}", i, 7, True) for i in range(5)]


def test_images_too_small_are_refused():
    with pytest.raises(GenloomError, match=f"too small to watermark \\(at least {MIN_SIZE}x{MIN_SIZE}\\)"):
        check_markable(28, 28)
    with pytest.raises(GenloomError, match="too small to carry a watermark"):
        read(np.zeros((1, 28, 28, 1), np.uint8), THRESHOLD)
