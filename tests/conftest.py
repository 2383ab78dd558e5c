"""Shared fixtures: tiny models and data so the whole suite stays fast."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import genloom as gl

# The test models are tiny: one thread beats two, and stays fast when the other core is busy.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Tests of the CUDA paths (marked gpu) run where there is a GPU and are skipped, saying why, elsewhere."""
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (run on a GPU machine: pytest -m gpu)")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_inception_weights(monkeypatch):
    """A GENLOOM_INCEPTION_WEIGHTS in the developer's shell would switch image evaluation to InceptionV3."""
    monkeypatch.delenv("GENLOOM_INCEPTION_WEIGHTS", raising=False)


TINY_VAE = {"latent_dim": 4, "width": 8}
QUIET = {"progress": False}


@pytest.fixture(scope="session")
def digits() -> gl.Dataset:
    return gl.load_data("digits")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> str:
    """A small conditional VAE trained for a few steps and saved; treat it as read-only."""
    out = tmp_path_factory.mktemp("runs") / "digits-vae"
    gl.Model("vae", conditional=True, **TINY_VAE).fit("digits", steps=30, out=out, batch_size=32, **QUIET)
    return str(out)


@pytest.fixture(scope="session")
def biased_table_run(tmp_path_factory) -> str:
    """A small VAE on 400 rows whose income is 'high' for 70% of sex M and 5% of F (its plain samples keep part
    of that gap), trained with target income; treat it as read-only."""
    folder = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    sex = rng.choice(["F", "M"], 400, p=[0.4, 0.6])
    high = rng.random(400) < np.where(sex == "M", 0.7, 0.05)
    pd.DataFrame({"sex": sex, "income": np.where(high, "high", "low"), "x": rng.normal(0, 1, 400)}).to_csv(
        folder / "biased.csv", index=False)
    gl.Model("vae", latent_dim=4, width=32).fit(gl.load_data(folder / "biased.csv", target="income"), steps=40,
                                                lr=1e-2, out=folder / "biased-vae", **QUIET)
    return str(folder / "biased-vae")


TINY_GPT = {"n_layer": 2, "n_head": 4, "n_embd": 32, "block_size": 32}


@pytest.fixture(scope="session")
def text_run(tmp_path_factory) -> str:
    """A tiny character GPT trained briefly on tiny Shakespeare and saved; treat it as read-only."""
    out = tmp_path_factory.mktemp("runs") / "shakespeare-gpt"
    gl.Model("autoregressive", **TINY_GPT).fit("shakespeare", steps=150, out=out, eval_every=50, **QUIET)
    return str(out)


@pytest.fixture(scope="session")
def molecule_run(tmp_path_factory) -> str:
    """A tiny GPT trained briefly on 2,000 MOSES test molecules (a .smi file) and saved; treat it as read-only."""
    folder = tmp_path_factory.mktemp("runs")
    smiles = gl.load_data("moses-test").values[:2000]
    (folder / "mols.smi").write_text("".join(f"{molecule}\n" for molecule in smiles), encoding="utf-8")
    gl.Model("autoregressive", n_layer=2, n_head=4, n_embd=64).fit(folder / "mols.smi", steps=60, lr=3e-3,
                                                                   batch_size=32, out=folder / "mols-gpt", **QUIET)
    return str(folder / "mols-gpt")


TONES = {"low": 300.0, "high": 1500.0}  # Hz: two classes of recordings, far apart in a spectrogram
TONE_RATE, TONE_SAMPLES = 8000, 2048


def write_tones(folder, count=24, rate=TONE_RATE, seed=0):
    """`count` recordings of each of two tones (sub-folders low/ and high/), 0.256 s at `rate` with a random
    phase, loudness and a little noise; return the folder."""
    import soundfile

    rng = np.random.default_rng(seed)
    time = np.arange(TONE_SAMPLES) / rate
    for name, frequency in TONES.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            wave = rng.uniform(0.3, 0.8) * np.sin(2 * np.pi * frequency * time + rng.uniform(0, 2 * np.pi))
            soundfile.write(folder / name / f"{i:03d}.wav", wave + 0.01 * rng.standard_normal(len(wave)), rate)
    return folder


@pytest.fixture(scope="session")
def tones(tmp_path_factory):
    """A folder of 48 recordings of a low and a high tone (data/test_signals.py's); treat it as read-only."""
    return write_tones(tmp_path_factory.mktemp("tones"))


TINY_SIGNAL_DIFFUSION = {"width": 8, "timesteps": 100, "conditional": True}


@pytest.fixture(scope="session")
def signal_run(tones, tmp_path_factory) -> str:
    """A tiny class-conditional diffusion model of the tones' spectrograms, trained to tell them apart; read-only."""
    out = tmp_path_factory.mktemp("runs") / "tones-diffusion"
    gl.Model("diffusion", **TINY_SIGNAL_DIFFUSION).fit(tones, steps=200, lr=3e-3, batch_size=16, out=out,
                                                       codec_options={"mels": 16}, **QUIET)
    return str(out)


def forked_transitions(n=2000, seed=0):
    """Transitions of a ball that, near x = 0, bounces to x = -0.8 or +0.8 at random, and elsewhere moves by a
    tenth of its action: a next state with two modes where the ball meets the fork."""
    rng = np.random.default_rng(seed)
    x, action = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    at_fork = np.abs(x) < 0.3
    next_x = np.where(at_fork, rng.choice([-0.8, 0.8], n), x + 0.1 * action) + 0.02 * rng.standard_normal(n)
    return pd.DataFrame({"x": x, "action": action, "next_x": next_x})


@pytest.fixture(scope="session")
def dynamics_run(tmp_path_factory) -> str:
    """A diffusion model of p(next_x | x, action) on forked transitions (condition_on); read-only."""
    out = tmp_path_factory.mktemp("runs") / "forked-diffusion"
    gl.Model("diffusion", condition_on=["x", "action"]).fit(forked_transitions(), steps=500, lr=3e-3,
                                                            out=out, **QUIET)
    return str(out)


def write_images(folder, sizes, mode="RGB", seed=0):
    """Write random PNGs of the given (H, W) sizes into `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, (height, width) in enumerate(sizes):
        channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
        pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
        path = folder / f"img{i}.png"
        Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode).save(path)
        paths.append(path)
    return paths


def crash_at_training_step(monkeypatch, family_class, step: int) -> None:
    """Make `family_class.losses` raise KeyboardInterrupt at its `step`-th training step (validation passes, in
    eval mode, are not counted): a run killed in the middle of training."""
    original, calls = family_class.losses, {"n": 0}

    def losses(self, x, labels):
        calls["n"] += self.training
        if calls["n"] == step and self.training:
            raise KeyboardInterrupt
        yield from original(self, x, labels)
    monkeypatch.setattr(family_class, "losses", losses)


def scripted_validations(monkeypatch, family_class, worse: bool = True) -> list[int]:
    """Make every validation loss of `family_class` worse than the one before (or better): the k-th loss computed in
    eval mode is k (or -k). Returns the count of those losses so far (a list of one, to read after training)."""
    original, count = family_class.losses, [0]

    def losses(self, x, labels):
        for group, loss, logs in original(self, x, labels):
            if not self.training:
                count[0] += 1
                loss = loss.detach() * 0 + (count[0] if worse else -count[0])
            yield group, loss, logs
    monkeypatch.setattr(family_class, "losses", losses)
    return count
