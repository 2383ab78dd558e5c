"""Differentially private training with Opacus: the noise Opacus' accountant sets, the epsilon it says was spent,
Poisson batches, a private model that still learns, a resumed private run, and what DP refuses."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from opacus.accountants import RDPAccountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.optimizers import DPOptimizer

import genloom as gl
from genloom.cli import main
from genloom.families.vae import VAE
from genloom.train.loop import Trainer
from genloom.train.privacy import PoissonBatches, layer_norm_grad_sample
from tests.conftest import QUIET, scripted_validations

ROWS = 400


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    rng = np.random.default_rng(0)
    size = rng.normal(0, 1, ROWS)
    frame = pd.DataFrame({"size": size, "weight": 2 * size + rng.normal(0, 0.3, ROWS),
                          "colour": np.where(size > 0, "red", "blue")})
    path = tmp_path_factory.mktemp("data") / "table.csv"
    frame.to_csv(path, index=False)
    return path


def _private(table, out, steps=60, epsilon=3.0, **options):
    return gl.Model("vae", latent_dim=4, width=32).fit(table, steps=steps, out=out, batch_size=32, dp_epsilon=epsilon,
                                                       **{"log_every": 10, "eval_every": 20, **options}, **QUIET)


def test_the_noise_and_the_spent_epsilon_are_opacus_own(table, tmp_path, capsys):
    model = _private(table, tmp_path / "run")
    privacy = model.record["privacy"]
    examples = model.record["data"]["examples"] - int(model.record["data"]["examples"] * 0.1)  # less validation
    assert privacy["delta"] == pytest.approx(1 / (10 * examples))
    assert privacy["sample_rate"] == pytest.approx(32 / examples) and privacy["steps"] == 60
    sigma = get_noise_multiplier(target_epsilon=3.0, target_delta=privacy["delta"], sample_rate=32 / examples,
                                 steps=60, accountant="rdp")
    assert privacy["noise_multiplier"] == pytest.approx(sigma, abs=1e-4)
    accountant = RDPAccountant()
    for _ in range(60):
        accountant.step(noise_multiplier=sigma, sample_rate=32 / examples)
    assert privacy["epsilon"] == pytest.approx(accountant.get_epsilon(privacy["delta"]), abs=1e-3)
    assert 2.7 < privacy["epsilon"] <= 3.0  # the budget, nearly all spent over the planned steps
    assert "log_scale keep their initial values" in capsys.readouterr().err
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert f"epsilon {privacy['epsilon']:g} spent of 3 over 60 steps of DP-SGD" in card
    assert "differential privacy" in (tmp_path / "run" / "report.html").read_text()


def test_poisson_batches_draw_each_example_alone_and_replay(table):
    x = torch.arange(1000).float()[:, None]
    batches = PoissonBatches(x, None, 0.05, seed=3)
    sizes = [len(batches.next()[0]) for _ in range(200)]
    assert np.mean(sizes) == pytest.approx(50, abs=2)
    assert np.std(sizes) == pytest.approx(np.sqrt(1000 * 0.05 * 0.95), rel=0.2)  # binomial, not fixed
    again = PoissonBatches(x, None, 0.05, seed=3)
    again.load_state_dict({"count": 199})
    batches.count = 199
    assert torch.equal(again.next()[0], batches.next()[0])


def test_a_private_model_still_learns_and_more_noise_learns_less(table, tmp_path):
    loose = _private(table, tmp_path / "loose", steps=100, epsilon=50.0)
    tight = _private(table, tmp_path / "tight", steps=100, epsilon=0.1)
    losses = {name: [r["val_loss"] for r in map(json.loads, (tmp_path / name / "metrics.jsonl").read_text().splitlines())
                     if "val_loss" in r] for name in ("loose", "tight")}
    assert losses["loose"][-1] < losses["loose"][0]  # training lowers the held-out loss under DP
    assert tight.record["privacy"]["noise_multiplier"] > 5 * loose.record["privacy"]["noise_multiplier"]
    assert losses["tight"][-1] > losses["loose"][-1]


def test_a_private_run_trains_every_planned_step_whatever_its_held_out_rows_say(table, tmp_path, monkeypatch):
    """Stopping early, or keeping the best validation's weights, would let rows outside the guarantee (the
    validation share) choose the weights."""
    validations = scripted_validations(monkeypatch, VAE)  # patience 1 would stop at step 10
    model = _private(table, tmp_path / "run", steps=40, patience=1, eval_every=5, keep_best=True)
    assert model.record["steps_trained"] == 40 and model.record["train"]["patience"] == 0
    assert not model.record["train"]["keep_best"] and "best_weights" not in model.record  # nor pick the weights
    assert validations[0] >= 8


def test_a_resumed_private_run_spends_what_an_unbroken_one_does(table, tmp_path, monkeypatch):
    whole = _private(table, tmp_path / "whole", steps=40)
    train_step = Trainer._train_step

    def interrupted(trainer):
        if trainer.step == 25:
            raise KeyboardInterrupt
        return train_step(trainer)

    monkeypatch.setattr(Trainer, "_train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _private(table, tmp_path / "part", steps=40, checkpoint_every=10)
    monkeypatch.undo()
    resumed = gl.Model("vae").fit(out=tmp_path / "part", resume=True, **QUIET)  # from the checkpoint at step 20
    assert resumed.record["privacy"] == whole.record["privacy"]
    with pytest.raises(gl.GenloomError, match=r"training it to 80 steps would spend epsilon \d+\.\d+ of the 3 asked"):
        gl.Model("vae").fit(out=tmp_path / "part", resume=True, steps=80, **QUIET)


@pytest.mark.parametrize("budget, message", [
    (["--steps", "5", "--dp-epsilon", "0"], "dp_epsilon must be greater than 0"),
    (["--steps", "5", "--dp-epsilon", "-1"], "dp_epsilon must be greater than 0"),
    (["--steps", "5", "--dp-epsilon", "3", "--dp-max-grad-norm", "0"], "dp_max_grad_norm must be greater than 0"),
    (["--steps", "5", "--dp-epsilon", "3", "--dp-delta", "0.5"], "dp_delta must lie between 0 and 1/n"),
    (["--steps", "5", "--dp-epsilon", "3", "--family", "gan"], "PacGAN's critic judges packs of 10 examples, and "
                                                               "DP-SGD bounds each example's gradient: give pac 1"),
    (["--steps", "5", "--dp-epsilon", "3", "--family", "wgan-gp", "--pac", "1"],
     "Opacus gives no per-example gradients of a gradient penalty"),
    (["--steps", "5", "--dp-epsilon", "3", "--family", "gan", "--pac", "1"],
     "give spectral_norm false (CLI: --no-spectral-norm)"),
    (["--steps", "5", "--dp-epsilon", "3", "--family", "gan", "--pac", "1", "--no-spectral-norm"],
     "CTGAN's conditional vector follows the categories' counts in the training data"),
    (["--steps", "5", "--dp-epsilon", "3", "--family", "gan", "--pac", "1", "--no-spectral-norm", "--d-steps", "2"],
     "leave d_steps at 1 (CLI: --d-steps 1)"),
    (["--steps", "5", "--dp-epsilon", "3", "--family", "gan", "--pac", "1", "--r1-weight", "1"],
     "Opacus gives no per-example gradients of a gradient penalty"),
    (["--minutes", "1", "--dp-epsilon", "3"], "give a budget in steps or epochs"),
    (["--steps", "5", "--dp-epsilon", "3", "--grad-accum", "2"], "leave grad_accum at 1"),
])
def test_what_differential_privacy_cannot_protect_is_refused_in_one_line(table, tmp_path, capsys, budget, message):
    family = [] if "--family" in budget else ["--family", "vae"]
    assert main(["train", str(table), *family, *budget, "--quiet", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_a_private_gans_critic_alone_is_clipped_and_noised_every_step(table, tmp_path, monkeypatch, capsys):
    noised = []
    add_noise = DPOptimizer.add_noise
    monkeypatch.setattr(DPOptimizer, "add_noise", lambda self: (noised.append(self.params), add_noise(self))[1])
    model = gl.Model("gan", latent_dim=4, width=16, pac=1, spectral_norm=False, category_conditions=False).fit(
        table, steps=20, batch_size=32, dp_epsilon=3.0, out=tmp_path / "run", **QUIET)
    critic = {id(p) for p in model.net.discriminator.parameters()}
    assert len(noised) == 20 and all({id(p) for p in params} <= critic for params in noised)  # never G's
    hooked = [m for m in model.net.modules()  # Opacus' hooks that keep each example's activations
              if any(getattr(hook, "__name__", "") == "capture_activations_hook" for hook in m._forward_hooks.values())]
    assert hooked and all(any(m is c for c in model.net.discriminator.modules()) for m in hooked)
    privacy = model.record["privacy"]
    sigma = get_noise_multiplier(target_epsilon=3.0, target_delta=privacy["delta"], sample_rate=privacy["sample_rate"],
                                 steps=20, accountant="rdp")
    assert privacy["noise_multiplier"] == pytest.approx(sigma, abs=1e-4) and privacy["private_part"] == "discriminator"
    assert privacy["steps"] == 20  # one critic step, and one accountant step, a training step
    assert 2.7 < privacy["epsilon"] <= 3.0
    assert "steps of DP-SGD on the discriminator (the rest learns only from it)" in (
        tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert model.sample(50, seed=0, progress=False)["colour"].isin(["red", "blue"]).all()


def test_a_conditional_gan_is_refused_for_the_labels_its_generator_reads(tmp_path, capsys):
    assert main(["train", "digits", "--family", "gan", "--conditional", "--pac", "1", "--no-spectral-norm", "--steps",
                 "2", "--dp-epsilon", "3", "--quiet", "--out", str(tmp_path / "r")]) == 2
    assert "a conditional GAN's generator is given the batch's labels" in capsys.readouterr().err


def test_an_empty_poisson_batch_spends_a_step_and_changes_nothing(table, tmp_path, monkeypatch):
    draw = PoissonBatches.next
    monkeypatch.setattr(PoissonBatches, "next", lambda self: (lambda x, labels: (x[:0], labels) if self.count == 3
                                                              else (x, labels))(*draw(self)))
    model = _private(table, tmp_path / "run", steps=6)
    assert model.record["privacy"]["steps"] == 6 and model.record["steps_trained"] == 6


def test_a_text_corpus_is_not_trained_privately(tmp_path, capsys):
    assert main(["train", "shakespeare", "--family", "autoregressive", "--steps", "2", "--dp-epsilon", "3", "--quiet",
                 "--out", str(tmp_path / "r")]) == 2
    assert "a text corpus is one stream of tokens" in capsys.readouterr().err


def test_a_molecule_vae_that_reads_its_tokens_is_refused_with_the_decoder_that_trains_privately(tmp_path, capsys):
    molecules = tmp_path / "m.smi"
    molecules.write_text("CCO\nc1ccccc1O\nCC(=O)N\nCCN\n", encoding="utf-8")
    assert main(["train", str(molecules), "--family", "vae", "--steps", "2", "--dp-epsilon", "3", "--batch-size", "2",
                 "--quiet", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "Opacus gives no per-example gradients of torch's GRU" in err and "--decoder parallel" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


@pytest.mark.parametrize("bias", [False, True])
def test_a_layer_norms_per_example_gradients_are_each_examples_own(bias):
    """Checked against each example's gradient computed alone, over sequences (the transformer's shape), with
    and without a bias (Opacus' own sampler fails without one)."""
    from opacus import GradSampleModule
    from opacus.grad_sample import register_grad_sampler

    register_grad_sampler(torch.nn.LayerNorm)(layer_norm_grad_sample)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.LayerNorm(6, bias=bias), torch.nn.Linear(6, 1))
    norm, x = net[1], torch.randn(5, 3, 4)
    hooked = GradSampleModule(net, batch_first=True, loss_reduction="sum")
    hooked(x).pow(2).sum().backward()
    for row in range(5):
        alone = torch.autograd.grad(net(x[row:row + 1]).pow(2).sum(), list(norm.parameters()))
        for parameter, wanted in zip(norm.parameters(), alone):
            assert torch.allclose(parameter.grad_sample[row], wanted, atol=1e-6)
    hooked.remove_hooks()


