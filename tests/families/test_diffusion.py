import numpy as np
import pytest
import torch

import genloom as gl
from diffusers import schedulers
from genloom.data.image_layout import ImageLayout
from genloom.data.table_layout import TableLayout
from genloom.defaults import family_config
from genloom.errors import GenloomError
from genloom.families import sample_options
from genloom.families.configs import DiffusionConfig, DiffusionSampling
from genloom.families.diffusion import Diffusion
from genloom.layout import Span

from ..conftest import QUIET

LAYOUT = ImageLayout((1, 8, 8), 10)
TINY = {"width": 8, "timesteps": 100}


def _diffusion(**options):
    torch.manual_seed(0)
    return Diffusion(LAYOUT, DiffusionConfig(**{**TINY, **options}))


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_noised_images_and_targets_equal_diffusers(schedule, prediction):
    family = _diffusion(schedule=schedule, prediction=prediction, timesteps=1000)
    theirs = schedulers.DDPMScheduler(num_train_timesteps=1000, prediction_type=prediction,
                                      beta_schedule="squaredcos_cap_v2" if schedule == "cosine" else "linear")
    x, noise, t = torch.rand(6, 1, 8, 8) * 2 - 1, torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 10, 500, 998, 999])
    x_t, target = family.corrupt(x, noise, t)
    torch.testing.assert_close(x_t, theirs.add_noise(x, noise, t), atol=1e-5, rtol=1e-5)
    expected = noise if prediction == "epsilon" else theirs.get_velocity(x, noise, t)
    torch.testing.assert_close(target, expected, atol=1e-5, rtol=1e-5)


def test_the_untrained_loss_is_the_noise_variance():
    family = _diffusion()
    loss = next(family.losses(torch.rand(256, 1, 8, 8) * 2 - 1, None))[1]
    assert loss.item() == pytest.approx(1.0, abs=0.02)  # the U-Net starts at zero: E[eps^2] = 1


class _Oracle(torch.nn.Module):
    """The exact noise prediction when every training image is the same image `x0`."""

    def __init__(self, family: Diffusion, x0: torch.Tensor):
        super().__init__()
        self.family, self.x0 = family, x0

    def forward(self, x_t, t, labels=None):
        abar = self.family.alphas_cumprod[t].view(-1, 1, 1, 1)
        eps = (x_t - abar.sqrt() * self.x0) / (1 - abar).sqrt()
        return eps if self.family.config.prediction == "epsilon" else abar.sqrt() * eps - (1 - abar).sqrt() * self.x0


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
@pytest.mark.parametrize("sampler, steps", [("ddpm", None), ("ddpm", 10), ("ddim", 10), ("dpm-solver", 5),
                                            ("dpm-solver-sde", 5)])
def test_every_sampler_lands_on_the_data_with_a_perfect_denoiser(sampler, steps, prediction):
    family = _diffusion(prediction=prediction)
    x0 = torch.linspace(-0.9, 0.9, 64).view(1, 1, 8, 8)
    family.denoiser = _Oracle(family, x0)
    samples = family.sample(4, None, torch.Generator().manual_seed(0), DiffusionSampling(sampler, steps))
    torch.testing.assert_close(samples, x0.expand(4, -1, -1, -1), atol=1e-3, rtol=0)


class _ByLabel(torch.nn.Module):
    """Output = the label id (the "no class" id included), to see what guidance mixes."""

    def forward(self, x_t, t, labels=None):
        return labels.float().view(-1, 1, 1, 1).expand_as(x_t)


def test_guidance_mixes_conditional_and_unconditional_outputs():
    family = _diffusion(conditional=True)
    family.denoiser = _ByLabel()
    x, labels = torch.zeros(2, 1, 8, 8), torch.tensor([3, 4])
    guided = family.denoise(x, 5, labels, guidance=3.0)
    no_class = LAYOUT.num_classes  # 10
    expected = no_class + 3.0 * (labels.float() - no_class)
    torch.testing.assert_close(guided[:, 0, 0, 0], expected)
    torch.testing.assert_close(family.denoise(x, 5, labels, guidance=1.0)[:, 0, 0, 0], labels.float())


def test_labels_are_dropped_in_training_only():
    family = _diffusion(conditional=True, label_dropout=0.5)
    seen = []
    family.denoiser.forward = lambda x_t, t, labels: seen.append(labels.clone()) or torch.zeros_like(x_t)
    labels = torch.zeros(1000, dtype=torch.long)
    family.train()
    next(family.losses(torch.zeros(1000, 1, 8, 8), labels))
    family.eval()
    next(family.losses(torch.zeros(1000, 1, 8, 8), labels))
    dropped = (seen[0] == LAYOUT.num_classes).float().mean().item()
    assert 0.45 < dropped < 0.55 and (seen[1] == 0).all()


