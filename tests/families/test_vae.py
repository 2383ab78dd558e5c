import math

import pytest
import torch

from genloom.data.image_layout import ImageLayout
from genloom.defaults import family_config
from genloom.errors import GenloomError
from genloom.families import CATALOG, family_class
from genloom.families.configs import VAEConfig
from genloom.families.vae import VAE


def _vae(**options):
    return VAE(ImageLayout((1, 8, 8), 10), VAEConfig(latent_dim=4, width=8, **options))


def test_vae_is_in_the_catalog_and_options_are_checked():
    assert family_class("vae") is VAE and "vae" in CATALOG
    with pytest.raises(GenloomError, match="unknown family 'vea'; known families: autoregressive, cyclegan, diffusion, gan, "
                       "latent-diffusion, stylegan, vae, vq-vae, wgan-gp"):
        family_class("vea")
    with pytest.raises(GenloomError, match="unknown option 'latent' for family 'vae'"):
        family_config("vae", "image", {"latent": 3})
    with pytest.raises(GenloomError, match="beta must be at least 0; got -1.0"):
        family_config("vae", "image", {"beta": -1.0})


def test_shapes_of_encode_decode_sample_and_elbo():
    torch.manual_seed(0)
    vae = _vae()
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    assert vae.encode(x).shape == (5, 4)
    assert vae.decode(torch.zeros(5, 4)).shape == (5, 1, 8, 8)
    samples = vae.sample(3, None, torch.Generator().manual_seed(0))
    assert samples.shape == (3, 1, 8, 8)
    assert torch.equal(samples, vae.decode(torch.randn(3, 4, generator=torch.Generator().manual_seed(0))))
    assert vae.log_prob(x, generator=torch.Generator().manual_seed(0)).shape == (5,)


def test_log_prob_is_an_importance_weighted_bound_above_the_elbo_and_steadier():
    torch.manual_seed(0)
    vae, draws = _vae(), 400
    x = (torch.rand(3, 1, 8, 8) * 2 - 1).repeat(draws, 1, 1, 1)  # each example scored `draws` times
    with torch.no_grad():
        log_likelihood, kl, _ = vae.elbo_terms(x, None, torch.Generator().manual_seed(1))
        elbo = (log_likelihood - kl.sum(1)).view(draws, 3)
        vae.config.importance_samples = 1
        one_code = vae.log_prob(x, generator=torch.Generator().manual_seed(2)).view(draws, 3)
        vae.config.importance_samples = 16
        sixteen = vae.log_prob(x, generator=torch.Generator().manual_seed(3)).view(draws, 3)
    # one code's weight has the ELBO's mean: its log prior over posterior averages to -KL
    error = (one_code.var(0) / draws + elbo.var(0) / draws).sqrt()
    assert ((one_code.mean(0) - elbo.mean(0)).abs() < 4 * error).all()
    assert (sixteen.mean(0) > elbo.mean(0) + 4 * error).all()  # tighter
    assert (sixteen.std(0) < 0.8 * elbo.std(0)).all()  # and steadier


def test_beta_weights_the_kl_term():
    torch.manual_seed(0)
    vae = _vae(beta=4.0)
    x = torch.rand(6, 1, 8, 8) * 2 - 1
    torch.manual_seed(1)
    (_, loss, logs), = list(vae.losses(x, None))
    assert math.isclose(loss.item(), logs["recon"] + 4.0 * logs["kl"], rel_tol=1e-5)


def test_conditional_vae_uses_labels():
    torch.manual_seed(0)
    vae = _vae(conditional=True)
    z = torch.randn(2, 4)
    with torch.no_grad():
        vae.label_embedding.weight.normal_(0, 3)
        zeros, nines = vae.decode(z, torch.tensor([0, 0])), vae.decode(z, torch.tensor([9, 9]))
    assert not torch.allclose(zeros, nines)


def test_conditional_needs_labelled_data():
    with pytest.raises(GenloomError, match="needs labelled data"):
        VAE(ImageLayout((1, 8, 8), 0), VAEConfig(conditional=True))