def test_a_table_transformer_trains_privately(table, tmp_path):
    """The transformer's LayerNorms have no bias by default: DP-SGD trains it all the same."""
    model = gl.Model("autoregressive", n_layer=1, n_embd=16, n_head=2).fit(
        table, steps=4, batch_size=64, dp_epsilon=3.0, out=tmp_path / "run", **QUIET)
    assert model.record["privacy"]["steps"] == 4 and len(model.sample(5, seed=0)) == 5


def test_a_private_tables_transformer_draws_the_target_first(table, tmp_path):
    data = gl.load_data(table, target="colour")
    options = dict(n_layer=1, n_embd=16, n_head=2)
    private = gl.Model("autoregressive", **options).fit(data, steps=2, batch_size=64, dp_epsilon=3.0, **QUIET)
    assert [c.name for c in private.codec.columns] == ["colour", "size", "weight"]
    assert list(private.sample(4, seed=0).columns) == ["size", "weight", "colour"]  # the table's own order
    plain = gl.Model("autoregressive", **options).fit(data, steps=2, batch_size=64, **QUIET)
    assert [c.name for c in plain.codec.columns] == ["size", "weight", "colour"]
    # a codec learnt from other rows (the data before a resampling) still knows the data's target
    resampled = gl.Model("autoregressive", **options).fit(data, codec_data=pd.read_csv(table), steps=2, batch_size=64,
                                                          dp_epsilon=3.0, **QUIET)
    assert [c.name for c in resampled.codec.columns] == ["colour", "size", "weight"]


