import math

import numpy as np
import pytest
import torch

import genloom as gl
from genloom.data.image_layout import ImageLayout, PixelTokens
from genloom.data.molecule_layout import MoleculeLayout
from genloom.data.text_layout import TextLayout
from genloom.defaults import family_config
from genloom.errors import GenloomError
from genloom.families import drawing
from genloom.families.autoregressive import Autoregressive, token_runs
from genloom.families.configs import AutoregressiveConfig, TokenSampling
from genloom.families.drawing import draw
from genloom.nets.token_decoder import TokenDecoder
from genloom.train.loop import read_metrics
from tests.conftest import QUIET, TINY_GPT, crash_at_training_step

LAYOUT = TextLayout((), vocab_size=20, start_token=3)


def _gpt(**options):
    torch.manual_seed(0)
    return Autoregressive(LAYOUT, AutoregressiveConfig(**{**TINY_GPT, "block_size": 16, **options})).eval()


def test_runs_of_allowed_tokens_are_slices_of_the_vocabulary():
    allowed = torch.zeros(3, 20, dtype=torch.bool)
    allowed[0, 2:6], allowed[1, 10:20], allowed[2, 0:1] = True, True, True
    assert token_runs(allowed) == [slice(2, 6), slice(10, 20), slice(0, 1)]
    allowed[1, 12] = False  # not one run
    assert token_runs(allowed) is None


@pytest.mark.parametrize("sampling", [TokenSampling(), TokenSampling(temperature=0.7, top_k=3),
                                      TokenSampling(top_p=0.8), TokenSampling(temperature=0)])
def test_drawing_from_a_runs_own_logits_draws_what_the_masked_vocabulary_draws(sampling):
    """Each step allows one run (a table's column): the logits of that run alone give the tokens that the whole
    vocabulary's, the rest masked, gives for the same seed."""
    gpt = _gpt(rope=True)
    with torch.no_grad():
        for param in gpt.parameters():
            param.mul_(4)  # peaked enough that the runs' tokens are not drawn alike
    allowed = torch.zeros(12, 20, dtype=torch.bool)
    for step in range(12):
        allowed[step, step % 4 * 5:step % 4 * 5 + 5] = True
    prompt = torch.full((200, 1), 3)
    everything = lambda history, vocab: torch.ones(len(history), vocab, dtype=torch.bool)  # noqa: E731

    def made(grammar):
        with torch.no_grad():
            return torch.stack(list(gpt.generate(prompt, 12, sampling, torch.Generator().manual_seed(1),
                                                 allowed=allowed, grammar=grammar)), 1)
    runs, masked = made(None), made(everything)  # a grammar reads the whole vocabulary: the masked path
    # the same draws to float rounding: a narrower product may round apart and flip a token, and its row after it
    assert (runs == masked).all(1).float().mean() >= 0.95
    assert allowed.gather(1, runs.t()).all()
    assert sampling.temperature == 0 or len(runs.unique(dim=0)) > 10  # rows drawn apart


def test_batches_drawn_side_by_side_are_those_drawn_one_at_a_time(monkeypatch):
    monkeypatch.setattr(drawing, "SAMPLE_BATCH", 8)
    torch.manual_seed(0)
    pixels = Autoregressive(ImageLayout((1, 4, 4), 0), AutoregressiveConfig(**TINY_GPT, levels=4)).eval()
    assert pixels.samples_side_by_side
    assert torch.equal(draw(pixels, 30, 2, workers=2), draw(pixels, 30, 2))
    # a batch of 28x28 images would hold a cache of some 1.2 GB: one batch at a time
    assert not Autoregressive(ImageLayout((1, 28, 28), 0), AutoregressiveConfig()).samples_side_by_side


def test_loss_is_next_token_cross_entropy():
    gpt = _gpt()
    x = torch.randint(20, (3, 17))
    (group, loss, _), = list(gpt.losses(x, None))
    logits = gpt.net(x[:, :-1])
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 20), x[:, 1:].reshape(-1))
    assert group == "model" and torch.allclose(loss, expected)
    assert torch.allclose(gpt.log_prob(x).sum() / -(3 * 16), loss, atol=1e-5)
    assert abs(loss.item() - math.log(20)) < 0.3  # untrained: close to uniform


