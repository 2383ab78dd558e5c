import re

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import cdist

import genloom as gl
from genloom.data.image_layout import ImageLayout
from genloom.data.table_layout import TableLayout
from genloom.defaults import defaults_for, family_config
from genloom.errors import GenloomError
from genloom.families import family_class, sample_options
from genloom.families.configs import GANConfig, StyleGANConfig
from genloom.families.gan import GAN, WGANGP, StyleGAN
from genloom.layout import Span
from genloom.train.checkpoint import load_state

from ..conftest import QUIET

LAYOUT = ImageLayout((1, 8, 8), 10)


def _gan(**options):
    return GAN(LAYOUT, GANConfig(latent_dim=4, width=8, **{"spectral_norm": False, "pac": 1, **options}))


def test_both_losses_are_in_the_catalog_and_options_checked():
    assert family_class("gan") is GAN and family_class("wgan-gp") is WGANGP
    assert family_config("wgan-gp", "image", {}).loss == "wasserstein-gp"
    assert family_config("gan", "image", {}).loss == "non-saturating"
    assert defaults_for("wgan-gp", "image").train["adam_beta1"] == 0.0
    assert defaults_for("gan", "image").train["adam_beta1"] == 0.5
    with pytest.raises(GenloomError, match="loss must be one of non-saturating, wasserstein-gp; got 'hinge'"):
        family_config("gan", "image", {"loss": "hinge"})
    with pytest.raises(GenloomError, match="d_steps must be at least 1; got 0"):
        family_config("gan", "image", {"d_steps": 0})


def test_optimiser_groups_split_generator_and_discriminator():
    gan = _gan(conditional=True)
    groups = gan.param_groups()
    generator, discriminator = map(set, (groups["generator"], groups["discriminator"]))
    assert not generator & discriminator
    assert generator | discriminator == set(gan.parameters())
    assert gan.label_embedding.weight in generator and gan.discriminator.projection.weight in discriminator


def test_discriminator_steps_do_not_reach_the_generator():
    torch.manual_seed(0)
    gan = _gan(d_steps=3)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    groups = []
    for group, loss, _ in gan.losses(x, None):
        gan.zero_grad()
        loss.backward()
        groups.append(group)
        if group == "discriminator":
            assert all(p.grad is None for p in gan.generator.parameters())
        else:
            assert all(p.grad is not None for p in gan.generator.parameters())
    assert groups == ["discriminator"] * 3 + ["generator"]


def test_non_saturating_losses_are_softplus_of_the_scores():
    torch.manual_seed(0)
    gan = _gan()
    gan.discriminator.forward = lambda x, labels, conditions=None: x.flatten(1).mean(1)  # score = mean pixel
    x = torch.full((2, 1, 8, 8), 0.5)
    torch.manual_seed(1)
    (_, d_loss, logs), (_, g_loss, _) = list(gan.losses(x, None))
    fake = logs["d_fake"]
    assert d_loss.item() == pytest.approx(np.log1p(np.exp(-0.5)) + np.log1p(np.exp(fake)), rel=1e-5)
    assert logs["d_real"] == pytest.approx(0.5)
    torch.manual_seed(1)
    torch.randn(2, 4)  # the latents of the critic's step
    with torch.no_grad():
        second_fake = torch.tanh(gan.generator(torch.randn(2, 4), None))  # the generator's step draws anew
    expected = F.softplus(-second_fake.flatten(1).mean(1)).mean()  # -log D(G(z)) with D = sigmoid(score)
    assert g_loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradient_penalty_of_a_linear_critic():
    """D(x) = w.x has gradient w everywhere, so the penalty is (|w| - 1)^2."""
    gan = _gan(loss="wasserstein-gp")
    w = torch.randn(1, 1, 8, 8)
    gan.discriminator.forward = lambda x, labels, conditions=None: (x * w).flatten(1).sum(1)
    penalty = gan._gradient_penalty(torch.randn(5, 1, 8, 8), torch.randn(5, 1, 8, 8), None, None)
    assert penalty.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)


def test_spectral_norm_bounds_every_layer_of_the_discriminator():
    torch.manual_seed(0)
    gan = _gan(spectral_norm=True)
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in gan.discriminator.modules())
    for _ in range(20):  # power iterations run in training-mode forward passes
        gan.discriminator(torch.randn(8, 1, 8, 8), None)
    layers = [m for m in gan.discriminator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)


