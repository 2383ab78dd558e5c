"""The one table of per-(family, kind) defaults, and how it combines with what the user asks."""
from dataclasses import fields

import pytest

import genloom as gl
from genloom.defaults import (ANY, BY_MINUTES, BY_SIZE, TABLE, UNDER_PRIVACY, Defaults, budget_of, codec_options_for,
                              defaults_for, family_config, one_thread_minutes, resolve_train_config,
                              sampling_options_for)
from genloom.errors import GenloomError
from genloom.families import CATALOG
from genloom.layout import KINDS
from genloom.train.config import TrainConfig


@pytest.mark.parametrize("key", sorted(TABLE))
def test_every_entry_names_a_family_a_kind_and_real_options(key):
    family, kind = key
    assert family in (*CATALOG, ANY) and kind in (*KINDS, ANY)
    entry = TABLE[key]
    assert set(entry.train) <= {f.name for f in fields(TrainConfig)}
    if entry.options:
        assert set(entry.options) <= {f.name for f in fields(CATALOG[family].options)}
    TrainConfig(**entry.train)  # every value passes its field's checks
    if entry.sampling:
        CATALOG[family].sampling(**entry.sampling)


def test_the_family_on_a_kind_wins_over_the_kind_which_wins_over_the_family():
    assert defaults_for("autoregressive", "image").train["batch_size"] == 16       # the family's
    assert defaults_for("autoregressive", "table").train["batch_size"] == 500      # the kind's
    assert defaults_for("autoregressive", "text").train["batch_size"] == 32        # the family's on that kind
    assert defaults_for("gan", "table").train["lr"] == 2e-4 and defaults_for("gan", "table").options == {"pac": 10}
    assert defaults_for("vae", None).options == {}                                 # before the data: nothing
    assert defaults_for("vae", "image").options == {"importance_samples": 1}       # the VAE's on images
    assert family_config("vae", "table", {}).importance_samples == 16              # the family's own elsewhere


def test_given_options_win_and_none_means_the_default():
    assert family_config("gan", "table", {}).pac == 10
    assert family_config("gan", "table", {"pac": None}).pac == 10
    assert family_config("gan", "table", {"pac": 2}).pac == 2
    assert family_config("gan", "image", {}).pac == 4  # the GAN's rule: packs for the collapse-prone DCGAN ...
    assert family_config("gan", "image", {"conditional": True}).pac == 1  # ... and none across classes
    assert family_config("wgan-gp", "image", {}).pac == 1
    assert family_config("diffusion", "table", {}).sampler == "ddpm"
    assert codec_options_for("diffusion", "table", {}) == {"numbers": "quantile"}
    assert codec_options_for("diffusion", "table", {"numbers": "modes"}) == {"numbers": "modes"}
    assert codec_options_for("vae", "table", {}) == {}


def test_training_settings_layer_the_run_and_the_request():
    fresh = resolve_train_config("autoregressive", "text", None, {"steps": 5}, {"lr": 1e-3})
    assert (fresh.optimizer, fresh.batch_size, fresh.lr, fresh.steps) == ("muon", 32, 1e-3, 5)
    stored = {**vars(fresh), "minutes": 3.0}
    resumed = resolve_train_config("autoregressive", "text", stored, {"epochs": 2.0}, {})
    assert (resumed.steps, resumed.minutes, resumed.epochs) == (None, None, 2.0)  # a new budget replaces it whole
    assert resolve_train_config("autoregressive", "text", stored, {}, {}).minutes == 3.0
    with pytest.raises(GenloomError, match="the run trained with optimizer 'muon'; resume it with the same one"):
        resolve_train_config("autoregressive", "text", stored, {}, {"optimizer": "adamw"})
    with pytest.raises(GenloomError, match="unknown training option 'learning_rate'"):
        resolve_train_config("vae", "image", None, {}, {"learning_rate": 1})
    assert resolve_train_config("vae", "image", None, {}, {}).steps == TrainConfig.default_steps
    assert budget_of(None, 2.5, None) == {"minutes": 2.5}


@pytest.mark.parametrize("tiers,key", [(tiers, key) for tiers in (BY_SIZE, BY_MINUTES) for key in sorted(tiers)])
def test_every_tier_names_real_options_in_rising_bounds(tiers, key):
    family, kind = key
    bounds = [bound for bound, _ in tiers[key]]
    assert bounds == sorted(bounds) and family in (*CATALOG, ANY) and kind in KINDS
    for _, entry in tiers[key]:
        TrainConfig(**entry.train)
        if entry.options:
            assert set(entry.options) <= {f.name for f in fields(CATALOG[family].options)}


