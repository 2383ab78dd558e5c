import numpy as np
import pytest

import genloom as gl
from tests.conftest import write_images


def test_builtin_digits(digits):
    assert digits.values.shape == (1797, 8, 8, 1) and digits.values.dtype == np.uint8
    assert digits.values.max() == 255 and digits.class_names == [str(d) for d in range(10)]


def test_builtin_diabetes_is_in_its_original_units():
    data = gl.load_data("diabetes")
    frame = data.values
    assert data.kind == "table" and frame.shape == (442, 11) and frame.columns[-1] == "target"
    assert frame["age"].between(19, 79).all() and set(frame["sex"]) == {1, 2}  # not scikit-learn's scaled copy
    assert (frame["target"].min(), frame["target"].max()) == (25, 346)


def test_builtin_mnist_is_the_shared_set_with_its_own_test_split():
    from pathlib import Path

    shared = np.load(Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist28.npz")
    for name, part in (("mnist", "train"), ("mnist-test", "test")):
        data = gl.load_data(name)
        assert data.kind == "image" and data.values.shape == (len(shared[f"{part}_labels"]), 28, 28, 1)
        assert np.array_equal(data.values[..., 0], shared[f"{part}_images"])
        assert np.array_equal(data.labels, shared[f"{part}_labels"]) and data.class_names == [str(d) for d in range(10)]
    assert len(gl.load_data("mnist")) == 60_000 and len(gl.load_data("mnist-test")) == 10_000


def test_builtin_mnist_missing_says_how_to_install_it(monkeypatch, tmp_path):
    import genloom.data.builtin

    monkeypatch.setattr(genloom.data.builtin, "__file__", str(tmp_path / "builtin.py"))
    with pytest.raises(gl.GenloomError, match="the built-in mnist is not installed: put mnist28.npz"):
        gl.load_data("mnist")


def test_builtin_digits_resized():
    assert gl.load_data("digits", image_size=16).values.shape == (1797, 16, 16, 1)


def test_labels_from_sub_folders(tmp_path):
    write_images(tmp_path / "cats", [(8, 8)] * 2)
    write_images(tmp_path / "dogs", [(8, 8)] * 3, seed=1)
    data = gl.load_data(tmp_path)
    assert data.class_names == ["cats", "dogs"]
    assert data.labels.tolist() == [0, 0, 1, 1, 1]
    assert data.values.shape == (5, 8, 8, 3)


def test_grayscale_folder_stays_single_channel(tmp_path):
    write_images(tmp_path, [(5, 7)] * 2, mode="L")
    assert gl.load_data(tmp_path).values.shape == (2, 5, 7, 1)


def test_mixed_sizes_need_image_size(tmp_path):
    write_images(tmp_path, [(8, 8), (10, 12)])
    with pytest.raises(gl.GenloomError, match=r"images differ in size: .*img0.png is 8x8, .*img1.png is 10x12; .*--image-size"):
        gl.load_data(tmp_path)
    assert gl.load_data(tmp_path, image_size="6x4").values.shape == (2, 6, 4, 3)


def test_npz_with_labels(tmp_path):
    images = np.random.default_rng(0).random((6, 4, 4, 3)).astype(np.float32)
    np.savez(tmp_path / "d.npz", images=images, labels=np.array(["a", "b", "a", "b", "c", "c"]))
    data = gl.load_data(tmp_path / "d.npz")
    assert data.values.shape == (6, 4, 4, 3) and data.class_names == ["a", "b", "c"]
    assert data.labels.tolist() == [0, 1, 0, 1, 2, 2]


def test_npy_array(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros((3, 4, 4), dtype=np.uint8))
    assert gl.load_data(tmp_path / "d.npy").values.shape == (3, 4, 4, 1)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "nothing-here", "no file, folder or built-in data set named"),
    (lambda p: "mnist-like", "built-in ones: adult, breast_cancer, diabetes, digits"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no images found in"),
    (lambda p: (p / "t.xlsx").write_text("a\n1\n") and p / "t.xlsx", "unsupported file type '.xlsx'"),
    (lambda p: (p / "bad.npy").write_bytes(b"not numpy") and p / "bad.npy", "not a readable numpy file"),
])
def test_bad_sources_give_one_line_errors(tmp_path, make, message):
    with pytest.raises(gl.GenloomError, match=message) as error:
        gl.load_data(make(tmp_path))
    assert "\n" not in str(error.value)


def test_corrupt_image_is_named(tmp_path):
    write_images(tmp_path, [(8, 8)] * 2)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(gl.GenloomError, match="broken.png is not a readable image"):
        gl.load_data(tmp_path)


def test_non_image_file_is_named(tmp_path):
    write_images(tmp_path, [(8, 8)] * 2)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(gl.GenloomError, match="notes.txt is not an image file"):
        gl.load_data(tmp_path)


def test_npz_labels_must_match_images(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((3, 4, 4)), labels=np.zeros(2))
    with pytest.raises(gl.GenloomError, match="2,\\) labels for 3 images"):
        gl.load_data(tmp_path / "d.npz")


def test_broken_npz_files(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((3, 4, 4)), labels=np.array([{"a": 1}] * 3, dtype=object))
    with pytest.raises(gl.GenloomError, match="not a readable numpy file"):
        gl.load_data(tmp_path / "d.npz")
    (tmp_path / "t.npz").write_bytes((tmp_path / "d.npz").read_bytes()[:100])
    with pytest.raises(gl.GenloomError, match="not a readable numpy file"):
        gl.load_data(tmp_path / "t.npz")


def test_sixteen_bit_pngs_are_scaled_not_clipped(tmp_path):
    from PIL import Image
    Image.fromarray(np.array([[0, 32768], [65535, 16384]], dtype=np.uint16)).save(tmp_path / "a.png")
    assert gl.load_data(tmp_path).values[0, :, :, 0].tolist() == [[0, 128], [255, 64]]


def test_numpy_array_is_data():
    data = gl.load_data(np.zeros((5, 6, 6, 3), dtype=np.float32), image_size=4)
    assert data.values.shape == (5, 4, 4, 3) and data.kind == "image"
