"""GPT-2 interop, checked against transformers' GPT2LMHeadModel on the same weights (built locally, no download)."""
import json

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

import genloom as gl
from genloom.data.text_codec import train_bpe
from genloom.export.gpt2 import save_gpt2
from genloom.families.configs import TokenSampling
from genloom.runs.gpt2 import read_gpt2
from tests.conftest import QUIET

VOCAB = 300


@pytest.fixture(scope="module")
def hf_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpt2")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4, initializer_range=0.2,
                        bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(path)
    (path / "tokenizer.json").write_text(train_bpe(gl.load_data("shakespeare").values[:100_000], VOCAB).to_str())
    return path


def _hf(path):
    return GPT2LMHeadModel.from_pretrained(path).eval()


def test_logits_agree_with_transformers(hf_checkpoint):
    model = gl.load(hf_checkpoint)
    ids = torch.randint(VOCAB, (3, 40))
    with torch.no_grad():
        ours = model.ema_net.net(ids)
        theirs = _hf(hf_checkpoint)(ids).logits
    assert (ours - theirs).abs().max() < 1e-4


def test_greedy_generation_gives_the_same_tokens(hf_checkpoint):
    model = gl.load(hf_checkpoint)
    prompt = torch.randint(VOCAB, (1, 6))
    with torch.no_grad():
        theirs = _hf(hf_checkpoint).generate(prompt, max_new_tokens=30, do_sample=False)[0, 6:]
        ours = torch.stack(list(model.ema_net.generate(prompt, 30, TokenSampling(temperature=0), torch.Generator())), 1)
    assert ours[0].tolist() == theirs.tolist() and len(set(theirs.tolist())) > 3
    assert isinstance(model.generate("ROMEO:", max_tokens=5, temperature=0), str)


def test_gl_load_and_the_cli_read_gpt2_folders(hf_checkpoint, tmp_path):
    assert gl.load(hf_checkpoint).generate("ROMEO:", max_tokens=5, temperature=0) == \
        gl.load(hf_checkpoint).generate("ROMEO:", max_tokens=5, temperature=0)
    from genloom.cli import main
    assert main(["export", str(hf_checkpoint), "--gpt2", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "model.safetensors").exists()


def test_export_round_trip(hf_checkpoint, tmp_path):
    save_gpt2(gl.load(hf_checkpoint), tmp_path / "out")
    ids = torch.randint(VOCAB, (2, 30))
    with torch.no_grad():
        assert torch.allclose(_hf(tmp_path / "out")(ids).logits, _hf(hf_checkpoint)(ids).logits, atol=1e-6)
    assert (tmp_path / "out" / "tokenizer.json").exists()


def test_export_folds_lora_into_the_weights(hf_checkpoint, tmp_path):
    from genloom.nets.lora import add_lora
    model = gl.load(hf_checkpoint)
    add_lora(model.ema_net, rank=2, alpha=4.0)
    with torch.no_grad():
        for name, param in model.ema_net.named_parameters():
            if name.endswith("lora_b"):
                param.normal_(0, 0.1)
    save_gpt2(model, tmp_path / "out")
    ids = torch.randint(VOCAB, (2, 20))
    with torch.no_grad():
        assert torch.allclose(_hf(tmp_path / "out")(ids).logits, model.ema_net.net(ids), atol=1e-4)


def test_unsupported_gpt2_settings(hf_checkpoint, tmp_path):
    import shutil
    folder = shutil.copytree(hf_checkpoint, tmp_path / "odd")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "scale_attn_by_inverse_layer_idx": True}))
    with pytest.raises(gl.GenloomError, match="unsupported settings scale_attn_by_inverse_layer_idx"):
        read_gpt2(folder)
    del config["n_layer"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(gl.GenloomError, match="missing n_layer"):
        read_gpt2(folder)


def test_trained_genloom_model_exports(tmp_path):
    model = gl.Model("autoregressive", n_layer=1, n_head=2, n_embd=16, block_size=16, bias=True, rope=False)
    model.fit("shakespeare", steps=3, out=tmp_path / "run", codec_options={"tokenizer": "bpe", "vocab_size": 300},
              **QUIET)
    save_gpt2(model, tmp_path / "hf")
    ids = torch.randint(300, (1, 16))
    with torch.no_grad():
        assert torch.allclose(_hf(tmp_path / "hf")(ids).logits, model.ema_net.net(ids), atol=1e-5)


def test_unexportable_and_unloadable(tmp_path, text_run, hf_checkpoint):
    with pytest.raises(gl.GenloomError, match="only GPT-2-shaped models export"):
        save_gpt2(gl.load(text_run), tmp_path / "x")
    with pytest.raises(gl.GenloomError, match="is not a GPT-2 checkpoint \\(no config.json\\)"):
        read_gpt2(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(gl.GenloomError, match="holds a 'llama' model"):
        read_gpt2(tmp_path)
    (tmp_path / "config.json").write_text((hf_checkpoint / "config.json").read_text())
    with pytest.raises(gl.GenloomError, match="no tokenizer.json"):
        read_gpt2(tmp_path)


def test_evaluating_or_saving_a_checkpoint_never_writes_into_it(hf_checkpoint, tmp_path):
    """A Hugging Face folder is not a genloom run: its config.json is not ours to rewrite."""
    before = {path.name: path.read_bytes() for path in hf_checkpoint.iterdir()}
    (tmp_path / "text.txt").write_text(gl.load_data("shakespeare").values[:5000])
    model = gl.load(hf_checkpoint)
    scores = gl.evaluate(model, tmp_path / "text.txt", samples=2)
    assert "held_out_loss" in scores and not model.is_own_run()
    with pytest.raises(gl.GenloomError, match="already holds a run, an adapter or a checkpoint"):
        model.save(hf_checkpoint)
    assert {path.name: path.read_bytes() for path in hf_checkpoint.iterdir()} == before
    model.save(tmp_path / "run")  # a run of its own, which remembers where it came from
    assert json.loads((tmp_path / "run" / "config.json").read_text())["derived_from"]["imported_from"]
    assert _hf(hf_checkpoint) is not None  # transformers still reads the folder
