import numpy as np
import pytest
import torch

import genloom as gl
from genloom.data.image_codec import ImageCodec
from genloom.errors import GenloomError
from genloom.data.images import as_uint8_images, image_grid, parse_image_size
from tests.conftest import write_images


def _codec(images, **kwargs):
    return ImageCodec().fit(gl.Dataset("image", images, "t", **kwargs))


def test_round_trip_uint8_rgb_is_exact():
    images = np.random.default_rng(0).integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)
    codec = _codec(images)
    x = codec.encode(images)
    assert x.shape == (5, 3, 12, 10) and x.dtype == torch.float32
    pixel = images[0, 3, 4]
    torch.testing.assert_close(x[0, :, 3, 4], torch.from_numpy(pixel / 127.5 - 1).float())  # 0 -> -1, 255 -> 1
    np.testing.assert_array_equal(codec.decode(x), images)


def test_round_trip_float_input_within_quantisation():
    images = np.random.default_rng(1).random((4, 8, 8)).astype(np.float32)  # grayscale in [0, 1]
    codec = _codec(images)
    assert codec.layout.shape == (1, 8, 8)
    decoded = codec.decode(codec.encode(images)).astype(np.float32)[..., 0] / 255
    assert np.abs(decoded - images).max() <= 0.5 / 255 + 1e-6


def test_float_in_minus_one_to_one_and_channels_first():
    images = np.linspace(-1, 1, 2 * 3 * 6 * 6).reshape(2, 3, 6, 6)  # (N, C, H, W)
    out = as_uint8_images(images)
    assert out.shape == (2, 6, 6, 3) and out.min() == 0 and out.max() == 255


def test_rgba_is_composited_on_white():
    rgba = np.zeros((1, 2, 2, 4), dtype=np.uint8)  # fully transparent black
    rgba[0, 0, 0] = [10, 20, 30, 255]               # one opaque pixel
    out = as_uint8_images(rgba)
    assert out.shape == (1, 2, 2, 3)
    assert out[0, 0, 0].tolist() == [10, 20, 30] and out[0, 1, 1].tolist() == [255, 255, 255]


@pytest.mark.parametrize("shape, given", [((3, 32, 24, 3), "32x24x3"), ((3, 16, 16, 3), "16x16x3"),
                                          ((3, 5, 5), "5x5x1")])
def test_codec_refuses_images_unlike_the_training_ones_naming_both(shape, given):
    codec = _codec(np.zeros((2, 16, 16, 1), dtype=np.uint8))
    with pytest.raises(GenloomError, match=f"the model takes 16x16x1 images; these are {given}: resize them first"):
        codec.encode(np.full(shape, 200, dtype=np.uint8))
    assert codec.encode(np.full((3, 16, 16), 200, dtype=np.uint8)).shape == (3, 1, 16, 16)


def test_codec_json_round_trip_keeps_layout_and_classes():
    codec = _codec(np.zeros((2, 8, 8, 3), dtype=np.uint8), labels=np.array([0, 1]), class_names=["cat", "dog"])
    again = ImageCodec.from_json(codec.to_json())
    assert again.layout == codec.layout and again.layout.num_classes == 2
    np.testing.assert_array_equal(again.label_ids(["dog", 0, "1"]), [1, 0, 1])


def test_unknown_label_names_the_known_ones():
    codec = _codec(np.zeros((2, 8, 8, 3), dtype=np.uint8), labels=np.array([0, 1]), class_names=["cat", "dog"])
    with pytest.raises(gl.GenloomError, match="unknown label 'cow'; known: cat, dog"):
        codec.label_ids(["cow"])
    with pytest.raises(gl.GenloomError, match="out of range"):
        codec.label_ids([5])


def test_bad_pixel_values_are_refused():
    with pytest.raises(gl.GenloomError, match="NaN"):
        as_uint8_images(np.full((1, 4, 4), np.nan))
    with pytest.raises(gl.GenloomError, match=r"\[0, 1\] or \[-1, 1\]"):
        as_uint8_images(np.full((1, 4, 4), 7.0))
    with pytest.raises(gl.GenloomError, match="channels"):
        as_uint8_images(np.zeros((1, 6, 6, 5)))


def test_image_size_parsing():
    assert parse_image_size("32") == (32, 32)
    assert parse_image_size("32x48") == (32, 48)
    assert parse_image_size((8, 4)) == (8, 4)
    with pytest.raises(gl.GenloomError, match="not understood"):
        parse_image_size("big")
    with pytest.raises(gl.GenloomError, match="impossible"):
        parse_image_size(0)


def test_grid_enlarges_tiny_tiles():
    grid = image_grid(np.zeros((10, 8, 8, 1), dtype=np.uint8))
    assert grid.width >= 4 * 32 and grid.mode == "L"


def test_save_samples_png_and_npy(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    codec = _codec(images)
    assert codec.save_samples(images, tmp_path / "new" / "g.png").exists()  # folders are made
    np.testing.assert_array_equal(np.load(codec.save_samples(images, tmp_path / "s.npy")), images)
    with pytest.raises(gl.GenloomError, match=".png"):
        codec.save_samples(images, tmp_path / "s.jpg")


def test_folder_of_rgba_pngs_loads_as_rgb(tmp_path):
    write_images(tmp_path / "imgs", [(6, 6)] * 3, mode="RGBA")
    data = gl.load_data(tmp_path / "imgs")
    assert data.values.shape == (3, 6, 6, 3) and data.labels is None