def test_given_columns_are_blurred_in_training_only():
    layout = TableLayout((1,), spans=(Span("continuous", 1),), condition_width=2)
    torch.manual_seed(0)
    family = Diffusion(layout, DiffusionConfig(**TINY, condition_noise=0.5))
    seen = []
    family.denoiser.forward = lambda x_t, t, given: seen.append(given.clone()) or torch.zeros_like(x_t)
    given = torch.ones(2000, 2)
    family.train()
    family.noise_loss(torch.zeros(2000, 1), given)
    family.eval()
    family.noise_loss(torch.zeros(2000, 1), given)
    assert abs((seen[0] - 1).std().item() - 0.5) < 0.03 and torch.equal(seen[1], given)
    with pytest.raises(GenloomError, match="this model generates rows given the values of other columns"):
        family.sample(2, None, torch.Generator())


def test_bad_sampling_options_are_one_line_errors():
    with pytest.raises(GenloomError,
                       match="sampler must be one of ddpm, ddim, dpm-solver, dpm-solver-sde; got 'euler'"):
        sample_options("diffusion", {"sampler": "euler"})
    with pytest.raises(GenloomError, match="eta applies to the ddim sampler only"):
        sample_options("diffusion", {"eta": 0.5})
    with pytest.raises(GenloomError, match="unknown sampling option 'temprature' for family 'diffusion'"):
        sample_options("diffusion", {"temprature": 0.5})
    with pytest.raises(GenloomError, match="prediction must be one of epsilon, v; got 'x0'"):
        family_config("diffusion", "image", {"prediction": "x0"})
    family = _diffusion()
    generator = torch.Generator()
    with pytest.raises(GenloomError, match="steps must be at least 1; got 0"):
        sample_options("diffusion", {"sampler": "ddim", "steps": 0})
    with pytest.raises(GenloomError, match="sampler steps must lie in 1..100; got 101"):
        family.sample(1, None, generator, DiffusionSampling("ddim", 101))
    with pytest.raises(GenloomError, match="guidance needs a conditional model"):
        family.sample(1, None, generator, DiffusionSampling(guidance=2.0))


def test_training_lowers_the_loss_and_samples_are_images(tmp_path):
    model = gl.Model("diffusion", **TINY).fit("digits", steps=80, out=tmp_path / "r", batch_size=32, eval_every=40,
                                              ema_decay=0.9, warmup_steps=10, **QUIET)
    assert model.record["final_metrics"]["denoising_loss"] < 0.5  # 1.0 untrained
    for options in ({}, {"sampler": "ddim", "steps": 10, "eta": 1.0}, {"sampler": "ddpm", "steps": 25}):
        images = model.sample(3, seed=1, **options)
        assert images.shape == (3, 8, 8, 1) and images.dtype == np.uint8
    assert np.array_equal(model.sample(3, seed=1), gl.load(tmp_path / "r").sample(3, seed=1))


def test_guidance_needs_a_trained_unconditional_branch():
    family = _diffusion(conditional=True, label_dropout=0.0)
    with pytest.raises(GenloomError, match="guidance needs a conditional model trained with label_dropout > 0"):
        family.sample(1, torch.tensor([1]), torch.Generator(), DiffusionSampling(guidance=2.0))


def test_a_conditional_run_samples_with_its_own_guidance_unless_asked_otherwise():
    labels = torch.tensor([1, 2])

    def drawn(family, **asked):
        return family.eval().sample(2, labels, torch.Generator().manual_seed(0), DiffusionSampling(steps=3, **asked))

    guided = _diffusion(conditional=True, guidance=2.5)
    for module in guided.modules():  # past the zero initialisation: the labels reach the output
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=0.05)
    assert torch.equal(drawn(guided), drawn(guided, guidance=2.5))
    assert not torch.equal(drawn(guided), drawn(guided, guidance=1.0))
    unconditional = _diffusion(guidance=2.5)  # its own guidance has nothing to mix: plain sampling
    assert torch.equal(drawn(unconditional), drawn(unconditional, guidance=1.0))


def test_odd_and_awkward_widths_build():
    for width in (7, 12, 20):
        family = _diffusion(width=width)
        assert family.denoiser(torch.randn(2, 1, 8, 8), torch.tensor([1, 2])).shape == (2, 1, 8, 8)


@pytest.mark.parametrize("kind, timesteps, expected", [
    ("image", 1000, {"dpm-solver": 20, "ddim": 20, "ddpm": 1000}),
    ("table", 1000, {"dpm-solver": 100, "ddim": 100, "ddpm": 100}),
    ("table", 50, {"dpm-solver": 50, "ddim": 50, "ddpm": 50}),  # never more than the model has
])
def test_default_sampler_and_steps_come_from_the_kinds_defaults(kind, timesteps, expected):
    layout = LAYOUT if kind == "image" else TableLayout((3,), spans=(Span("continuous", 1), Span("category", 2)))
    family = Diffusion(layout, family_config("diffusion", kind, {"width": 8, "timesteps": timesteps}))
    assert family.config.sampler == ("dpm-solver" if kind == "image" else "ddpm")
    assert {name: family.default_steps(name) for name in expected} == expected
    assert family.sampling_passes() == expected[family.config.sampler]