def test_a_molecule_is_its_tokens_and_its_end_not_the_padding_after():
    """Molecules train on, and are scored by, their tokens and the end token after them; the padding past it is
    neither (a batch is cut after its longest molecule's end); their lengths are what grouped batches sort by."""
    torch.manual_seed(0)
    gpt = Autoregressive(MoleculeLayout((12,), vocab_size=9), AutoregressiveConfig(**TINY_GPT)).eval()
    x = torch.zeros(3, 12, dtype=torch.long)  # end tokens (0) after 4, 6 and 2 tokens
    for row, length in enumerate((4, 6, 2)):
        x[row, :length] = torch.randint(1, 9, (length,))
    assert gpt.example_lengths(x).tolist() == [4, 6, 2]
    sequences = gpt.sequences(x, None)  # the start token first
    token_losses = torch.nn.functional.cross_entropy(gpt.net(sequences[:, :-1]).transpose(1, 2), sequences[:, 1:],
                                                     reduction="none")
    per_molecule = [token_losses[row, :length + 1].sum() for row, length in enumerate((4, 6, 2))]
    assert torch.allclose(gpt.log_prob(x), -torch.stack(per_molecule), atol=1e-5)
    (_, loss, _), = list(gpt.losses(x, None))
    assert torch.allclose(loss, sum(per_molecule) / (3 * 12), atol=1e-5)  # over a fixed count: 12 per molecule
    padded = x.clone()
    padded[0, 5:] = 7  # what follows an end token changes nothing
    assert torch.allclose(gpt.log_prob(padded), gpt.log_prob(x), atol=1e-5)
    assert _gpt().example_lengths(torch.randint(20, (2, 17))) is None  # text windows have no end to cut at


def test_generation_with_and_without_cache_agree():
    gpt = _gpt()
    with torch.no_grad():
        for param in gpt.parameters():
            param.mul_(8)  # a peaked distribution, so greedy decoding is not degenerate
        prompt = torch.randint(20, (2, 4))
        greedy = TokenSampling(temperature=0)
        cached = torch.stack(list(gpt.generate(prompt, 12, greedy, torch.Generator())), 1)
        plain = torch.stack(list(gpt.generate(prompt, 12, greedy, torch.Generator(), use_cache=False)), 1)
        sampled = [torch.stack(list(gpt.generate(prompt, 12, TokenSampling(), torch.Generator().manual_seed(5),
                                                 use_cache=use)), 1) for use in (True, False)]
    assert torch.equal(cached, plain) and len(set(cached[0].tolist())) > 1
    assert torch.equal(*sampled)


@pytest.mark.parametrize("rope", [False, True])
def test_generation_through_the_one_token_decoder_equals_the_modules(monkeypatch, rope):
    """Right-aligned prompts past the context (the cache rebuilt for some rows, then all): the tokens drawn with
    the one-token decoder, which generation uses, are those the modules' forward draws."""
    gpt = _gpt(rope=rope)
    with torch.no_grad():
        for param in gpt.parameters():
            param.mul_(8)  # peaked, so that greedy decoding is not degenerate
    prompt, padding = torch.randint(20, (3, 6)), torch.tensor([4, 0, 2])
    steps = []
    monkeypatch.setattr(TokenDecoder, "__call__", lambda self, idx, cache, vocab, call=TokenDecoder.__call__:
                        steps.append(len(idx)) or call(self, idx, cache, vocab))

    def made(sampling, seed):
        with torch.no_grad():
            return torch.stack(list(gpt.generate(prompt, 40, sampling, torch.Generator().manual_seed(seed),
                                                 padding=padding)), 1)
    runs = [(TokenSampling(temperature=0), 0), (TokenSampling(), 5), (TokenSampling(top_k=5), 6)]
    decoded = [made(*run) for run in runs]
    assert len(steps) > 3 * 25  # most of the 40 tokens a run came through the decoder (the rest: rebuilds)
    monkeypatch.setattr(TokenDecoder, "applies_to", staticmethod(lambda net: False))
    steps.clear()
    for tokens, run in zip(decoded, runs):
        assert torch.equal(tokens, made(*run))
    assert not steps and len(set(decoded[0][0].tolist())) > 1