def test_conditional_generator_and_projection_use_the_label():
    torch.manual_seed(0)
    gan = _gan(conditional=True)
    with torch.no_grad():
        gan.label_embedding.weight.normal_(0, 3)
        gan.discriminator.projection.weight.normal_(0, 3)
    z, x = torch.randn(2, 4), torch.randn(2, 1, 8, 8)
    assert not torch.allclose(gan.decode(z, torch.tensor([0, 0])), gan.decode(z, torch.tensor([9, 9])))
    assert not torch.allclose(gan.discriminator(x, torch.tensor([0, 0])), gan.discriminator(x, torch.tensor([9, 9])))


@pytest.mark.parametrize("family", ["gan", "wgan-gp", "stylegan"])
def test_training_moves_the_generator_to_the_data(family):
    """Every training image is the same flat gray: G must learn that value, from tanh(0) = 0 at the start."""
    gray = np.full((64, 8, 8, 1), 223, dtype=np.uint8)  # 0.75 in the codec's [-1, 1]
    model = gl.Model(family, latent_dim=4, width=8).fit(gray, steps=120, batch_size=32, lr=2e-3, **QUIET)
    samples = model.sample(32, seed=0).astype(float)
    assert abs(samples.mean() - 223) < 20 and samples.std() < 25


def _energy_distance(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(len(a), -1) / 255.0, b.reshape(len(b), -1) / 255.0
    return 2 * cdist(a, b).mean() - cdist(a, a).mean() - cdist(b, b).mean()


def test_a_quantum_generator_trained_on_zeros_comes_nearer_them(digits):
    """A constant image is no test here: a circuit maps different noise to states as far apart as the noise's,
    so its outputs vary by construction. One digit class instead, against the same generator untrained."""
    pytest.importorskip("pennylane")
    zeros = digits.values[digits.labels == 0]
    options = {"batch_size": 32, "lr": 2e-3, "ema_decay": 0.0, **QUIET}
    distances = [_energy_distance(gl.Model("gan", backbone="quantum", circuit_depth=4).fit(zeros, steps=steps,
                                                                                            **options)
                                  .sample(128, seed=0), zeros[:128]) for steps in (1, 150)]
    assert distances[1] < distances[0] / 3


def test_a_diverging_gan_is_rolled_back(tmp_path, monkeypatch):
    original, calls = GAN.losses, {"n": 0}

    def losses(self, x, labels):
        calls["n"] += 1
        for group, loss, logs in original(self, x, labels):
            yield group, (loss * float("nan") if calls["n"] == 8 and group == "generator" else loss), logs
    monkeypatch.setattr(GAN, "losses", losses)
    model = gl.Model("gan", latent_dim=4, width=8).fit("digits", steps=12, out=tmp_path / "r", checkpoint_every=5,
                                                       **QUIET)
    assert model.record["steps_trained"] == 12
    assert load_state(tmp_path / "r" / "trainer.pt")["lr_scale"] == 0.5
    assert "non-finite loss (nan) in 'generator'" in (tmp_path / "r" / "metrics.jsonl").read_text()


def test_a_gan_on_a_table_makes_one_hot_like_spans():
    layout = TableLayout((4,), spans=(Span("continuous", 1), Span("mode", 3)))
    gan = GAN(layout, GANConfig(latent_dim=4, width=4))
    rows = gan.sample(200, None, torch.Generator().manual_seed(0))
    assert rows.shape == (200, 4) and rows[:, 0].abs().max() < 1
    torch.testing.assert_close(rows[:, 1:].sum(1), torch.ones(200))
    assert rows[:, 1:].max(1).values.median() > 0.95  # Gumbel-softmax at temperature 0.2: nearly one-hot
    again = gan.sample(200, None, torch.Generator().manual_seed(0))
    assert torch.equal(rows, again)


def test_critic_numbers_are_averaged_over_its_steps(tmp_path):
    from genloom.train.loop import read_metrics
    gl.Model("wgan-gp", latent_dim=4, width=8, d_steps=3).fit("digits", steps=2, out=tmp_path / "r", log_every=1,
                                                               **QUIET)
    logged = [m for m in read_metrics(tmp_path / "r" / "metrics.jsonl") if "loss_discriminator" in m]
    assert len(logged) == 2 and all(m["loss"] == m["loss_generator"] for m in logged)
    assert all(abs(m["gradient_penalty"]) < 5 for m in logged)  # a mean of three penalties near 1, not their sum


def test_a_table_gan_packs_rows_and_asks_for_categories():
    layout = TableLayout((6,), spans=(Span("continuous", 1), Span("mode", 2), Span("category", 3)))
    gan = GAN(layout, family_config("gan", "table", {"latent_dim": 4, "width": 4, "loss": "wasserstein-gp"}))
    assert gan.pac == 10 and gan.categories.width == 3  # CTGAN's pack of 10, from the defaults of tables
    x = torch.cat([torch.rand(25, 1), F.one_hot(torch.randint(2, (25,)), 2), F.one_hot(torch.randint(3, (25,)), 3)],
                  1).float()
    weights = gan.prepare(x)
    assert weights.shape == (25,) and torch.equal(gan.categories.counts, x[:, 3:].sum(0))
    scores = []

    def critic(rows, labels, conditions):  # records what it is shown; linear, so the penalty has a gradient
        scores.append((rows.shape, conditions.shape))
        return (rows.sum(1) + conditions.sum(1)).view(-1, 10).sum(1)
    gan.discriminator.forward = critic
    steps = list(gan.losses(x, None))
    assert [group for group, _, _ in steps] == ["discriminator", "generator"]
    assert scores[0] == ((20, 6), (20, 3))  # 25 rows make two whole packs of 10
    assert "condition_loss" in steps[1][2]
    with pytest.raises(GenloomError, match="a batch of 5 rows holds no whole pack of 10"):
        gan.check_batch_size(5)
    with pytest.raises(GenloomError, match="packs examples of different classes: use it without --conditional"):
        GANConfig(pac=4, conditional=True)
    images = GAN(ImageLayout((1, 8, 8)), GANConfig(latent_dim=4, width=4, pac=2))  # stacked as 2 channels
    assert images.discriminator(torch.randn(6, 1, 8, 8), None).shape == (3,)


def test_a_batch_smaller_than_a_pack_is_refused_before_the_run_exists(tmp_path):
    import pandas as pd
    frame = pd.DataFrame({"size": np.linspace(0, 1, 40), "colour": ["red", "blue"] * 20})
    with pytest.raises(GenloomError, match=re.escape("a batch of 5 rows holds no whole pack of 10; use a batch size (and data) of at least 10")):
        gl.Model("gan", latent_dim=4, width=8).fit(frame, steps=2, batch_size=5, out=tmp_path / "r", **QUIET)
    assert not (tmp_path / "r").exists()


def test_a_table_gan_steers_its_generator_towards_a_condition(tmp_path):
    """As CTGAN samples from conditions: the asked category in every row's conditional vector makes a
    rare category common, so conditional sampling needs few draws."""
    import pandas as pd
    rng = np.random.default_rng(0)
    colour = np.where(rng.random(600) < 0.05, "green", rng.choice(["red", "blue"], 600))
    frame = pd.DataFrame({"size": rng.normal(0, 1, 600), "colour": colour})
    model = gl.Model("gan", latent_dim=8, width=32).fit(frame, steps=100, out=tmp_path / "r", **QUIET)
    given = model.codec.condition_positions({"colour": "green"})
    with torch.no_grad():
        def green_share(asked):
            rows = model.codec.decode(model.ema_net.eval().sample(500, None, torch.Generator().manual_seed(0),
                                                                  None, asked))
            return (rows["colour"] == "green").mean()
        assert green_share(given) > 0.8 and green_share(()) < 0.15  # measured: 0.96 and 0.05
    green = model.sample(50, seed=1, conditions={"colour": "green"})
    assert len(green) == 50 and (green["colour"] == "green").all()


def test_the_gradient_penalty_takes_one_norm_per_pack():
    """A linear critic w.x summed over a pack of 2 rows has gradient w on each row: norm sqrt(2) |w| per pack."""
    layout = TableLayout((4,), spans=(Span("continuous", 1), Span("missing", 3)))
    gan = GAN(layout, GANConfig(latent_dim=4, width=4, loss="wasserstein-gp", pac=2))
    w = torch.randn(4)
    gan.discriminator.forward = lambda rows, labels, conditions=None: (rows @ w).view(-1, 2).sum(1)
    penalty = gan._gradient_penalty(torch.randn(6, 4), torch.randn(6, 4), None, None)
    assert penalty.item() == pytest.approx((2 ** 0.5 * w.norm().item() - 1) ** 2, rel=1e-5)
    with pytest.raises(GenloomError, match="pac must be at least 1; got 0"):
        family_config("gan", "table", {"pac": 0})


# -- latent inversion -----------------------------------------------------------------------------------------------
def _errors(made, x):
    return (made - x).square().flatten(1).mean(1)


def test_inversion_finds_the_codes_of_the_generators_own_images():
    """Images G made from known codes are inverted to codes that remake them ~800 times more closely than random
    codes do (measured: 7e-5 against 0.06 on an untrained G, whose images already differ by code)."""
    torch.manual_seed(0)
    gan = _gan().eval()
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():  # as Model.encode calls it
        made = gan.decode(torch.randn(8, 4, generator=generator))
        z = gan.encode(made, steps=100)
        random_codes = torch.randn(8, 4, generator=generator)
        inverted, random = _errors(gan.decode(z), made), _errors(gan.decode(random_codes), made)
    assert z.shape == (8, 4) and not z.requires_grad
    assert inverted.mean() < random.mean() / 100 and (inverted < random).all()
    assert all(p.grad is None for p in gan.parameters())  # gradients went to z only
    torch.testing.assert_close(gan.encode(made, steps=100), z, rtol=0, atol=0)  # seeded starts: deterministic


def test_inversion_of_real_images_beats_the_best_of_many_random_codes(digits):
    """Measured on 8 digits: inverted 0.165, the best of 64 random codes 0.281, a random code 0.543."""
    model = gl.Model("gan", latent_dim=8, width=8).fit("digits", steps=150, batch_size=32, lr=2e-3, **QUIET)
    net, x = model.ema_net, model.codec.encode(digits.values[:8])
    z = model.encode(digits.values[:8])  # through Model: under no_grad
    with torch.no_grad():
        inverted = _errors(net.decode(torch.from_numpy(z)), x)
        codes = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))
        random = torch.stack([_errors(net.decode(codes), row.expand(64, -1, -1, -1)) for row in x])
    assert (inverted < random.min(1).values).all()
    assert inverted.mean() < 0.75 * random.min(1).values.mean() and inverted.mean() < 0.5 * random.mean()


