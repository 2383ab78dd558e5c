import json
import math
import time
import shutil

import numpy as np
import pytest
import torch

import genloom as gl
from genloom.data.image_layout import ImageLayout
from genloom.families.configs import VAEConfig
from genloom.families.vae import VAE
from genloom.train.config import TrainConfig
from genloom.train.batches import ShuffledBatches
from genloom.train.checkpoint import load_state, load_weights, save_state
from genloom.train.loop import BEST_FILE, MAX_ROLLBACKS, STATE_FILE, Trainer, lr_multiplier, read_metrics
from tests.conftest import QUIET, TINY_VAE, scripted_validations

FAST = {"batch_size": 32, "log_every": 1, **QUIET}


def _losses(run_dir):
    return [(m["step"], m["loss"]) for m in read_metrics(run_dir / "metrics.jsonl") if "loss" in m]


def _break_at(monkeypatch, call: int, error=KeyboardInterrupt):
    """Make VAE.losses raise on its `call`-th call (a crash in the middle of training)."""
    original, calls = VAE.losses, {"n": 0}

    def losses(self, x, labels):
        calls["n"] += 1
        if calls["n"] == call:
            raise error()
        yield from original(self, x, labels)
    monkeypatch.setattr(VAE, "losses", losses)


def test_resume_before_the_first_checkpoint_starts_over(tmp_path):
    gl.Model("vae", **TINY_VAE).fit("digits", steps=3, out=tmp_path / "r", **FAST)
    for name in ("trainer.pt", "model.safetensors", "ema.safetensors", "metrics.jsonl"):  # killed at the start
        (tmp_path / "r" / name).unlink()
    model = gl.Model("vae").fit(out=tmp_path / "r", resume=True, steps=4, **QUIET)
    assert model.record["steps_trained"] == 4


def test_resume_never_replaces_final_weights(tmp_path):
    """A finished run whose trainer state is gone: more training would overwrite the model and mix two runs'
    metrics, so it is refused and nothing changes."""
    gl.Model("vae", **TINY_VAE).fit("digits", steps=3, out=tmp_path / "r", **FAST)
    (tmp_path / "r" / "trainer.pt").unlink()
    before = {path.name: path.read_bytes() for path in (tmp_path / "r").iterdir() if path.is_file()}
    with pytest.raises(gl.GenloomError, match="has no trainer.pt to resume from and its weights are final; train "
                                              "into a new output folder"):
        gl.Model("vae").fit(out=tmp_path / "r", resume=True, steps=25, **QUIET)
    assert {path.name: path.read_bytes() for path in (tmp_path / "r").iterdir() if path.is_file()} == before


def test_resume_of_in_memory_data_needs_the_data(tmp_path, digits):
    data = gl.Dataset("image", digits.values[:64], "mine")
    gl.Model("vae", **TINY_VAE).fit(data, steps=2, out=tmp_path / "r", **FAST)
    with pytest.raises(gl.GenloomError, match="in-memory data, which is not on record; pass the data again"):
        gl.Model("vae").fit(out=tmp_path / "r", resume=True, steps=3)
    assert gl.Model("vae").fit(data, out=tmp_path / "r", resume=True, steps=3, **QUIET).record["steps_trained"] == 3


def test_resume_with_other_data_is_refused(tmp_path):
    gl.Model("vae", **TINY_VAE).fit("digits", steps=2, out=tmp_path / "r", **FAST)
    with pytest.raises(gl.GenloomError, match="differs from the data the run"):
        gl.Model("vae").fit(np.zeros((10, 16, 16, 3), np.uint8), out=tmp_path / "r", resume=True, steps=3)


def test_vae_loss_falls_on_digits(tmp_path):
    gl.Model("vae", **TINY_VAE).fit("digits", steps=200, out=tmp_path / "r", **FAST)
    losses = [loss for _, loss in _losses(tmp_path / "r")]
    assert len(losses) == 200
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])


@pytest.mark.parametrize("log_every", [1, 4])  # 4: the checkpoint falls between two log lines
def test_resumed_run_equals_unbroken_run(tmp_path, monkeypatch, log_every):
    settings = dict(steps=40, checkpoint_every=10, **{**FAST, "log_every": log_every})
    unbroken = gl.Model("vae", **TINY_VAE).fit("digits", out=tmp_path / "a", **settings)

    with monkeypatch.context() as patch:
        _break_at(patch, 26)
        with pytest.raises(KeyboardInterrupt):
            gl.Model("vae", **TINY_VAE).fit("digits", out=tmp_path / "b", **settings)
    assert load_state(tmp_path / "b" / "trainer.pt")["step"] == 20
    assert max(step for step, _ in _losses(tmp_path / "b")) == 25 // log_every * log_every  # logged, then lost
    resumed = gl.Model("vae").fit(out=tmp_path / "b", resume=True, progress=False)

    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
    for name, value in unbroken.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[name]), name
    assert np.array_equal(unbroken.sample(8, seed=1), resumed.sample(8, seed=1))


