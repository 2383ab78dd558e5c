"""PPO end to end: toward a reward function it raises the reward; from preference pairs it learns a reward model
first; a reward that fails half-way stops it with the last good adapter kept, and one that fails at once leaves
nothing behind."""
import json

import numpy as np
import pytest
import torch

import genloom as gl
from genloom.train.loop import read_metrics
from tests.conftest import QUIET

SMALL = {"rollouts": 32, "minibatch": 16, "response_tokens": 24}


def vowels(text):
    return sum(text.count(vowel) for vowel in "aeiou") / max(len(text), 1)


def test_ppo_toward_a_reward_function_raises_it_and_keeps_only_the_adapter(text_run, tmp_path):
    tuned = gl.finetune_reward(text_run, vowels, out=tmp_path / "ppo", prompts=["ROMEO:", "JULIET:"], max_tokens=24,
                               ppo={**SMALL, "rounds": 12, "ppo_lr": 3e-3}, rank=4, **QUIET)
    adapter = json.loads((tmp_path / "ppo" / "adapter.json").read_text())
    assert adapter["objective"] == "ppo" and adapter["reward"] == {"function": "vowels"}
    assert [entry["round"] for entry in adapter["history"]] == list(range(1, 13))
    assert sorted(p.name for p in (tmp_path / "ppo").iterdir()) == ["adapter.json", "adapter.safetensors"]  # no state
    history = adapter["history"]
    assert history[0]["kl"] == pytest.approx(0, abs=1e-4) and history[-1]["kl"] > 0
    base = gl.load(text_run)
    prompts = ["ROMEO:", "JULIET:"] * 12
    before = np.mean([vowels(base.generate(p, max_tokens=24, seed=s)) for s, p in enumerate(prompts)])
    after = np.mean([vowels(tuned.generate(p, max_tokens=24, seed=s)) for s, p in enumerate(prompts)])
    assert after > before + 0.1  # measured: 0.27 -> 0.52
    reloaded = gl.load(tmp_path / "ppo")
    assert reloaded.generate("ROMEO:", max_tokens=24, seed=3) == tuned.generate("ROMEO:", max_tokens=24, seed=3)


def test_ppo_from_preference_pairs_learns_a_reward_model_first(text_run, tmp_path):
    pairs = [{"prompt": f"{name}:", "chosen": " a e i o u a e", "rejected": " x q z k x q z"}
             for name in ("ROMEO", "JULIET", "NURSE", "KING")] * 4
    tuned = gl.load(text_run).finetune(pairs, out=tmp_path / "ppo", objective="ppo", steps=40, lr=1e-2, rank=4,
                                       eval_every=20, ppo={**SMALL, "rounds": 2}, **QUIET)
    adapter = tuned.record["adapter"]
    assert adapter["reward"] == {"reward_model": {"source": "in-memory pairs", "pairs": 16}}
    learnt = [line for line in read_metrics(tmp_path / "ppo" / "reward-model" / "metrics.jsonl")
              if "preference_accuracy" in line]
    assert learnt[-1]["preference_accuracy"] == 1
    assert len(adapter["history"]) == 2 and len(gl.load(tmp_path / "ppo").generate("KING:", max_tokens=5)) == 5


def offline_in_round_3():
    """The vowel reward, which raises from the third round of SMALL's rollouts on."""
    calls = []

    def reward(text):
        calls.append(text)
        if len(calls) > 2 * SMALL["rollouts"]:
            raise ValueError("the judge is offline")
        return vowels(text)
    reward.__name__ = "vowels"  # the vowel reward, as the run's record names it (a resume must name the same)
    return reward


def test_a_reward_that_fails_half_way_keeps_the_last_good_adapter(text_run, tmp_path):
    with pytest.raises(gl.GenloomError, match=r"the reward raised ValueError on sample 0 .*the judge is offline.* "
                                              r"\(PPO stopped in round 3; the adapter of round 2 is kept in "):
        gl.finetune_reward(text_run, offline_in_round_3(), out=tmp_path / "ppo", ppo={**SMALL, "rounds": 5},
                           max_tokens=24, **QUIET)
    kept = gl.load(tmp_path / "ppo")
    assert [entry["round"] for entry in kept.record["adapter"]["history"]] == [1, 2]
    with pytest.raises(gl.GenloomError, match="the reward gave nan for sample 0"):
        gl.finetune_reward(text_run, lambda text: float("nan"), out=tmp_path / "nan", ppo=SMALL, max_tokens=24,
                           **QUIET)
    assert not (tmp_path / "nan").exists()