def test_a_unets_attention_gives_opacus_each_examples_own_gradients():
    """Its 1x1 convolutions are applied by their weights, which Opacus' hooks do not see; under DP they are called:
    the same output, and each example's gradient checked against the example's alone."""
    from opacus import GradSampleModule

    from genloom.nets.unet import Attention

    torch.manual_seed(0)
    layer = Attention(8, heads=2)
    torch.nn.init.normal_(layer.proj.weight)  # zero at first, which would hide the qkv's gradients
    x = torch.randn(3, 8, 4, 4)
    fast = layer(x)
    layer.calls_its_layers = True
    assert torch.allclose(layer(x), fast, atol=1e-5)
    hooked = GradSampleModule(layer, batch_first=True, loss_reduction="sum")
    hooked(x).pow(2).sum().backward()
    watched = [layer.qkv.weight, layer.qkv.bias, layer.proj.weight, layer.proj.bias]
    samples = [parameter.grad_sample.clone() for parameter in watched]
    hooked.remove_hooks()
    for row in range(3):
        alone = torch.autograd.grad(layer(x[row:row + 1]).pow(2).sum(), watched)
        for sample, wanted in zip(samples, alone):
            assert torch.allclose(sample[row], wanted, atol=1e-4)


@pytest.mark.parametrize("family", ["vae", "diffusion", "autoregressive"])
def test_each_single_optimiser_family_trains_privately_on_images(family, tmp_path):
    model = gl.Model(family).fit("digits", steps=2, batch_size=32, dp_epsilon=3.0, out=tmp_path / "run", **QUIET)
    assert model.record["privacy"]["steps"] == 2 and model.sample(2, seed=0).shape[0] == 2


def test_diffusion_trains_privately_on_a_table(table, tmp_path):
    model = gl.Model("diffusion", width=32).fit(table, steps=3, batch_size=64, dp_epsilon=3.0, dp_max_grad_norm=0.5,
                                                out=tmp_path / "run", **QUIET)
    assert model.record["privacy"]["max_grad_norm"] == 0.5 and len(model.sample(4, seed=0)) == 4
