"""Our FID InceptionV3 on random weights saved like the published file: shapes, equality with torch-fidelity's
port, loading errors, and the evaluator's choice of extractor."""
import importlib
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import genloom as gl
from genloom.metrics.features import extractor_for
from genloom.metrics.inception import (CLASSES, FEATURES, WEIGHTS_ENV, InceptionV3, load_inception,
                                       resize_like_tensorflow1)


def _random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Weights with the published names and shapes, scaled so that activations neither vanish nor explode
    through the 94 convolutions (torch's default init shrinks the features to about 1e-8)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = InceptionV3()
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                nn.init.uniform_(module.weight, 0.8, 1.2)
                nn.init.normal_(module.bias, 0, 0.1)
        nn.init.normal_(net.fc.weight, std=0.05)
        nn.init.normal_(net.fc.bias, std=0.1)
    # saved without batch-norm counters and (in the fixture) in torch's old non-zip format, as a 2019 file may be
    return {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(_random_state_dict(), path, _use_new_zipfile_serialization=False)
    return path


@pytest.fixture(scope="module")
def pixels():
    """8-bit images, (N, C, H, W): small gray ones like the digits, and RGB ones like CIFAR."""
    rng = np.random.default_rng(0)
    return {size: torch.from_numpy(rng.integers(0, 256, (3, channels, size, size), dtype=np.uint8))
            for size, channels in ((8, 1), (32, 3))}


@pytest.fixture(scope="module")
def ours(weights, pixels):
    net = load_inception(weights)
    with torch.no_grad():
        return {size: net(images.float() / 127.5 - 1) for size, images in pixels.items()}


def test_features_and_logits_have_the_published_sizes(ours):
    for features, logits in ours.values():
        assert features.shape == (3, FEATURES) == (3, 2048) and logits.shape == (3, CLASSES) == (3, 1008)
        assert torch.isfinite(features).all() and features.std() > 0.01 and logits.std() > 0.01


def test_resize_follows_tensorflow1_not_half_pixel_centres():
    x = torch.tensor([[[[0.0, 4.0]]]])
    assert resize_like_tensorflow1(x, size=4)[0, 0, 0].tolist() == [0.0, 2.0, 4.0, 4.0]  # source = i * 2/4


@pytest.fixture
def torch_fidelity_inception():
    """torch-fidelity's FeatureExtractorInceptionV3 class, from the package `make test` installs into the venv's
    oracles/ folder (pip --no-deps --target): its own __init__ imports torchvision, which genloom does without (it
    would replace the CPU torch), so only the modules the extractor needs are imported, from that folder."""
    folder = Path(sys.prefix) / "oracles" / "torch_fidelity"
    assert folder.is_dir(), f"torch-fidelity is not in {folder.parent}: run `make test`"
    before = dict(sys.modules)
    package = types.ModuleType("torch_fidelity")
    package.__path__ = [str(folder)]
    sys.modules["torch_fidelity"] = package
    try:
        yield importlib.import_module("torch_fidelity.feature_extractor_inceptionv3").FeatureExtractorInceptionV3
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "torch_fidelity"]:
            del sys.modules[name]
        sys.modules.update({n: m for n, m in before.items() if n.split(".")[0] == "torch_fidelity"})


def test_equal_to_torch_fidelity_on_the_same_weights(torch_fidelity_inception, weights, pixels, ours):
    # their loader is strict: our names and shapes are the published file's
    theirs = torch_fidelity_inception("inception-v3-compat", ["2048", "logits_unbiased"],
                                      feature_extractor_weights_path=str(weights))
    for size, images in pixels.items():
        with torch.no_grad():
            features, logits = theirs(images.expand(-1, 3, -1, -1).contiguous())
        torch.testing.assert_close(ours[size][0], features, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ours[size][1], logits, rtol=1e-4, atol=1e-4)


def test_safetensors_weights_load_the_same(weights, tmp_path):
    path = tmp_path / "inception.safetensors"
    save_file(torch.load(weights, weights_only=True), path)
    loaded = load_inception(path).state_dict()
    for name, tensor in load_inception(weights).state_dict().items():
        assert torch.equal(loaded[name], tensor), name


class NotWeights:
    """A pickled object that a weights-only load must refuse."""


def _write(path, content, weights):
    if content == "garbage":
        path.write_bytes(b"not a checkpoint\n" * 100)
    elif content == "truncated":
        path.write_bytes(weights.read_bytes()[:100_000])
    elif content == "other net":
        torch.save(nn.Linear(2, 2).state_dict(), path)
    elif content == "pickled object":
        torch.save({"fc.weight": NotWeights()}, path)
    elif content == "bad header":
        path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + b"\n" * 50)


@pytest.mark.parametrize("name, content", [
    ("pt_inception.pth", "missing"), ("pt_inception.pth", "garbage"), ("pt_inception.pth", "truncated"),
    ("pt_inception.pth", "other net"), ("pt_inception.pth", "pickled object"),
    ("inception.safetensors", "garbage"), ("inception.safetensors", "bad header")])
def test_bad_weights_files_fail_in_one_line(name, content, weights, tmp_path):
    path = tmp_path / name
    _write(path, content, weights)
    with pytest.raises(gl.GenloomError) as error:
        load_inception(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "GENLOOM_INCEPTION_WEIGHTS" in message
    assert message.startswith("no InceptionV3 weights at" if content == "missing" else f"{path} is not the")


def test_the_argument_wins_over_the_variable_and_a_wrong_path_is_an_error(weights, monkeypatch, tmp_path):
    x = torch.rand(8, 1, 8, 8) * 2 - 1
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "missing.pth"))
    net, description = extractor_for(None, x, None, None, inception_weights=weights)
    assert isinstance(net, InceptionV3)
    assert description == f"InceptionV3 (pt_inception-2015-12-05 weights from {weights.resolve()})"
    with pytest.raises(gl.GenloomError, match="no InceptionV3 weights at .*missing.pth"):
        extractor_for(None, x, None, None)  # not a quiet fallback to the feature net


def test_evaluate_uses_inception_when_the_variable_is_set(trained_run, digits, weights, monkeypatch, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    four = gl.Dataset("image", digits.values[:4], "digits", digits.labels[:4], digits.class_names)
    monkeypatch.setenv(WEIGHTS_ENV, str(weights))
    scores = gl.evaluate(gl.load(run), four)
    record = gl.load(run).record
    assert record["feature_extractor"].startswith("InceptionV3 (pt_inception-2015-12-05 weights from ")
    assert "InceptionV3 (pt_inception-2015-12-05" in (run / "report.html").read_text()
    assert not (run / "feature_net.safetensors").exists()  # nothing trained
    assert {"fid", "kid", "inception_score"} <= set(scores) and all(np.isfinite(v) for v in scores.values())
    assert scores["fid_noise"] > scores["fid_train_vs_held_out"]  # noise is farther from the digits than digits are
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "nowhere.pth"))
    with pytest.raises(gl.GenloomError, match="no InceptionV3 weights at"):
        gl.evaluate(gl.load(run), four, save=False)