def test_sampling_depends_only_on_the_generator():
    vae = _vae()
    a = vae.sample(4, None, torch.Generator().manual_seed(3))
    torch.manual_seed(123)  # the global RNG must not matter
    b = vae.sample(4, None, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_a_beta_sweep_trades_reconstruction_for_kl():
    """Higher beta: a posterior closer to the prior (lower KL), reconstructions worse."""
    import genloom as gl
    from tests.conftest import QUIET, TINY_VAE

    logs = {}
    for beta in (0.25, 4.0):
        model = gl.Model("vae", **TINY_VAE, beta=beta).fit("digits", steps=150, batch_size=64, ema_decay=0.0, **QUIET)
        x = model.codec.encode(gl.load_data("digits").values[:256])
        torch.manual_seed(0)
        with torch.no_grad():
            (_, _, logs[beta]), = list(model.ema_net.losses(x, None))
    assert logs[4.0]["kl"] < 0.7 * logs[0.25]["kl"]
    assert logs[4.0]["recon"] > logs[0.25]["recon"]


def test_vae_on_a_table_learns_and_samples_rows(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd

    import genloom as gl
    from genloom.train.loop import read_metrics
    from tests.conftest import QUIET

    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "blue"], 400, p=[0.8, 0.2])
    frame = pd.DataFrame({"colour": colour, "size": np.where(colour == "red", 10.0, 50.0) + rng.normal(0, 1, 400)})
    model = gl.Model("vae", latent_dim=4, width=8).fit(frame, steps=150, out=tmp_path / "r", batch_size=64,
                                                       warmup_steps=10, eval_every=50, **QUIET)
    val = [m["val_loss"] for m in read_metrics(tmp_path / "r" / "metrics.jsonl") if "val_loss" in m]
    assert val[-1] < val[0]
    rows = model.sample(300, seed=0)
    assert list(rows.columns) == ["colour", "size"] and set(rows["colour"]) <= {"red", "blue"}
    assert 0.6 < (rows["colour"] == "red").mean() < 0.95
    assert (tmp_path / "r" / "samples" / "final.csv").exists()
    pd.testing.assert_frame_equal(gl.load(tmp_path / "r").sample(20, seed=1), model.sample(20, seed=1))
    blue = model.sample(50, seed=2, conditions={"colour": "blue"})
    assert len(blue) == 50 and (blue["colour"] == "blue").all()
    # the in-memory frame it was fitted on, split as fit did; nothing written into the run without save
    scores = gl.evaluate(model, frame, target="colour", save=False)
    assert scores["quality"] > scores["quality_real_train"] - 0.15  # close to what real rows score
    assert scores["utility_synthetic"] > 0.9  # size tells the colour; a collapsed model would score 0.5
    assert not (tmp_path / "r" / "evaluation").exists()
    assert gl.evaluate(model, frame, target="colour") == scores  # the same seed gives the same report numbers
    assert (tmp_path / "r" / "evaluation" / "columns.png").exists()
    with pytest.raises(gl.GenloomError, match="cannot write table samples to rows.png; use a .csv or .parquet"):
        model.codec.save_samples(rows, tmp_path / "rows.png")
    import genloom.data.table_codec
    monkeypatch.setattr(genloom.data.table_codec, "MAX_CONDITION_DRAWS", 1)
    with pytest.raises(gl.GenloomError, match=r"only \d+ of 600 sampled rows matched \{'colour': 'blue'\}"):
        model.sample(600, seed=0, conditions={"colour": "blue"})  # about a fifth of one batch of 600 is blue
    with pytest.raises(gl.GenloomError, match="conditions apply to tables; this model makes image data"):
        gl.Model("vae", latent_dim=2, width=4).fit("digits", steps=1, **QUIET).sample(2, conditions={"a": 1})


def _property_vae(latent_dim=2):
    from genloom.data.table_layout import TableLayout
    from genloom.layout import Span

    layout = TableLayout((3,), spans=(Span("continuous", 1),) * 3, property_position=2)
    return VAE(layout, VAEConfig(latent_dim=latent_dim, width=8, property="y"))


@pytest.mark.parametrize("maximize", [True, False])
def test_design_draws_codes_from_the_prior_tilted_by_the_head(maximize):
    """A linear head a.z tilts N(0, I) to N(a / prior_weight, I): the codes design returns must have that mean
    (toward lower values when minimising) and unit spread."""
    vae = _property_vae()
    with torch.no_grad():
        vae.property_head = torch.nn.Linear(2, 1)
        vae.property_head.weight.copy_(torch.tensor([[1.0, 0.0]]))
        vae.property_head.bias.zero_()
    vae.decode = lambda z: torch.cat([z, torch.zeros(len(z), 1)], 1)  # rows that show the codes themselves
    rows = vae.design(4000, maximize, prior_weight=0.5, steps=200, generator=torch.Generator().manual_seed(0))
    codes = rows[:, :2]
    expected = torch.tensor([2.0 if maximize else -2.0, 0.0])
    assert torch.allclose(codes.mean(0), expected, atol=0.1)
    assert torch.allclose(codes.var(0), torch.ones(2), atol=0.15)