def test_a_table_gan_inverts_rows_under_the_mean_condition():
    """A code cannot carry a row's own category, so encode and (generator-less) decode both condition on the mean
    of the conditions, and decode leaves out the Gumbel noise: the round trip keeps the categories."""
    import pandas as pd
    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "blue", "green"], 600)
    frame = pd.DataFrame({"size": rng.normal(0, 1, 600) + 3 * (colour == "red"), "colour": colour})
    model = gl.Model("gan", latent_dim=8, width=32).fit(frame, steps=150, **QUIET)
    rows = frame.iloc[:40]
    z = model.encode(rows)
    random_codes = np.random.default_rng(1).normal(size=z.shape)
    back, random = model.decode(z), model.decode(random_codes)
    assert back.equals(model.decode(z))  # deterministic
    assert (back.colour.values == rows.colour.values).mean() == 1  # random codes: 0.4
    assert (random.colour.values == rows.colour.values).mean() < 0.7
    size_error = np.abs(back["size"].values - rows["size"].values).mean()
    assert size_error < 0.25 * np.abs(random["size"].values - rows["size"].values).mean()  # measured 0.13 vs 2.0


def test_a_seed_code_decodes_to_what_sampling_with_that_seed_makes():
    from genloom.families.latent_paths import seed_code
    torch.manual_seed(0)
    gan = _gan().eval()
    with torch.no_grad():
        for seed in (0, 3):
            torch.testing.assert_close(gan.decode(seed_code(seed, gan.latent_shape)[None]),
                                       gan.sample(1, None, torch.Generator().manual_seed(seed)), rtol=0, atol=0)