def test_the_one_token_decoder_stands_aside_while_dropout_is_drawn(monkeypatch):
    gpt = _gpt(dropout=0.5).train()
    monkeypatch.setattr(TokenDecoder, "__call__", lambda *_: pytest.fail("the decoder drew no dropout"))
    with torch.no_grad():
        made = list(gpt.generate(torch.randint(20, (2, 3)), 5, TokenSampling(), torch.Generator()))
    assert len(made) == 5 and not TokenDecoder.applies_to(gpt.net)


def test_generation_past_the_context_keeps_going():
    gpt = _gpt()
    with torch.no_grad():
        tokens = list(gpt.generate(torch.zeros(1, 1, dtype=torch.long), 40, TokenSampling(), torch.Generator()))
    assert len(tokens) == 40


def test_prompts_of_different_lengths_need_the_cache():
    prompt, padding = torch.randint(20, (2, 4)), torch.tensor([2, 0])
    with pytest.raises(GenloomError, match="prompts of different lengths are continued with the key/value cache"):
        next(_gpt().generate(prompt, 3, TokenSampling(), torch.Generator(), use_cache=False, padding=padding))


def test_sample_starts_from_the_start_token():
    with torch.no_grad():
        out = _gpt().sample(3, None, torch.Generator().manual_seed(0))
    assert out.shape == (3, 16) and out.dtype == torch.long


@pytest.mark.parametrize("options, message", [
    ({"n_embd": 30, "n_head": 4}, "must split into n_head"),
    ({"n_embd": 12, "n_head": 4}, "of equal, even size"),
    ({"dropout": 1.0}, "dropout must lie in"),
    ({"gelu": "relu"}, "gelu must be"),
    ({"block_size": 0}, "at least 1"),
    ({"bins": 1}, "bins must be at least 2; got 1"),
])
def test_impossible_options(options, message):
    with pytest.raises(GenloomError, match=message):
        family_config("autoregressive", "text", options)


def test_training_lowers_validation_loss_and_keeps_the_best(text_run):
    from pathlib import Path
    records = read_metrics(Path(text_run) / "metrics.jsonl")
    val = [m["val_loss"] for m in records if "val_loss" in m]
    assert [m["step"] for m in records if "val_loss" in m] == [50, 100, 150]
    assert val[-1] < val[0] < math.log(65)
    assert records[-1]["best_val_loss"] == min(val)
    assert (Path(text_run) / "best.safetensors").exists()


def test_resumed_text_run_equals_unbroken(tmp_path, monkeypatch):
    settings = dict(steps=12, checkpoint_every=5, log_every=1, eval_every=4, **QUIET)
    gl.Model("autoregressive", **TINY_GPT).fit("shakespeare", out=tmp_path / "a", **settings)
    with monkeypatch.context() as patch:
        crash_at_training_step(patch, Autoregressive, 9)
        with pytest.raises(KeyboardInterrupt):
            gl.Model("autoregressive", **TINY_GPT).fit("shakespeare", out=tmp_path / "b", **settings)
    gl.Model("autoregressive").fit(out=tmp_path / "b", resume=True, progress=False)
    def numbers(run):
        return [{k: v for k, v in m.items() if not k.endswith(("elapsed", "seconds"))}
                for m in read_metrics(run / "metrics.jsonl")]
    assert numbers(tmp_path / "a") == numbers(tmp_path / "b")
    assert len([m for m in numbers(tmp_path / "a") if "val_loss" in m]) == 3


def test_gradient_accumulation_uses_more_windows(tmp_path):
    model = gl.Model("autoregressive", **TINY_GPT).fit("shakespeare", steps=3, grad_accum=2, batch_size=4,
                                                       out=tmp_path / "r", **QUIET)
    state = torch.load(tmp_path / "r" / "trainer.pt", weights_only=True)
    assert state["batches"]["count"] == 6 and model.record["steps_trained"] == 3


