"""A server listens on loopback unless it is given a key, and its limits must make sense."""
import pytest

import genloom as gl
from genloom.serve.settings import ServeSettings, inference_threads, is_loopback


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True),
                                            ("localhost", True), ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.4", False), ("example.com", False)])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_beyond_loopback_only_with_a_key():
    with pytest.raises(gl.GenloomError, match="--host 0.0.0.0 lets other machines in; give --api-key"):
        ServeSettings(host="0.0.0.0")
    assert ServeSettings(host="0.0.0.0", api_key="k").host == "0.0.0.0"
    with pytest.raises(gl.GenloomError, match="the API key is empty"):
        ServeSettings(api_key=" ")


def test_an_empty_watermark_key_is_refused():
    with pytest.raises(gl.GenloomError, match="the watermark key is empty"):
        ServeSettings(watermark_key="")


@pytest.mark.parametrize("name", ["max_concurrency", "max_loaded", "max_samples", "max_tokens", "max_body_bytes"])
def test_limits_must_be_positive(name):
    with pytest.raises(gl.GenloomError, match=f"--{name.replace('_', '-')} must be at least 1"):
        ServeSettings(**{name: 0})


def test_inference_threads_share_the_cores_among_the_slots():
    assert inference_threads(ServeSettings(max_concurrency=4), cores=8) == 2
    assert inference_threads(ServeSettings(max_concurrency=4), cores=2) == 1  # never none
    assert inference_threads(ServeSettings(max_concurrency=4, threads=3), cores=2) == 3  # as asked
    with pytest.raises(gl.GenloomError, match="--threads must be at least 1"):
        ServeSettings(threads=0)
