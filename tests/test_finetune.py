import json
import shutil
from pathlib import Path

import pytest

import genloom as gl
from genloom.train.loop import read_metrics
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
    assert adapter["rank"] == 4 and not Path(adapter["base"]).is_absolute()  # a folder of runs can move
    assert (tmp_path / "lora" / adapter["base"]).resolve() == Path(text_run).resolve()
    val = [m["val_loss"] for m in read_metrics(tmp_path / "lora" / "metrics.jsonl") if "val_loss" in m]
    assert val[-1] < val[0]
    after = tuned.generate("ROMEO:", max_tokens=30, seed=0)
    assert after != before
    assert gl.load(tmp_path / "lora").generate("ROMEO:", max_tokens=30, seed=0) == after
    tuned.save(tmp_path / "merged")  # LoRA folded into whole weights
    assert gl.load(tmp_path / "merged").generate("ROMEO:", max_tokens=30, seed=0) == after
    assert gl.load(text_run).generate("ROMEO:", max_tokens=30, seed=0) == before  # the base is untouched


def test_finetune_errors(text_run, trained_run, tmp_path):
    with pytest.raises(gl.GenloomError, match="learnt text data; fine-tune it on text, not image"):
        gl.load(text_run).finetune("digits", out=tmp_path / "x", steps=1)
    with pytest.raises(gl.GenloomError, match=r"fine-tuning supports autoregressive runs \(text, or tables and images "
                                              r"as tokens\), whose transformer has layers named c_attn, c_proj, c_fc; "
                                              "this run's family is vae"):
        gl.load(trained_run).finetune("digits", out=tmp_path / "y", steps=1)
    with pytest.raises(gl.GenloomError, match="LoRA rank must be a whole number of at least 1; got 0"):
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


def test_a_moved_folder_of_runs_keeps_its_adapters(text_run, romeo, tmp_path):
    shutil.copytree(text_run, tmp_path / "runs" / "base")
    base = gl.load(tmp_path / "runs" / "base")
    tuned = base.finetune(romeo, out=tmp_path / "runs" / "lora", rank=2, steps=3, **QUIET)
    expected = tuned.generate("ROMEO:", max_tokens=10, seed=0)
    (tmp_path / "runs").rename(tmp_path / "moved")
    assert gl.load(tmp_path / "moved" / "lora").generate("ROMEO:", max_tokens=10, seed=0) == expected
    shutil.rmtree(tmp_path / "moved" / "base")
    with pytest.raises(gl.GenloomError, match="its base run .* is not there; keep the adapter beside the run"):
        gl.load(tmp_path / "moved" / "lora")


def test_an_adapter_is_its_fine_tuning_data_and_a_merged_save_is_a_run(text_run, romeo, tmp_path):
    tuned = gl.load(text_run).finetune(romeo, out=tmp_path / "lora", rank=2, steps=3, **QUIET)
    assert tuned.record["data"]["name"] == "romeo" and tuned.record["adapter"]["data"]["name"] == "romeo"
    loaded = gl.load(tmp_path / "lora")
    assert loaded.record["data"]["source"]["source"] == str(romeo.resolve())  # evaluate scores on romeo's tail
    assert not loaded.is_own_run()  # evaluations never rewrite the base run's pages
    loaded.save(tmp_path / "merged")
    merged = gl.load(tmp_path / "merged")
    assert "adapter" not in merged.record and merged.record["derived_from"]["adapter"]["rank"] == 2
    merged.finetune(romeo, out=tmp_path / "again", rank=2, steps=1, **QUIET)  # a merged run adapts anew
    from genloom.cli import main
    assert main(["info", str(tmp_path / "lora")]) == 0


def _write_pairs(path, pairs):
    path.write_text("".join(json.dumps(pair) + "\n" for pair in pairs), encoding="utf-8")
    return path