def test_corpus_shorter_than_a_block(tmp_path):
    (tmp_path / "short.txt").write_text("a tiny corpus, only a few characters long")
    with pytest.raises(GenloomError, match="not more than one block of 33; use a longer corpus or a smaller block_size"):
        gl.Model("autoregressive", **TINY_GPT).fit(tmp_path / "short.txt", steps=1, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_vae_cannot_train_on_text(tmp_path):
    with pytest.raises(GenloomError, match="no encoder network for text data"):
        gl.Model("vae").fit("shakespeare", steps=1, out=tmp_path / "r")


# -- images as pixel tokens ---------------------------------------------------------------------------
IMAGES = ImageLayout((3, 2, 4), num_classes=5)


def test_pixel_tokens_are_equal_bins_in_raster_order_channels_last():
    tokens = PixelTokens((3, 2, 4), levels=4)  # bins of 64 8-bit values
    eight_bit = torch.arange(24).view(1, 2, 4, 3).permute(0, 3, 1, 2) % 4 * 64 + 10  # bin of (h, w, c) = index % 4
    x = eight_bit / 127.5 - 1
    assert tokens.encode(x).tolist() == [[i % 4 for i in range(24)]]
    centres = (tokens.decode(tokens.encode(x)) + 1) * 127.5
    torch.testing.assert_close(centres, (eight_bit // 64 * 64 + 31.5).float())
    edges = torch.tensor([0.0, 127, 128, 255]).view(1, 1, 1, 4) / 127.5 - 1
    assert PixelTokens((1, 1, 4), 2).encode(edges).tolist() == [[0, 0, 1, 1]]
    full = torch.arange(256).float().view(1, 1, 1, 256) / 127.5 - 1
    torch.testing.assert_close(PixelTokens((1, 1, 256), 256).decode(PixelTokens((1, 1, 256), 256).encode(full)), full)


def _pixel_gpt(**options):
    torch.manual_seed(0)
    config = AutoregressiveConfig(**{**TINY_GPT, "levels": 4, **options})
    return Autoregressive(IMAGES, config).eval()


def test_image_sequences_start_with_the_class_or_the_start_token():
    gpt = _pixel_gpt(conditional=True)
    assert gpt.net.block_size == 24 and gpt.context_length is None and gpt.net.wte.num_embeddings == 4 + 5 + 1
    x = torch.rand(2, 3, 2, 4) * 2 - 1
    sequences = gpt.sequences(x, torch.tensor([0, 4]))
    assert sequences[:, 0].tolist() == [4, 8] and sequences.shape == (2, 25)
    assert _pixel_gpt().sequences(x, None)[:, 0].tolist() == [9, 9]
    log_prob = gpt.log_prob(x, torch.tensor([0, 4]))
    (_, loss, _), = list(gpt.losses(x, torch.tensor([0, 4])))
    assert torch.allclose(-log_prob.sum() / (2 * 24), loss, atol=1e-5)


def test_image_samples_lie_on_the_level_grid_and_follow_sampling_options():
    gpt = _pixel_gpt(conditional=True)
    samples = gpt.sample(3, torch.tensor([1, 2, 3]), torch.Generator().manual_seed(0), TokenSampling(top_k=2))
    assert samples.shape == (3, 3, 2, 4)
    assert set(((samples + 1) * 127.5).round(decimals=3).unique().tolist()) <= {31.5, 95.5, 159.5, 223.5}  # centres
    greedy = [gpt.sample(2, torch.tensor([4, 4]), torch.Generator().manual_seed(s), TokenSampling(temperature=0))
              for s in (0, 1)]
    assert torch.equal(*greedy)


@pytest.mark.parametrize("levels", [1, 3, 512])
def test_levels_must_be_a_power_of_two_from_2_to_256(levels):
    with pytest.raises(GenloomError, match=f"levels \\(K\\) must be a power of 2 from 2 to 256 .*got {levels}"):
        family_config("autoregressive", "image", {"levels": levels})


def test_pixel_model_learns_digits_and_reports_8_bit_bits_per_dim(tmp_path):
    model = gl.Model("autoregressive", **TINY_GPT, levels=8, conditional=True)
    model.fit("digits", steps=60, out=tmp_path / "r", batch_size=32, warmup_steps=10, eval_every=30, **QUIET)
    val = [m["val_loss"] for m in read_metrics(tmp_path / "r" / "metrics.jsonl") if "val_loss" in m]
    assert val[-1] < val[0] < math.log(8 + 10 + 1)
    assert model.record["final_metrics"]["bits_per_dim"] < 8  # a uniform model over 256 values: 8
    images = model.sample(4, seed=0, labels=[3], temperature=0.8, repetition_penalty=1.3)
    assert images.shape == (4, 8, 8, 1)
    with pytest.raises(GenloomError, match="generate continues text; this model makes image data: use sample"):
        model.generate("x")


WAVENET = {"backbone": "wavenet", "wavenet_layers": 6, "wavenet_cycles": 1, "n_embd": 16, "conditional": True}
WAVEFORM = {"representation": "waveform", "length": 512}


def _dominant_frequency(wave: np.ndarray, rate: int) -> float:
    return float(np.argmax(np.abs(np.fft.rfft(wave))[1:]) + 1) * rate / len(wave)


def test_a_wavenet_learns_the_tones_from_their_past_and_their_class(tones):
    """Below the entropy of the tones' mu-law levels taken one at a time (what a model of level frequencies
    alone reaches), and each class's samples at its own pitch (300 and 1,500 Hz)."""
    model = gl.Model("autoregressive", **WAVENET).fit(tones, steps=250, batch_size=8, warmup_steps=10,
                                                      codec_options=WAVEFORM, **QUIET)
    tokens = model.codec.layout.tokens(16, 32).encode(model.codec.encode(gl.load_data(tones).values))
    frequencies = torch.bincount(tokens.flatten(), minlength=256).double() / tokens.numel()
    level_entropy = -(frequencies[frequencies > 0] * frequencies[frequencies > 0].log()).sum().item()
    assert model.record["final_metrics"]["best_val_loss"] < 0.9 * level_entropy
    waves = model.sample(8, labels=["low"] * 4 + ["high"] * 4, seed=0)
    pitches = [_dominant_frequency(wave, waves.rate) for wave in waves.waves]
    assert max(pitches[:4]) < 600 < 1000 < min(pitches[4:])


def test_a_wavenet_generates_the_same_tokens_with_and_without_its_rings(tones):
    model = gl.Model("autoregressive", **WAVENET).fit(tones, steps=1, codec_options=WAVEFORM, **QUIET)
    net, prompt = model.ema_net, torch.tensor([[257], [256]])
    greedy = TokenSampling(temperature=0.0)
    made = [torch.stack(list(net.generate(prompt, 80, greedy, torch.Generator(), use_cache=cached)), dim=1)
            for cached in (True, False)]
    assert torch.equal(*made)


def test_muon_is_refused_for_a_wavenet(tones):
    with pytest.raises(GenloomError, match="optimizer 'muon' needs a network that names its hidden matrices"):
        gl.Model("autoregressive", **WAVENET).fit(tones, steps=1, optimizer="muon", codec_options=WAVEFORM, **QUIET)


@pytest.mark.parametrize("options, message", [
    ({"wavenet_layers": 4}, "wavenet_layers and wavenet_cycles shape WaveNet: add --backbone wavenet"),
    ({"backbone": "wavenet", "n_embd": 30}, None),  # no heads to split into
])
def test_wavenet_options_belong_to_wavenet(options, message):
    if message is None:
        assert family_config("autoregressive", "signal", options).n_embd == 30
    else:
        with pytest.raises(GenloomError, match=message):
            family_config("autoregressive", "signal", options)
    with pytest.raises(GenloomError, match="the VQ-VAE's prior is a transformer over its grid of codes"):
        family_config("vq-vae", "image", {"backbone": "wavenet"})