def test_nan_guard_rolls_back_and_finishes(tmp_path, monkeypatch, capsys):
    original, calls = VAE.losses, {"n": 0}

    def losses(self, x, labels):
        calls["n"] += 1
        for group, loss, logs in original(self, x, labels):
            yield group, (loss * float("nan") if calls["n"] == 15 else loss), logs
    monkeypatch.setattr(VAE, "losses", losses)
    model = gl.Model("vae", **TINY_VAE).fit("digits", steps=30, out=tmp_path / "r", checkpoint_every=10, **FAST)

    records = read_metrics(tmp_path / "r" / "metrics.jsonl")
    events = [m for m in records if m.get("event") == "rollback"]
    assert len(events) == 1 and events[0]["step"] == 10 and "non-finite loss" in events[0]["message"]
    assert [step for step, _ in _losses(tmp_path / "r")] == list(range(1, 31))
    assert all(math.isfinite(loss) for _, loss in _losses(tmp_path / "r"))
    assert model.record["steps_trained"] == 30
    assert "rolled back to the checkpoint at step 10" in capsys.readouterr().err
    assert load_state(tmp_path / "r" / "trainer.pt")["lr_scale"] == 0.5


def test_repeated_divergence_stops_with_a_clear_error(tmp_path, monkeypatch):
    original = VAE.losses

    def losses(self, x, labels):
        for group, loss, logs in original(self, x, labels):
            yield group, loss * float("inf"), logs
    monkeypatch.setattr(VAE, "losses", losses)
    with pytest.raises(gl.GenloomError, match=f"training diverged: .* after {MAX_ROLLBACKS} roll-backs"):
        gl.Model("vae", **TINY_VAE).fit("digits", steps=5, out=tmp_path / "r", **FAST)


def test_checkpoint_is_weights_only_and_complete(tmp_path):
    gl.Model("vae", **TINY_VAE).fit("digits", steps=3, out=tmp_path / "r", **FAST)
    state = torch.load(tmp_path / "r" / "trainer.pt", weights_only=True)
    assert state["step"] == 3 and set(state) >= {"model", "ema", "optimizers", "rng", "batches"}
    assert not list((tmp_path / "r").glob(".*tmp*"))  # no temporary files left behind


def _tiny_vae_trainer(tmp_path, monkeypatch, config, now=None):
    """A small VAE trainer on random images; with `now`, on a clock where a step takes 1 s, a validation 5 s."""
    if now is not None:
        original = VAE.losses

        def losses(self, x, labels):
            now[0] += 1.0 if self.training else 5.0  # the weight average validates in eval mode
            yield from original(self, x, labels)
        monkeypatch.setattr(VAE, "losses", losses)
    x = torch.rand(64, 1, 8, 8) * 2 - 1
    return Trainer(VAE(ImageLayout((1, 8, 8)), VAEConfig(latent_dim=2, width=4)), x, None, config, tmp_path,
                   torch.device("cpu"), validation=(x[:16], None), clock=(lambda: now[0]) if now else time.perf_counter)


def test_a_time_budget_counts_training_time_only(tmp_path, monkeypatch):
    """On a clock where a training step takes 1 s and a validation 5 s, a budget of 6 s is six steps."""
    now = [0.0]
    config = TrainConfig(minutes=0.1, batch_size=16, eval_every=2, eval_batches=1, progress=False)
    trainer = _tiny_vae_trainer(tmp_path, monkeypatch, config, now)
    trainer.fit()
    assert trainer.step == 6 and trainer.elapsed == 6.0
    assert [m["step"] for m in read_metrics(tmp_path / "metrics.jsonl") if "val_loss" in m] == [2, 4, 6]


