import json

import numpy as np
import pytest
import torch

import genloom as gl
from genloom.data.image_layout import ImageLayout
from genloom.errors import GenloomError
from genloom.families.configs import DIFFUSION_SAMPLERS, DiffusionConfig, LatentDiffusionConfig, VQVAEConfig
from genloom.families.diffusion import Diffusion
from genloom.families.latent import LatentDiffusion, LatentFamily
from genloom.train.checkpoint import load_state

from ..conftest import QUIET, crash_at_training_step

TINY_LD = {"autoencoder_width": 8, "width": 8, "latent_channels": 2, "compression": 2, "timesteps": 100}
TINY_VQ = {"autoencoder_width": 8, "codebook_size": 16, "code_dim": 4, "compression": 2, "n_layer": 1, "n_head": 2,
           "n_embd": 16}
TINY = {"latent-diffusion": TINY_LD, "vq-vae": TINY_VQ}
SETTINGS = dict(steps=60, autoencoder_share=0.5, warmup_steps=5, eval_every=10, log_every=1, **QUIET)


def _stages(run) -> tuple[list[int], list[int]]:
    """Steps that logged the autoencoder's loss, and those that logged the prior's."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in records if "lr" in r]
    return ([r["step"] for r in trained if "loss_autoencoder" in r],
            [r["step"] for r in trained if "loss_autoencoder" not in r])


@pytest.fixture(scope="module", params=["latent-diffusion", "vq-vae"])
def latent_run(request, tmp_path_factory):
    family = request.param
    out = tmp_path_factory.mktemp("runs") / family
    options = {**TINY[family], "autoencoder_share": SETTINGS["autoencoder_share"]}
    model = gl.Model(family, **options).fit("digits", out=out, **{k: v for k, v in SETTINGS.items()
                                                                   if k != "autoencoder_share"})
    return family, out, model


def test_the_autoencoder_trains_first_then_the_prior_on_its_frozen_latents(latent_run):
    family, out, model = latent_run
    autoencoder_steps, prior_steps = _stages(out)
    assert autoencoder_steps == list(range(1, 31)) and prior_steps == list(range(31, 61))
    # frozen from the switch on, so the weight average decodes with the very weights the prior learnt on
    live, average = model.net.state_dict(), model.ema_net.state_dict()
    for name in live:
        if name.split(".")[0] in ("encoder", "decoder", "quantizer"):
            assert torch.equal(live[name], average[name]), name
    # each weight's average counts the steps it trained: the prior's began at the switch, not at step 0
    updates = load_state(out / "trainer.pt")["ema_updates"].tolist()
    assert dict(zip([name for name, _ in model.net.named_parameters()], updates)) == \
        {name: 30 for name, _ in model.net.named_parameters()}
    samples = model.sample(6, seed=3)
    assert samples.shape == (6, 8, 8, 1) and samples.dtype == np.uint8
    assert np.array_equal(samples, model.sample(6, seed=3))


def test_the_autoencoder_reconstructs_better_than_untrained(latent_run, digits):
    family, _, model = latent_run
    x = model.codec.encode(digits.values[:256])
    torch.manual_seed(0)
    untrained = type(model.ema_net)(model.codec.layout, model.config)
    trained_error = model.ema_net.evaluate(x, None)["reconstruction_mse"]
    untrained_error = untrained.eval().evaluate(x, None)["reconstruction_mse"]
    assert trained_error < 0.6 * untrained_error
    assert model.record["final_metrics"]["reconstruction_mse"] == pytest.approx(trained_error, rel=0.3)


def test_latent_diffusion_scales_its_latents_to_unit_spread(latent_run, digits):
    family, _, model = latent_run
    if family != "latent-diffusion":
        pytest.skip("the VQ-VAE's latents are code ids")
    latents = model.ema_net.latents(model.codec.encode(digits.values))
    assert latents.std().item() == pytest.approx(1.0, abs=0.15)  # measured on the first batch of the prior's stage


def test_the_vq_codebook_is_used_and_reported(latent_run, digits):
    family, _, model = latent_run
    if family != "vq-vae":
        pytest.skip("only the VQ-VAE has a codebook")
    codes = model.ema_net.latents(model.codec.encode(digits.values[:512]))
    assert codes.dtype == torch.long and codes.shape == (512, 16)
    metrics = model.record["final_metrics"]
    # dead codes are restarted from the batch: more than a handful of the 16 stay in use
    assert metrics["codebook_usage"] >= 0.5 and metrics["codebook_perplexity"] > 4
    assert "prior_bits_per_code" in metrics


def test_latent_diffusion_does_not_clip_its_latents():
    """Pixels lie in [-1, 1] and the samplers clip x_0 there; an autoencoder's latents do not."""
    layout = ImageLayout((2, 4, 4))
    torch.manual_seed(0)
    pixels = Diffusion(layout, DiffusionConfig(width=8, timesteps=100))
    latents = Diffusion(layout.__class__(layout.shape, bounded=False), DiffusionConfig(width=8, timesteps=100))
    latents.load_state_dict(pixels.state_dict())
    # an untrained U-Net predicts zero noise, so x_0 = x_t / sqrt(abar): far outside [-1, 1]
    for sampler in DIFFUSION_SAMPLERS:
        options = gl.families.sample_options("diffusion", {"sampler": sampler, "steps": 10})
        clipped = pixels.sample(64, None, torch.Generator().manual_seed(0), options)
        free = latents.sample(64, None, torch.Generator().manual_seed(0), options)
        assert clipped.abs().max() <= 1 and free.abs().max() > 1.5, sampler