# -- the latent space: DDIM inversion and DDIM sampling -------------------------------------------------------------
@pytest.mark.parametrize("prediction", ["epsilon", "v"])
@pytest.mark.parametrize("schedule, clip", [("linear", False), ("cosine", True)])
def test_an_inversion_step_equals_diffusers(schedule, prediction, clip):
    from genloom.families.samplers import DDIMSampler
    from genloom.families.schedules import NoiseSchedule
    ours = DDIMSampler(NoiseSchedule.named(schedule, 1000), prediction, clip=clip)
    theirs = schedulers.DDIMInverseScheduler(num_train_timesteps=1000, clip_sample=clip, set_alpha_to_one=True,
                                             prediction_type="v_prediction" if prediction == "v" else prediction,
                                             beta_schedule="squaredcos_cap_v2" if schedule == "cosine" else "linear")
    theirs.set_timesteps(10)
    assert ours.timesteps(10).flip(0).tolist() == theirs.timesteps.tolist()  # 0, 100, ..., 900
    generator = torch.Generator().manual_seed(0)
    for t in theirs.timesteps.tolist():
        x, output = torch.randn(2, 1, 8, 8, generator=generator), torch.randn(2, 1, 8, 8, generator=generator)
        torch.testing.assert_close(ours.invert_step(output, t, x), theirs.step(output, t, x).prev_sample,
                                   atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def digits_diffusion(digits):
    """A tiny diffusion model trained a little on 64 digits (~8 s)."""
    return gl.Model("diffusion", **TINY).fit(digits.values[:64], steps=120, batch_size=32, ema_decay=0.9,
                                             warmup_steps=10, **QUIET)


def test_ddim_inversion_then_sampling_returns_the_images(digits_diffusion, digits):
    """Measured: a mean squared error of 0.013 after the round trip (20 steps); 0.75 when decoding another
    image's noise."""
    net, x = digits_diffusion.ema_net, digits_diffusion.codec.encode(digits.values[:8])
    with torch.no_grad():
        z = net.encode(x)
        back, swapped = net.decode(z), net.decode(z.roll(1, 0))
    assert z.shape == x.shape and 0.8 < z.std() < 1.2  # noise-like: unit variance
    error, other = (back - x).square().flatten(1).mean(1), (swapped - x).square().flatten(1).mean(1)
    assert error.mean() < 0.03 and (error < other / 10).all()


def test_encode_and_decode_walk_as_diffusers_ddim(digits_diffusion, digits):
    """The whole inversion and the whole sampling, step by step as diffusers' schedulers (x_0 unclipped)."""
    net, x = digits_diffusion.ema_net, digits_diffusion.codec.encode(digits.values[:4])
    assert (net.config.schedule, net.config.prediction, net.default_steps("ddim")) == ("cosine", "epsilon", 20)
    same = {"num_train_timesteps": 100, "beta_schedule": "squaredcos_cap_v2", "clip_sample": False,
            "set_alpha_to_one": True}
    inverse, forward = schedulers.DDIMInverseScheduler(**same), schedulers.DDIMScheduler(**same)
    inverse.set_timesteps(20), forward.set_timesteps(20)
    with torch.no_grad():
        z = x
        for t in inverse.timesteps:
            z = inverse.step(net.denoiser(z, t.repeat(len(z))), t, z).prev_sample
        torch.testing.assert_close(net.encode(x), z, atol=1e-4, rtol=1e-4)
        sample = z
        for t in forward.timesteps:
            sample = forward.step(net.denoiser(sample, t.repeat(len(sample))), t, sample).prev_sample
        torch.testing.assert_close(net.decode(z), sample.clamp(-1, 1), atol=1e-4, rtol=1e-4)


def test_a_seed_code_is_the_noise_sampling_starts_from(monkeypatch):
    from genloom.families.latent_paths import seed_code
    family = _diffusion()
    started = []
    monkeypatch.setattr(family, "_walk", lambda sampler, timesteps, noise, *rest: started.append(noise))
    family.sample(1, None, torch.Generator().manual_seed(4), DiffusionSampling("ddim", 5))
    assert family.latent_shape == (1, 8, 8)
    assert torch.equal(started[0][0], seed_code(4, family.latent_shape))


def test_tables_with_categories_have_no_ddim_inversion():
    numbers = Diffusion(TableLayout((2,), spans=(Span("continuous", 1),) * 2), DiffusionConfig(width=8, timesteps=50))
    assert numbers.latent_shape == (2,)
    with torch.no_grad():
        assert numbers.decode(numbers.encode(torch.zeros(3, 2))).shape == (3, 2)
    mixed = Diffusion(TableLayout((3,), spans=(Span("continuous", 1), Span("category", 2))),
                      DiffusionConfig(width=8, timesteps=50))
    with pytest.raises(GenloomError, match="need a table without category columns: .* use a VAE"):
        mixed.encode(torch.zeros(3, 3))