def test_small_tables_get_small_batches_and_early_stopping_and_large_ones_neither():
    small, middle, large = (defaults_for("vae", "table", rows).train for rows in (300, 3_000, 30_000))
    assert (small["batch_size"], small["patience"]) == (64, 10)
    assert (middle["batch_size"], middle["patience"]) == (256, 10)
    assert large["batch_size"] == 500 and "patience" not in large
    assert family_config("autoregressive", "table", {}, 300).bins == 16
    assert family_config("autoregressive", "table", {}, 30_000).bins == 32
    assert family_config("autoregressive", "table", {"bins": 8}, 300).bins == 8  # what is asked wins
    assert resolve_train_config("vae", "table", None, {}, {"batch_size": 32}, 300).batch_size == 32
    assert defaults_for("vae", "image", 300) == defaults_for("vae", "image")  # only tables have size tiers


def test_a_private_tables_transformer_and_vae_step_at_a_higher_rate():
    private = {"dp_epsilon": 3.0}
    adult = resolve_train_config("autoregressive", "table", None, {}, private, 26_049)
    assert (adult.batch_size, adult.lr) == (500, 0.01)
    assert resolve_train_config("autoregressive", "table", None, {}, {}, 26_049).lr == 3e-3
    assert resolve_train_config("autoregressive", "table", None, {}, private, 800).batch_size == 64  # size tiers
    assert resolve_train_config("autoregressive", "table", None, {}, {**private, "lr": 1e-3}, 26_049).lr == 1e-3
    assert resolve_train_config("autoregressive", "text", None, {}, private).lr == 3e-3  # tables only
    assert resolve_train_config("vae", "table", None, {}, private, 26_049).lr == 0.01
    assert resolve_train_config("vae", "table", None, {}, {}, 26_049).lr == 2e-3
    stored = {"lr": 0.002, "batch_size": 500, "steps": 600}  # a private run from before: resumed as it trained
    assert resolve_train_config("vae", "table", stored, {}, private, 26_049).lr == 0.002
    assert all(not (entry.options or entry.sampling) for entry in UNDER_PRIVACY.values())  # applied nowhere else


def test_the_data_size_overrides_what_privacy_changes(monkeypatch):
    tiers = {**BY_SIZE, ("autoregressive", "table"): ((1_000, Defaults(train={"lr": 5e-4})),)}
    monkeypatch.setattr("genloom.defaults.BY_SIZE", tiers)
    assert resolve_train_config("autoregressive", "table", None, {}, {"dp_epsilon": 3.0}, 800).lr == 5e-4
    assert resolve_train_config("autoregressive", "table", None, {}, {"dp_epsilon": 3.0}, 26_049).lr == 0.01
    assert codec_options_for("vae", "table", {}, private=True) == {"target_first": True}
    assert codec_options_for("autoregressive", "table", {}, 26_049, private=True)["target_first"] is True
    assert "target_first" not in codec_options_for("autoregressive", "table", {}, 26_049)


def test_a_short_budget_in_minutes_gives_text_two_blocks_counting_a_second_thread_as_less_than_one():
    def blocks(budget: dict, threads: int, given: dict | None = None) -> int:
        return family_config("autoregressive", "text", given or {}, 1_000, one_thread_minutes(budget, threads)).n_layer
    assert blocks({"minutes": 2.5}, 1) == 2 and blocks({"minutes": 3}, 2) == 2  # 3 x 2 ** 0.55 = 4.4
    assert blocks({"minutes": 6}, 1) == 3 and blocks({"minutes": 4}, 2) == 3    # 4 x 2 ** 0.55 = 5.9
    assert blocks({"steps": 50}, 1) == 3 and blocks({}, 1) == 3                 # not a budget in minutes
    assert blocks({"minutes": 1}, 1, {"n_layer": 4}) == 4                       # what is asked wins
    assert family_config("autoregressive", "table", {}, 1_000, 1.0).n_layer == 3  # text's tier only


def test_a_short_text_fit_in_minutes_trains_two_blocks_and_one_in_steps_three(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be, that is the question\n" * 200)
    options = {"n_embd": 16, "n_head": 2, "block_size": 16}
    short = gl.Model("autoregressive", **options).fit(corpus, minutes=0.05, threads=1, progress=False)
    assert short.config.n_layer == 2 and short.record["family_options"]["n_layer"] == 2
    stepped = gl.Model("autoregressive", **options).fit(corpus, steps=2, threads=1, progress=False)
    assert stepped.config.n_layer == 3


def test_a_molecule_run_samples_with_its_kinds_sampling_defaults_under_the_users(molecule_run):
    """The autoregressive family on molecules draws without the tail (epsilon 0.02) unless told otherwise."""
    model = gl.load(molecule_run)
    default = model.sample(40, seed=1, progress=False)
    assert default == model.sample(40, seed=1, progress=False, epsilon=0.02)
    assert default != model.sample(40, seed=1, progress=False, epsilon=0.0)
    assert sampling_options_for("autoregressive", "text", {}) == {}
    assert sampling_options_for("autoregressive", "molecule", {"epsilon": 0.1}) == {"epsilon": 0.1}