def test_a_resumed_latent_run_equals_an_unbroken_one(tmp_path, monkeypatch):
    """The stage survives a restart: killed in the prior's stage, the resumed run ends where the unbroken one
    does."""
    settings = dict(steps=16, checkpoint_every=5, log_every=1, eval_every=4, **QUIET)
    tiny = {**TINY_LD, "autoencoder_share": 0.25}
    unbroken = gl.Model("latent-diffusion", **tiny).fit("digits", out=tmp_path / "a", **settings)
    with monkeypatch.context() as patch:
        crash_at_training_step(patch, LatentFamily, 13)
        with pytest.raises(KeyboardInterrupt):
            gl.Model("latent-diffusion", **tiny).fit("digits", out=tmp_path / "b", **settings)
    assert load_state(tmp_path / "b" / "trainer.pt")["step"] == 10
    resumed = gl.Model("latent-diffusion").fit(out=tmp_path / "b", resume=True, progress=False)
    for name, value in unbroken.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[name]), name
    assert np.array_equal(unbroken.sample(4, seed=1), resumed.sample(4, seed=1))


@pytest.mark.parametrize("family", ["latent-diffusion", "vq-vae"])
def test_a_run_reuses_another_runs_autoencoder(latent_run, family, tmp_path):
    given_family, given, first = latent_run
    if family != given_family:
        pytest.skip("one run per family")
    second = gl.Model(family, **{**TINY[family], "autoencoder": str(given)}).fit(
        "digits", out=tmp_path / "second", steps=6, log_every=1, **QUIET)
    assert _stages(tmp_path / "second") == ([], list(range(1, 7)))  # the whole budget trains the prior
    theirs, ours = first.ema_net.state_dict(), second.net.state_dict()
    shared = [name for name in theirs if name.split(".")[0] in ("encoder", "decoder", "quantizer", "latent_scale")]
    assert shared and all(torch.equal(theirs[name], ours[name]) for name in shared)


@pytest.mark.parametrize("family", ["latent-diffusion", "vq-vae"])
def test_on_mnist_at_28x28(family, tmp_path):
    """The built-in MNIST: compressed 4x per side to a 7x7 grid, which the U-Net models without halving it."""
    model = gl.Model(family, **{**TINY[family], "compression": 4}).fit("mnist", steps=3, batch_size=8, **QUIET)
    expected = {"latent-diffusion": (2, 7, 7), "vq-vae": (49,)}[family]  # a 7x7 grid of latents, or of codes
    assert model.ema_net.prior.layout.shape == expected
    assert model.sample(3).shape == (3, 28, 28, 1)


def test_guidance_reaches_the_prior(tmp_path):
    """The sampling options are the prior's: guidance works on a conditional model and is refused on another."""
    model = gl.Model("latent-diffusion", conditional=True, **TINY_LD).fit("digits", steps=20, warmup_steps=1, **QUIET)
    guided = model.sample(4, labels=[3], guidance=3.0, sampler="ddim", steps=5)
    plain = model.sample(4, labels=[3], sampler="ddim", steps=5)
    assert guided.shape == plain.shape == (4, 8, 8, 1) and not np.array_equal(guided, plain)
    unconditional = gl.Model("latent-diffusion", **TINY_LD).fit("digits", steps=2, **QUIET)
    with pytest.raises(GenloomError, match="guidance needs a conditional model"):
        unconditional.sample(4, guidance=3.0)


@pytest.mark.parametrize("config, message", [
    (lambda: LatentDiffusionConfig(compression=3), "compression must be a power of 2"),
    (lambda: VQVAEConfig(codebook_size=1), "codebook_size must be at least 2"),
    (lambda: LatentDiffusionConfig(autoencoder_share=0), r"autoencoder_share must lie in \(0, 1\)"),
    (lambda: LatentDiffusion(ImageLayout((1, 8, 8)), LatentDiffusionConfig(compression=16)),
     "the autoencoder compresses 16x per side, which does not divide 8x8 images"),
    (lambda: LatentDiffusion(ImageLayout((1, 8, 8)), LatentDiffusionConfig(compression=4, depth=1)),
     r"the U-Net cannot halve 2x2 images 1 time\(s\) \(at most 0\)"),
])
def test_impossible_options_are_refused(config, message):
    with pytest.raises(GenloomError, match=message):
        config()


def test_an_autoencoder_that_does_not_fit_is_refused(latent_run, tmp_path):
    family, given, _ = latent_run
    other = "vq-vae" if family == "latent-diffusion" else "latent-diffusion"
    cases = [
        (family, {"autoencoder": str(tmp_path)}, "no genloom run there"),
        (other, {"autoencoder": str(given)}, f"is a {family} run; a {other} reuses the autoencoder of a {other} run"),
        (family, {"autoencoder": str(given), "compression": 4}, "has compression 2 (asked: 4)"),
    ]
    for name, options, message in cases:
        with pytest.raises(GenloomError, match=message.replace("(", r"\(").replace(")", r"\)")):
            gl.Model(name, **{**TINY[name], **options}).fit("digits", steps=2, **QUIET)
    with pytest.raises(GenloomError, match="was trained on 8x8 images with 1 channel; this data is 16x16 images"):
        gl.Model(family, **{**TINY[family], "autoencoder": str(given)}).fit(
            np.zeros((20, 16, 16), np.uint8), steps=2, **QUIET)