def test_r1_is_half_gamma_times_the_critics_squared_gradient_on_real_images():
    torch.manual_seed(0)
    gan = _gan(r1_weight=4.0, pac=2)
    x = torch.rand(8, 1, 8, 8) * 2 - 1
    torch.manual_seed(1)
    _, loss, logs = next(gan.losses(x, None))
    real = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(gan.discriminator(real, None).sum(), real)
    expected = grad.square().reshape(4, -1).sum(1).mean()  # one norm per pack of two
    assert logs["r1"] == pytest.approx(expected.item(), rel=1e-5)
    assert "r1" not in next(_gan().losses(x, None))[2]


def _stylegan(**options) -> StyleGAN:
    torch.manual_seed(0)
    return StyleGAN(LAYOUT, StyleGANConfig(**{"latent_dim": 8, "width": 8, "mapping_layers": 2, **options}))


def test_truncation_zero_gives_the_average_style_for_every_code():
    gan = _stylegan().eval()
    with torch.no_grad():
        gan.generator.w_average.normal_()
        average = gan.sample(4, None, torch.Generator().manual_seed(0), sample_options("stylegan", {"truncation": 0.0}))
        varied = gan.sample(4, None, torch.Generator().manual_seed(0), sample_options("stylegan", {"truncation": 1.0}))
    assert torch.allclose(average, average[:1].expand_as(average))
    assert not torch.allclose(varied, varied[:1].expand_as(varied))