def test_the_encoder_does_not_see_the_property_it_predicts():
    vae = _property_vae()
    x = torch.randn(5, 3) * 0.3
    changed = x.clone()
    changed[:, 2] += 0.5
    assert torch.equal(vae.posterior(x)[0], vae.posterior(changed)[0])
    changed[:, 0] += 0.5  # another column does change the code
    assert not torch.equal(vae.posterior(x)[0], vae.posterior(changed)[0])


def test_a_property_head_needs_a_table_column_and_design_needs_the_head():
    with pytest.raises(GenloomError, match="a property head predicts a numerical table column or a molecule property; "
                                           "this data has no 'y'"):
        _vae(property="y")
    with pytest.raises(GenloomError, match="this VAE has no property head: train it with property='COLUMN'"):
        _vae().design(2, True, 0.2, 5, torch.Generator().manual_seed(0))


def _molecule_vae(**options):
    from genloom.data.molecule_layout import MoleculeLayout

    torch.manual_seed(0)
    return VAE(MoleculeLayout((8,), vocab_size=5), VAEConfig(latent_dim=3, width=4, decoder="autoregressive",
                                                             **options))


def test_an_autoregressive_decoder_is_scored_on_the_tokens_it_reads_and_samples_token_by_token():
    vae = _molecule_vae().eval()
    x = torch.randint(0, 5, (4, 8)).float()
    torch.manual_seed(1)
    log_likelihood, _, z = vae.elbo_terms(x, None)
    expected = -torch.nn.functional.cross_entropy(vae.decoder(z, None, x).transpose(1, 2), x.long(),
                                                  reduction="none").sum(1)
    torch.testing.assert_close(log_likelihood, expected)  # teacher forcing: x's own tokens are read
    decoded = vae.decode(z)
    torch.testing.assert_close(vae.decoder(z, None, decoded).argmax(-1).float(), decoded)  # greedy, step by step
    first = vae.sample(6, None, torch.Generator().manual_seed(2))
    assert torch.equal(first, vae.sample(6, None, torch.Generator().manual_seed(2)))
    assert first.shape == (6, 8) and not torch.equal(first, vae.sample(6, None, torch.Generator().manual_seed(3)))


def test_the_kl_weight_warms_up_over_the_share_of_the_budget_given():
    vae = _molecule_vae(beta=0.5, kl_warmup=0.4)
    x = torch.randint(0, 5, (4, 8)).float()
    for progress, weight in [(0.0, 0.0), (0.2, 0.25), (0.4, 0.5), (0.9, 0.5)]:
        vae.begin_step(progress)
        torch.manual_seed(1)
        (_, loss, logs), = list(vae.losses(x, None))
        assert math.isclose(loss.item(), logs["recon"] + weight * logs["kl"], rel_tol=1e-5), progress
    assert _molecule_vae(beta=0.5).kl_weight == 0.5  # no warm-up: beta from the first step


def test_an_autoregressive_decoder_is_for_token_sequences_and_word_dropout_needs_it():
    with pytest.raises(GenloomError, match="no autoregressive decoder network for image data yet"):
        _vae(decoder="autoregressive")
    with pytest.raises(GenloomError, match="word_dropout masks what an autoregressive decoder reads: add --decoder "
                                           "autoregressive"):
        _vae(word_dropout=0.2)
    assert _molecule_vae(word_dropout=0.2).decoder.word_dropout == 0.2


def test_free_bits_leave_each_dimensions_kl_unpenalised_up_to_their_nats():
    vae = _molecule_vae()
    x = torch.randint(0, 5, (16, 8)).float()
    torch.manual_seed(1)
    log_likelihood, kl, _ = vae.elbo_terms(x, None)
    per_dimension = kl.mean(0)
    vae.config.free_bits = floor = per_dimension.median().item()  # some dimensions under it, some over
    torch.manual_seed(1)
    (_, loss, logs), = list(vae.losses(x, None))
    expected = -log_likelihood.mean() + per_dimension.clamp_min(floor).sum()
    assert math.isclose(loss.item(), expected.item(), rel_tol=1e-5)
    assert not math.isclose(loss.item(), (-log_likelihood.mean() + per_dimension.sum()).item(), rel_tol=1e-5)
    assert math.isclose(logs["kl"], kl.sum(1).mean().item(), rel_tol=1e-5)  # the log keeps the true KL