def test_epoch_budget_counts_batches(tmp_path, digits):
    data = gl.Dataset("image", digits.values[:500], "d")  # 450 for training after the 10% held out
    model = gl.Model("vae", **TINY_VAE).fit(data, epochs=2, batch_size=100, out=tmp_path / "r", **QUIET)
    assert model.record["steps_trained"] == 2 * (450 // 100)


def test_lr_multiplier_warms_up_then_decays():
    config = TrainConfig(warmup_steps=10, min_lr_ratio=0.1)
    assert lr_multiplier(config, 0, 0.0) == pytest.approx(0.1)
    assert lr_multiplier(config, 9, 0.0) == pytest.approx(1.0)
    assert lr_multiplier(config, 50, 0.5) == pytest.approx(0.55)
    assert lr_multiplier(config, 100, 1.0) == pytest.approx(0.1)


def test_batches_replay_after_state_restore():
    x = torch.arange(10)
    a = ShuffledBatches(x, None, 3, seed=7)
    seen = [a.next()[0] for _ in range(4)]
    b = ShuffledBatches(x, None, 3, seed=7)
    b.load_state_dict(json.loads(json.dumps(ShuffledBatches(x, None, 3, 7).state_dict())))
    assert all(torch.equal(batch, b.next()[0]) for batch in seen)
    c = ShuffledBatches(x, None, 3, seed=7)
    c.load_state_dict(a.state_dict())
    assert torch.equal(a.next()[0], c.next()[0])
    assert len(set(torch.cat(seen[:3]).tolist())) == 9  # one epoch: no example twice


@pytest.mark.parametrize("option, value, message", [
    ("minutes", 0, "minutes must be greater than 0"),
    ("minutes", -1, "minutes must be greater than 0"),
    ("steps", 0, "steps must be at least 1"),
    ("batch_size", 0, "batch_size must be at least 1"),
    ("lr", -0.1, "lr must be greater than 0"),
    ("grad_clip", 0, "grad_clip must be greater than 0"),
    ("warmup_steps", -1, "warmup_steps must be at least 0"),
    ("min_lr_ratio", 2, "min_lr_ratio must lie in"),
    ("ema_decay", 1, "ema_decay must lie in"),
    ("steps", 2.5, "steps must be a whole number; got 2.5"),
    ("steps", "3", "steps must be a whole number; got '3'"),
    ("seed", -1, "seed must be at least 0"),
    ("optimiser", "sgd", "unknown training option 'optimiser'"),
])
def test_impossible_training_options(tmp_path, option, value, message):
    with pytest.raises(gl.GenloomError, match=message):
        gl.Model("vae").fit("digits", out=tmp_path / "r", **{option: value})
    assert not (tmp_path / "r").exists()


def test_too_small_a_split_means_no_validation():
    from genloom.train.batches import split_validation
    (x, _), held_out = split_validation(torch.arange(9), None, 0.1)
    assert held_out is None and len(x) == 9


def test_a_token_stream_holds_out_its_last_tenth_as_nanogpt():
    from genloom.train.batches import split_validation
    (train, _), (held_out, _) = split_validation(torch.arange(1000), None, 0.1)
    assert torch.equal(train, torch.arange(900)) and torch.equal(held_out, torch.arange(900, 1000))


def test_validation_and_sample_grids_report_their_own_time(tmp_path):
    gl.Model("vae", **TINY_VAE).fit("digits", steps=20, out=tmp_path / "r", eval_every=10, sample_every=10, **FAST)
    records = read_metrics(tmp_path / "r" / "metrics.jsonl")
    assert [m["step"] for m in records if "sample_seconds" in m] == [10, 20]
    assert [m["step"] for m in records if "val_seconds" in m] == [10, 20]
    assert (tmp_path / "r" / "samples" / "step-000010.png").exists()


def test_weighted_batches_follow_the_weights_and_replay_after_a_resume():
    x = torch.arange(4.0)[:, None]
    weights = torch.tensor([1.0, 1.0, 1.0, 7.0])
    batches = ShuffledBatches(x, None, 4, seed=0, weights=weights)
    drawn = torch.cat([batches.next()[0] for _ in range(500)])[:, 0]
    assert abs((drawn == 3).float().mean().item() - 0.7) < 0.03
    state = batches.state_dict()
    following = [batches.next()[0] for _ in range(3)]
    resumed = ShuffledBatches(x, None, 4, seed=0, weights=weights)
    resumed.load_state_dict(state)
    assert all(torch.equal(a, resumed.next()[0]) for a in following)


@pytest.mark.skipif(shutil.which("cc") is None, reason="torch.compile on the CPU needs a C compiler")
def test_compiled_training_follows_the_eager_run(tmp_path):
    """--compile changes how the network runs, not what it computes."""
    def losses(run, compile):
        gl.Model("autoregressive", n_layer=1, n_head=2, n_embd=16, block_size=16).fit(
            "shakespeare", steps=3, compile=compile, log_every=1, out=tmp_path / run, **QUIET)
        return [loss for _, loss in _losses(tmp_path / run)]
    torch._dynamo.reset()
    compiled = losses("compiled", True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # dynamo did compile the network
    assert compiled == pytest.approx(losses("eager", False), abs=1e-4)


def test_a_deadline_stops_training_in_time_for_what_follows_it(tmp_path, monkeypatch):
    """A step takes 1 s and a validation 5 s: with 30 s to the deadline, training stops when one more step, the
    closing validation and the held-out scores (about one more) would not fit, and its closing validation ends
    with a validation's time to spare."""
    now = [0.0]
    config = TrainConfig(steps=1000, batch_size=16, eval_every=10, eval_batches=1, progress=False)
    trainer = _tiny_vae_trainer(tmp_path, monkeypatch, config, now)
    trainer.fit(deadline=30.0)
    assert trainer.step == 14 and now[0] == 24.0
    assert [m["step"] for m in read_metrics(tmp_path / "metrics.jsonl") if "val_loss" in m] == [10, 14]


@pytest.mark.parametrize("keep_best", [True, False])
def test_keep_best_samples_from_the_weights_of_the_best_validation(tmp_path, monkeypatch, keep_best):
    scripted_validations(monkeypatch, VAE)  # the first validation (step 2) is the best
    config = TrainConfig(steps=6, batch_size=16, eval_every=2, eval_batches=1, ema_decay=0.0, keep_best=keep_best,
                         progress=False)
    trainer = _tiny_vae_trainer(tmp_path, monkeypatch, config)
    trainer.fit()
    best = VAE(ImageLayout((1, 8, 8)), VAEConfig(latent_dim=2, width=4))
    load_weights(best, tmp_path / BEST_FILE)
    sampled, last = trainer.ema.module.state_dict(), trainer.family.state_dict()
    assert _equal(sampled, best.state_dict() if keep_best else last)
    assert not _equal(best.state_dict(), last)  # the steps after it changed them
    events = [m for m in read_metrics(tmp_path / "metrics.jsonl") if m.get("event") == "best_weights"]
    assert len(events) == keep_best and (not keep_best or events[0]["message"] == trainer.kept_best
                                      == "the weights of step 2, the best validation loss (1; the last 3)")
    resumed = _tiny_vae_trainer(tmp_path, monkeypatch, config)
    resumed.resume()  # the checkpoint keeps the trailing weights (ema_decay 0: the last), which a resumed run trains
    assert _equal(resumed.ema.module.state_dict(), last)
    resumed.fit()  # already finished: it ends as the unbroken run did, its best read from the file
    assert _equal(resumed.ema.module.state_dict(), sampled) and resumed.kept_best == trainer.kept_best


def test_keep_best_keeps_the_last_weights_where_they_validate_best(tmp_path, monkeypatch):
    scripted_validations(monkeypatch, VAE, worse=False)
    config = TrainConfig(steps=6, batch_size=16, eval_every=2, eval_batches=1, ema_decay=0.0, keep_best=True,
                         progress=False)
    trainer = _tiny_vae_trainer(tmp_path, monkeypatch, config)
    trainer.fit()
    assert _equal(trainer.ema.module.state_dict(), trainer.family.state_dict()) and trainer.kept_best is None


def test_keep_best_validates_the_last_weights_when_no_validation_saw_them(tmp_path, monkeypatch):
    """A checkpoint from before keep_best does not say how the last weights validated: they are validated again."""
    scripted_validations(monkeypatch, VAE)
    config = TrainConfig(steps=6, batch_size=16, eval_every=2, eval_batches=1, ema_decay=0.0, keep_best=True,
                         progress=False)
    _tiny_vae_trainer(tmp_path, monkeypatch, config).fit()
    state = load_state(tmp_path / STATE_FILE)
    del state["last_val_loss"], state["last_val_step"]
    save_state(state, tmp_path / STATE_FILE)
    resumed = _tiny_vae_trainer(tmp_path, monkeypatch, config)
    resumed.resume()
    resumed.fit()
    assert [m["step"] for m in read_metrics(tmp_path / "metrics.jsonl") if "val_loss" in m] == [2, 4, 6, 6]
    assert resumed.kept_best == "the weights of step 2, the best validation loss (1; the last 4)"


def _equal(weights: dict, others: dict) -> bool:
    return weights.keys() == others.keys() and all(torch.equal(weights[k], others[k]) for k in weights)


def test_training_stops_early_when_validation_stops_improving(tmp_path, monkeypatch):
    scripted_validations(monkeypatch, VAE)
    config = TrainConfig(steps=100, batch_size=16, eval_every=2, eval_batches=1, patience=2, progress=False)
    trainer = _tiny_vae_trainer(tmp_path, monkeypatch, config)
    trainer.fit()
    assert trainer.step == 6 and trainer.best_val_loss == 1.0
    events = [m for m in read_metrics(tmp_path / "metrics.jsonl") if m.get("event") == "early_stop"]
    assert len(events) == 1 and "no better validation loss in 2 validations" in events[0]["message"]
