"""CycleGAN on two domains whose right mapping is known: digits and their colour-inverted versions."""
import numpy as np
import pytest
import torch

import genloom as gl
from genloom.errors import GenloomError

from ..conftest import QUIET

TINY = {"width": 8, "blocks": 2}


@pytest.fixture(scope="module")
def domains(tmp_path_factory, digits):
    """Unpaired: the first 900 digits as they are (A), the other 897 inverted (B)."""
    folder = tmp_path_factory.mktemp("domains")
    np.save(folder / "plain.npy", digits.values[:900])
    np.save(folder / "inverted.npy", 255 - digits.values[900:])
    return folder


@pytest.fixture(scope="module")
def inverter(domains, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cyclegan"
    # no identity loss: it asks G_AB to keep B's images as they are, the opposite of inverting them
    return gl.Model("cyclegan", target_data=str(domains / "inverted.npy"), identity_weight=0, **TINY).fit(
        domains / "plain.npy", steps=200, warmup_steps=0, out=out, **QUIET)


def _errors(net, x):
    """Mean absolute error (in [-1, 1] units) of A -> B against the inverted images and against the images
    themselves, and of B -> A against the originals."""
    with torch.no_grad():
        forward, backward = net.translate(x, 1), net.translate(-x, 0)
    return (forward + x).abs().mean().item(), (forward - x).abs().mean().item(), (backward - x).abs().mean().item()


def test_translation_finds_the_inversion_in_both_directions(inverter, digits):
    x = inverter.codec.encode(digits.values[:300])
    to_inverted, to_same, back = _errors(inverter.ema_net, x)
    torch.manual_seed(0)
    untrained = type(inverter.ema_net)(inverter.codec.layout, inverter.config).eval()
    untrained_to_inverted = _errors(untrained, x)[0]
    assert to_inverted < 0.4 * to_same and to_inverted < 0.5 * untrained_to_inverted
    assert back < 0.5 * untrained_to_inverted


def test_the_run_records_two_domains_and_samples_translations(inverter, domains):
    assert inverter.record["data"]["name"] == "plain-to-inverted" and inverter.codec.describe()["labels"] == ["A", "B"]
    into_b = inverter.sample(16, seed=0).astype(float)
    into_a = inverter.sample(16, seed=0, labels="A").astype(float)
    # digits are dark with a few bright strokes; inverted ones bright: each sample looks like its domain
    assert into_b.mean() > 128 > into_a.mean()
    again = gl.load(inverter.run_dir)
    assert np.array_equal(again.sample(16, seed=0), into_b.astype(np.uint8))


def test_translate_writes_each_direction(inverter, domains, tmp_path, digits):
    inverter.translate_to(tmp_path / "b.npy", digits.values[:20], progress=False)
    inverter.translate_to(tmp_path / "a", 255 - digits.values[:20], to="A", progress=False)
    made, plain = np.load(tmp_path / "b.npy").astype(float), digits.values[:20].astype(float)
    assert made.shape == (20, 8, 8, 1) and np.abs(made - (255 - plain)).mean() < 0.5 * np.abs(made - plain).mean()
    assert len(list((tmp_path / "a").iterdir())) == 20
    with pytest.raises(GenloomError, match="unknown label 'C'; known: A, B"):
        inverter.translate_to(tmp_path / "c.npy", digits.values[:2], to="C")


def test_a_resumed_translation_run_reads_both_domains_back(domains, tmp_path):
    options = {"target_data": str(domains / "inverted.npy"), **TINY}
    gl.Model("cyclegan", **options).fit(domains / "plain.npy", steps=2, checkpoint_every=1, out=tmp_path / "r",
                                        **QUIET)
    (tmp_path / "r" / "model.safetensors").unlink()  # as if it were killed: resumable from its trainer state
    resumed = gl.Model("cyclegan").fit(out=tmp_path / "r", resume=True, steps=4, **QUIET)
    assert resumed.record["steps_trained"] == 4 and resumed.record["data"]["examples"] == 1797


@pytest.mark.parametrize("options, data, message", [
    ({}, "digits", "cyclegan translates between two image sets: name the second with target_data"),
    ({"target_data": "mnist"}, "digits", "the two image sets differ: digits holds 8x8 1-channel images, mnist "
     "28x28 1-channel; give both one size with --image-size"),
    ({"target_data": "wine"}, "digits", "translation is between two image sets; wine is table data"),
    ({"target_data": "digits", "conditional": False}, "digits", "cyclegan is always conditional"),
])
def test_impossible_translations_are_refused(options, data, message, tmp_path):
    with pytest.raises(GenloomError, match=message):
        gl.Model("cyclegan", **options).fit(data, steps=1, out=tmp_path / "r", **QUIET)
    assert not (tmp_path / "r").exists()
