"""The codec catalog: one codec per data kind, each with the sample files its samples take."""
import pytest

import genloom as gl
from genloom.data.codec import CODECS, codec_class, fitted_codec
from genloom.layout import KINDS


def test_every_kind_has_its_codec():
    assert set(CODECS) == set(KINDS)
    for kind in KINDS:
        assert codec_class(kind).kind == kind
    with pytest.raises(gl.GenloomError, match="no codec for 'graph' data; known kinds: image, table, text"):
        codec_class("graph")


@pytest.mark.parametrize("kind, path, formats", [("image", "s.csv", ".png or .npy"),
                                                 ("table", "s.png", ".csv or .parquet"),
                                                 ("text", "s.npy", ".txt or .jsonl")])
def test_samples_go_to_the_files_of_their_kind(kind, path, formats, tmp_path):
    codec = codec_class(kind)()
    with pytest.raises(gl.GenloomError, match=f"cannot write {kind} samples to {path}; use a {formats} path"):
        codec.sample_writer(tmp_path / path, 3)
    assert codec.sample_suffix == formats.split(" or ")[0]


def test_a_codec_option_that_does_not_exist_is_named():
    with pytest.raises(gl.GenloomError, match="unknown codec option for image data"):
        fitted_codec(gl.load_data("digits"), {"palette": "warm"})
    assert fitted_codec(gl.load_data("digits"), {}).layout.shape == (1, 8, 8)