def test_dpo_writes_an_adapter_that_prefers_the_chosen_responses(text_run, tmp_path):
    pairs = [{"prompt": f"{name}:", "chosen": " Good night, good night!", "rejected": " xq zq xq zq"}
             for name in ("ROMEO", "JULIET", "NURSE", "KING", "QUEEN", "FRIAR", "PRINCE", "TYBALT")] * 3
    path = _write_pairs(tmp_path / "prefs.jsonl", pairs)
    base = gl.load(text_run)

    def margin(model):
        chosen = model.log_prob(["ROMEO: Good night, good night!"]) - model.log_prob(["ROMEO: xq zq xq zq"])
        return chosen[0]

    before = margin(base)
    tuned = base.finetune(path, out=tmp_path / "dpo", objective="dpo", beta=0.5, rank=4, steps=30, lr=1e-2,
                          eval_every=10, **QUIET)
    adapter = json.loads((tmp_path / "dpo" / "adapter.json").read_text())
    assert adapter["objective"] == "dpo" and adapter["beta"] == 0.5 and adapter["preferences"]["pairs"] == 24
    assert sorted(p.name for p in (tmp_path / "dpo").iterdir()) == ["adapter.json", "adapter.safetensors",
                                                                      "metrics.jsonl"]
    assert margin(tuned) > before + 5  # nats: the chosen reply is far likelier against the rejected one now
    assert margin(gl.load(tmp_path / "dpo")) == pytest.approx(margin(tuned), abs=1e-3)
    assert margin(gl.load(text_run)) == pytest.approx(before, abs=1e-6)  # the base is untouched
    logged = read_metrics(tmp_path / "dpo" / "metrics.jsonl")
    assert any("preference_accuracy" in line for line in logged)


def test_dpo_errors(text_run, trained_run, molecule_run, tmp_path):
    path = _write_pairs(tmp_path / "prefs.jsonl", [{"prompt": "A", "chosen": "b", "rejected": "c"}] * 4)
    with pytest.raises(gl.GenloomError, match="unknown fine-tuning objective 'ppo2'; use one of sft, dpo, ppo"):
        gl.load(text_run).finetune(path, out=tmp_path / "x", objective="ppo2")
    with pytest.raises(gl.GenloomError, match=r"PPO options apply to objective='ppo'; drop ppo=\{'rounds': 2\} "
                                              r"for dpo"):
        gl.load(text_run).finetune(path, out=tmp_path / "x", objective="dpo", ppo={"rounds": 2})
    with pytest.raises(gl.GenloomError, match="beta must be"):
        gl.load(text_run).finetune(path, out=tmp_path / "x", objective="dpo", beta=0, steps=1, **QUIET)
    with pytest.raises(gl.GenloomError, match="molecules are generated without a prompt"):
        gl.load(molecule_run).finetune(path, out=tmp_path / "y", objective="dpo", steps=1, **QUIET)
    with pytest.raises(gl.GenloomError, match="fine-tuning supports autoregressive runs"):
        gl.load(trained_run).finetune(path, out=tmp_path / "z", objective="dpo", steps=1, **QUIET)
    long = _write_pairs(tmp_path / "long.jsonl", [{"prompt": "A" * 40, "chosen": "b" * 200, "rejected": "c"}])
    with pytest.raises(gl.GenloomError, match="a preference pair is 240 tokens .* this model's context is 32"):
        gl.load(text_run).finetune(long, out=tmp_path / "w", objective="dpo", steps=1, **QUIET)
    assert not any((tmp_path / name).exists() for name in "xyzw")


def test_dpo_on_molecules_needs_no_prompt(molecule_run, tmp_path):
    molecules = gl.load_data("moses-test").values[:40].tolist()
    pairs = [{"chosen": good, "rejected": bad} for good, bad in zip(molecules[:20], molecules[20:])]
    base = gl.load(molecule_run)
    before = base.log_prob(molecules[:20]).sum() - base.log_prob(molecules[20:]).sum()
    tuned = base.finetune(pairs, out=tmp_path / "dpo", objective="dpo", rank=4, steps=20, lr=1e-2, **QUIET)
    after = tuned.log_prob(molecules[:20]).sum() - tuned.log_prob(molecules[20:]).sum()
    assert after > before + 10
    assert json.loads((tmp_path / "dpo" / "adapter.json").read_text())["preferences"]["source"] == "in-memory pairs"
    assert len(gl.load(tmp_path / "dpo").sample(5, progress=False)) == 5
