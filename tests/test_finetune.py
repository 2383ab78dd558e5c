import json
from pathlib import Path

import pytest

import genloom as gl
from genloom.train import read_metrics
from tests.conftest import QUIET


@pytest.fixture(scope="module")
def romeo(tmp_path_factory):
    text = gl.load_data("shakespeare").values
    path = tmp_path_factory.mktemp("corpus") / "romeo.txt"
    path.write_text("\n\n".join(p for p in text.split("\n\n") if p.startswith("ROMEO")))
    return path


def test_lora_saves_only_the_adapter_and_reloads(text_run, romeo, tmp_path):
    base = gl.load(text_run)
    before = base.generate("ROMEO:", max_tokens=30, seed=0)
    tuned = base.finetune(romeo, out=tmp_path / "lora", rank=4, steps=60, lr=1e-2, eval_every=20, **QUIET)
    assert sorted(p.name for p in (tmp_path / "lora").iterdir()) == ["adapter.json", "adapter.safetensors",
                                                                       "metrics.jsonl"]
    adapter = json.loads((tmp_path / "lora" / "adapter.json").read_text())
    assert adapter["rank"] == 4 and Path(adapter["base"]) == Path(text_run).resolve()
    val = [m["val_loss"] for m in read_metrics(tmp_path / "lora" / "metrics.jsonl") if "val_loss" in m]
    assert val[-1] < val[0]
    after = tuned.generate("ROMEO:", max_tokens=30, seed=0)
    assert after != before
    assert gl.load(tmp_path / "lora").generate("ROMEO:", max_tokens=30, seed=0) == after
    tuned.save(tmp_path / "merged")  # LoRA folded into whole weights
    assert gl.load(tmp_path / "merged").generate("ROMEO:", max_tokens=30, seed=0) == after
    assert gl.load(text_run).generate("ROMEO:", max_tokens=30, seed=0) == before  # the base is untouched


def test_finetune_errors(text_run, trained_run, tmp_path):
    with pytest.raises(gl.GenloomError, match="learnt text; fine-tune it on text, not images"):
        gl.load(text_run).finetune("digits", out=tmp_path / "x", steps=1)
    with pytest.raises(gl.GenloomError, match="no layers named c_attn"):
        gl.load(trained_run).finetune("digits", out=tmp_path / "y", steps=1)
    with pytest.raises(gl.GenloomError, match="rank >= 1"):
        gl.load(text_run).finetune("shakespeare", out=tmp_path / "z", rank=0)
    with pytest.raises(gl.GenloomError, match="already holds a run"):
        gl.load(text_run).finetune("shakespeare", out=text_run, steps=1)


def test_an_adapter_is_not_fine_tuned_again(text_run, romeo, tmp_path):
    gl.load(text_run).finetune(romeo, out=tmp_path / "lora", rank=2, steps=2, **QUIET)
    with pytest.raises(gl.GenloomError, match="already carries a LoRA adapter"):
        gl.load(tmp_path / "lora").finetune(romeo, out=tmp_path / "again", steps=1)


def test_a_table_model_keeps_its_own_statistics_when_fine_tuned(tmp_path):
    import numpy as np
    import pandas as pd
    import torch

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": rng.normal(0, 1, 400), "colour": rng.choice(["red", "blue"], 400)})
    base = gl.Model("autoregressive", n_layer=1, n_embd=16, n_head=2, bins=8).fit(frame, steps=5, out=tmp_path / "b",
                                                                                   **QUIET)
    edges = base.ema_net.tokens.bin_edges.clone()
    shifted = frame.assign(size=frame["size"] + 10)  # bins refitted on this would read every token differently
    tuned = base.finetune(shifted, out=tmp_path / "lora", rank=2, steps=3, **QUIET)
    assert torch.equal(tuned.ema_net.tokens.bin_edges, edges)
    pd.testing.assert_frame_equal(gl.load(tmp_path / "lora").sample(20, seed=1), tuned.sample(20, seed=1))
