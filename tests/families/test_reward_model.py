"""The reward model: untrained it cannot tell a pair apart (loss log 2), a few steps teach it the pairs, and it
reads a sequence up to its response's last token, not the padding after it."""
import math

import pytest
import torch

import genloom as gl
from genloom.families.preference import PreferenceTuning
from genloom.families.reward_model import RewardModel
from genloom.nets.lora import add_lora

PAIRS = [("ROMEO:", " I love thee", " qxz zqx"), ("JULIET:", " O Romeo", " xqz qq"), ("KING:", " My lord", " zzq xx")]


def test_the_reward_model_learns_the_pairs_from_an_even_start(text_run):
    torch.manual_seed(0)
    model = gl.load(text_run)
    trunk = model.ema_net
    add_lora(trunk, 4, 8.0)
    rewards = RewardModel(trunk)
    x = PreferenceTuning.encode_pairs([(*model.codec.preference_example(prompt, chosen),
                                        *model.codec.preference_example(prompt, rejected))
                                       for prompt, chosen, rejected in PAIRS])
    assert rewards.evaluate(x, None)["reward_model_loss"] == pytest.approx(math.log(2), abs=1e-6)
    optimizer = torch.optim.Adam([p for p in rewards.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(30):
        _, loss, _ = next(rewards.losses(x, None))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    scores = rewards.evaluate(x, None)
    assert scores["preference_accuracy"] == 1 and scores["reward_model_loss"] < 0.1

    ids, mask = x[:, 0, 0], x[:, 0, 1]  # chosen responses, padded to the longest of all six
    changed = ids.clone()
    changed[mask == 0] = 5  # the prompt and the padding changed
    last = (mask * torch.arange(mask.shape[1])).argmax(1)
    prompt_kept = torch.where(torch.arange(ids.shape[1]) <= last[:, None], ids, changed)
    torch.testing.assert_close(rewards.score(prompt_kept, mask), rewards.score(ids, mask))
    assert not torch.allclose(rewards.score(changed, mask), rewards.score(ids, mask))