@pytest.mark.parametrize("truncation", [-0.1, 1.5])
def test_truncation_outside_zero_to_one_is_refused(truncation):
    with pytest.raises(GenloomError, match=rf"truncation must lie in \[0, 1\]; got {truncation}"):
        sample_options("stylegan", {"truncation": truncation})


def test_style_mixing_switches_styles_in_training_only():
    """The noise strengths start at 0, so only mixing (a second, random code) can make two training passes of the
    same codes differ."""
    z = torch.randn(4, 8)
    for mixing, differ in ((0.0, False), (1.0, True)):
        generator = _stylegan(style_mixing=mixing).generator.train()
        assert (not torch.equal(generator(z), generator(z))) == differ, mixing
    generator.eval()
    assert torch.equal(generator(z), generator(z))


def test_stylegan_codes_invert_through_its_mapping_and_styles():
    """The GAN's inversion reaches z through the mapping network and the modulated convs (fixed noise in eval)."""
    gan = _stylegan(latent_dim=4).eval()
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        made = gan.decode(torch.randn(8, 4, generator=generator))
        z = gan.encode(made, steps=100)
        inverted = _errors(gan.decode(z), made)
        random = _errors(gan.decode(torch.randn(8, 4, generator=generator)), made)
    assert inverted.mean() < random.mean() / 10


def test_stylegan_is_built_for_images_only(tmp_path):
    frame = gl.load_data("wine")
    with pytest.raises(GenloomError, match="no style decoder network for table data"):
        gl.Model("stylegan").fit(frame, steps=1, **QUIET)


def test_the_quantum_generator_takes_its_noise_size_from_the_qubits_and_is_refused_where_it_cannot_run():
    assert GANConfig(backbone="quantum", qubits=7).latent_dim == 7
    assert GANConfig().latent_dim == 32
    assert GANConfig(backbone="quantum", qubits=7, latent_dim=7).latent_dim == 7
    with pytest.raises(GenloomError, match="a 13-qubit circuit is more than the simulator handles here"):
        GANConfig(backbone="quantum", qubits=13)
    with pytest.raises(GenloomError, match="latent_dim must be 5 \\(the qubits\\), not 8; leave it out"):
        GANConfig(backbone="quantum", latent_dim=8)
    with pytest.raises(GenloomError, match="stylegan has its own generator"):
        StyleGANConfig(backbone="quantum")
    with pytest.raises(GenloomError, match="qubits and circuit_depth shape the quantum generator: add --backbone"):
        GANConfig(qubits=7)


def test_a_conditional_quantum_gan_makes_each_class_its_own_way(digits):
    pytest.importorskip("pennylane")
    model = gl.Model("gan", backbone="quantum", qubits=4, circuit_depth=2, conditional=True).fit(digits, steps=2,
                                                                                                 **QUIET)
    ones, sevens = (model.sample(4, labels=[label] * 4, seed=0).astype(float) for label in ("1", "7"))
    assert np.abs(ones - sevens).mean() > 1.0


def test_a_quantum_gan_on_a_table_saves_and_reloads_to_the_same_samples(tmp_path):
    pytest.importorskip("pennylane")
    frame = gl.load_data("wine").values.iloc[:64, :3]
    model = gl.Model("gan", backbone="quantum", qubits=3, circuit_depth=2).fit(frame, steps=3, out=tmp_path / "run",
                                                                                **QUIET)
    assert model.ema_net.generator.parameter_counts()["quantum"] == model.ema_net.generator.patches * 2 * 3
    pd.testing.assert_frame_equal(gl.load(tmp_path / "run").sample(16, seed=1), model.sample(16, seed=1))