def test_ppo_refusals(text_run, molecule_run, tmp_path):
    with pytest.raises(gl.GenloomError, match="the prompt 'ROMEO:' and 30 response tokens make 37 tokens; this "
                                              "model's context is 32"):
        gl.finetune_reward(text_run, vowels, out=tmp_path / "x", prompts=["ROMEO:"], max_tokens=30, **QUIET)
    with pytest.raises(gl.GenloomError, match="this model draws whole molecule examples, without a prompt"):
        gl.finetune_reward(molecule_run, "QED", out=tmp_path / "y", prompts=["C"], **QUIET)
    with pytest.raises(gl.GenloomError, match="unknown PPO option 'round'"):
        gl.finetune_reward(text_run, vowels, out=tmp_path / "z", ppo={"round": 2}, **QUIET)
    with pytest.raises(gl.GenloomError, match="unknown reward-tuning objective 'sft'; use ppo or dpo"):
        gl.finetune_reward(text_run, vowels, out=tmp_path / "w", objective="sft", **QUIET)
    assert not any((tmp_path / name).exists() for name in "xyzw")


def test_ppo_toward_a_molecule_property_and_toward_a_reward_model_of_molecules(molecule_run, tmp_path):
    tuned = gl.finetune_reward(molecule_run, "QED", out=tmp_path / "qed", ppo={"rounds": 2, "rollouts": 16}, **QUIET)
    adapter = tuned.record["adapter"]
    assert adapter["reward"] == {"property": "QED"} and len(adapter["history"]) == 2
    assert gl.load(tmp_path / "qed").sample(4, seed=5, progress=False) == tuned.sample(4, seed=5, progress=False)
    assert gl.load(tmp_path / "qed").sample(4, seed=5, progress=False) != gl.load(molecule_run).sample(
        4, seed=5, progress=False)
    molecules = gl.load_data("moses-test").values[:16].tolist()
    pairs = [{"chosen": good, "rejected": bad} for good, bad in zip(molecules[:8], molecules[8:])]
    learnt = gl.load(molecule_run).finetune(pairs, out=tmp_path / "rm", objective="ppo", steps=5, ppo=SMALL | {
        "rounds": 1}, **QUIET)  # a molecule fills the context: the reward model reads it whole but its end padding
    assert learnt.record["adapter"]["reward"]["reward_model"]["pairs"] == 8


def test_what_a_reward_gives_is_checked(text_run, tmp_path):
    from genloom.finetune.ppo import checked_rewards

    assert checked_rewards([1, 2.5], 2).tolist() == [1.0, 2.5]
    with pytest.raises(gl.GenloomError, match=r"the reward gave shape \(2, 1\) for 2 samples"):
        checked_rewards([[1.0], [2.0]], 2)
    with pytest.raises(gl.GenloomError, match="the reward gave inf for sample 1"):
        checked_rewards([0.0, float("inf")], 2)
    with pytest.raises(gl.GenloomError, match="the reward gave str, not numbers"):
        checked_rewards("ab", 2)
    with pytest.raises(gl.GenloomError, match="the reward gave shape"):
        gl.load(text_run).finetune_ppo(lambda drawn: [1.0], out=tmp_path / "x", reward_source={}, ppo=SMALL, **QUIET)
    with pytest.raises(gl.GenloomError, match="PPO runs for its rounds .*not steps"):
        gl.load(text_run).finetune_ppo(lambda drawn: [1.0], out=tmp_path / "y", reward_source={}, steps=3, **QUIET)
    with pytest.raises(gl.GenloomError, match="the prompt '' and 64 response tokens make 65 tokens; this model's "
                                              "context is 32"):
        gl.finetune_reward(text_run, vowels, out=tmp_path / "z", **QUIET)  # unprompted: the start token alone
    assert not any((tmp_path / name).exists() for name in "xyz")


def test_ppo_refuses_an_autoregressive_model_of_rows(tmp_path):
    rows = gl.Model("autoregressive", n_layer=1, n_head=2, n_embd=16).fit("wine", steps=2, out=tmp_path / "rows",
                                                                           **QUIET)
    with pytest.raises(gl.GenloomError, match="preference tuning applies to text and molecules; this model makes "
                                              "table data"):
        gl.finetune_reward(rows, lambda row: 1.0, out=tmp_path / "x", **QUIET)
    assert not (tmp_path / "x").exists()


def test_rounds_draw_the_prompts_in_turn_where_the_last_round_stopped(text_run):
    import torch

    from genloom.finetune.ppo import draw

    model = gl.load(text_run)
    prompts = ["ROMEO:", "KING:", "NURSE:"]
    drawn = draw(model.ema_net, model.codec, prompts, 2, 4, torch.Generator().manual_seed(0), first=2)
    given = [model.codec.decode(row[1:1 + len(model.codec.encode(prompt))]) for row, prompt in
             zip(drawn.ids, ["NURSE:", "ROMEO:"])]
    assert given == ["NURSE:", "ROMEO:"]  # the third prompt, then round again to the first
    assert drawn.response.sum(1).tolist() == [4, 4] and len(drawn.texts[0]) == 4


def test_a_resumed_ppo_run_equals_an_unbroken_one(text_run, tmp_path):
    from safetensors.torch import load_file

    settings = {**SMALL, "rounds": 4}
    unbroken = gl.finetune_reward(text_run, vowels, out=tmp_path / "whole", ppo=settings, max_tokens=24, **QUIET)
    with pytest.raises(gl.GenloomError, match=r"the adapter of round 2 is kept in .*: go on from it with resume=True, "
                                              r"CLI: --resume"):
        gl.finetune_reward(text_run, offline_in_round_3(), out=tmp_path / "broken", ppo=settings, max_tokens=24,
                           **QUIET)
    assert (tmp_path / "broken" / "ppo-state.pt").exists()
    with pytest.raises(gl.GenloomError, match="already holds a run .*pass resume=True .* to go on with the PPO run"):
        gl.finetune_reward(text_run, vowels, out=tmp_path / "broken", ppo=settings, max_tokens=24, **QUIET)
    with pytest.raises(gl.GenloomError, match="started with kl_coef 0.05, not 0.2; resume it as it started"):
        gl.finetune_reward(text_run, vowels, out=tmp_path / "broken", ppo={**settings, "kl_coef": 0.2},
                           max_tokens=24, resume=True, **QUIET)
    with pytest.raises(gl.GenloomError, match="started with LoRA rank 8, not 4"):
        gl.finetune_reward(text_run, vowels, out=tmp_path / "broken", ppo=settings, max_tokens=24, resume=True,
                           rank=4, **QUIET)
    with pytest.raises(gl.GenloomError, match="was asked for 4 rounds and has done 2; resume it with at least 4"):
        gl.finetune_reward(text_run, vowels, out=tmp_path / "broken", ppo={**settings, "rounds": 3}, max_tokens=24,
                           resume=True, **QUIET)
    resumed = gl.finetune_reward(text_run, vowels, out=tmp_path / "broken", ppo=settings, max_tokens=24, resume=True,
                                 **QUIET)
    assert resumed.record["adapter"]["history"] == unbroken.record["adapter"]["history"]
    for name, tensor in load_file(tmp_path / "whole" / "adapter.safetensors").items():
        assert torch.equal(load_file(tmp_path / "broken" / "adapter.safetensors")[name], tensor), name
    assert not (tmp_path / "broken" / "ppo-state.pt").exists()  # done: only the adapter is kept
    with pytest.raises(gl.GenloomError, match="holds no PPO run to resume"):
        gl.finetune_reward(text_run, vowels, out=tmp_path / "broken", ppo=settings, max_tokens=24, resume=True,
                           **QUIET)
    with pytest.raises(gl.GenloomError, match="resume goes on with a PPO run; dpo fine-tuning starts again"):
        gl.finetune_reward(text_run, vowels, out=tmp_path / "dpo", objective="dpo", resume=True, **QUIET)


def test_a_resumed_ppo_run_reads_its_reward_model_back(text_run, tmp_path, monkeypatch):
    import genloom.finetune.ppo as ppo
    import genloom.model

    pairs = [{"prompt": f"{name}:", "chosen": " a e i o u a e", "rejected": " x q z k x q z"}
             for name in ("ROMEO", "JULIET")] * 4
    options = {"objective": "ppo", "steps": 20, "lr": 1e-2, "rank": 4, "ppo": {**SMALL, "rounds": 2}, **QUIET}
    unbroken = gl.load(text_run).finetune(pairs, out=tmp_path / "whole", **options)
    scorer = genloom.model.reward_model_reward

    def fails_in_round_2(model):
        score, rounds = scorer(model), []
        def reward(drawn):
            rounds.append(1)
            if len(rounds) == 2:
                raise gl.GenloomError("the reward model's machine went down")
            return score(drawn)
        return reward

    monkeypatch.setattr(genloom.model, "reward_model_reward", fails_in_round_2)
    with pytest.raises(gl.GenloomError, match="went down .*PPO stopped in round 2"):
        gl.load(text_run).finetune(pairs, out=tmp_path / "broken", **options)
    monkeypatch.setattr(genloom.model, "reward_model_reward", scorer)
    monkeypatch.setattr(ppo, "trained_family", lambda *args: pytest.fail("the reward model trained again"))
    resumed = gl.load(text_run).finetune(pairs, out=tmp_path / "broken", resume=True, **options)
    assert resumed.record["adapter"]["history"] == unbroken.record["adapter"]["history"]
