"""DPO: the loss of a policy equal to its reference is log 2, a few steps on the adapters make the chosen
responses likelier against the rejected ones, and the sequence likelihood it weighs is the model's own."""
import math

import numpy as np
import pytest
import torch

import genloom as gl
from genloom.families.preference import PreferenceTuning
from genloom.nets.lora import add_lora


def _pairs(model, pairs):
    return PreferenceTuning.encode_pairs([(*model.codec.preference_example(prompt, chosen),
                                           *model.codec.preference_example(prompt, rejected))
                                          for prompt, chosen, rejected in pairs])


PAIRS = [("ROMEO:", " I love thee", " qxz zqx"), ("JULIET:", " O Romeo", " xqz qq"), ("KING:", " My lord", " zzq xx")]


def test_the_likelihood_dpo_weighs_is_the_models_own(text_run, molecule_run):
    text = gl.load(text_run)
    ids, mask = text.codec.preference_example("", "To be, or not")
    ours = text.ema_net.sequence_log_prob(ids[None], mask[None])
    assert ours.item() == pytest.approx(text.log_prob(["To be, or not"])[0], abs=1e-4)
    molecules = gl.load(molecule_run)
    ids, mask = molecules.codec.preference_example("", "CCOc1ccccc1")
    assert molecules.ema_net.sequence_log_prob(ids[None], mask[None]).item() == pytest.approx(
        molecules.log_prob(["CCOc1ccccc1"])[0], abs=1e-4)


def test_the_prompt_is_given_and_only_the_response_is_weighed(text_run):
    model = gl.load(text_run)
    ids, mask = model.codec.preference_example("ROMEO:", " I love")
    assert ids[0] == model.codec.layout.start_token and mask.tolist() == [0] * 7 + [1] * 7
    x = _pairs(model, PAIRS)
    assert x.shape == (3, 2, 2, 1 + 6 + 12) and (x[1, :, 1].sum(1) == torch.tensor([8, 7])).all()
    with pytest.raises(gl.GenloomError, match="an empty response after the prompt 'ROMEO:'"):
        model.codec.preference_example("ROMEO:", "")


def test_dpo_starts_at_log_two_and_its_steps_prefer_the_chosen(text_run):
    torch.manual_seed(0)
    policy = gl.load(text_run).ema_net
    add_lora(policy, 4, 8.0)
    objective = PreferenceTuning(policy, beta=0.1)
    x = _pairs(gl.load(text_run), PAIRS)
    first = objective.evaluate(x, None)
    assert first["dpo_loss"] == pytest.approx(math.log(2), abs=1e-6) and first["reward_margin"] == 0
    trainable = [p for p in objective.parameters() if p.requires_grad]
    assert trainable and all("lora" in name for name, p in objective.named_parameters() if p.requires_grad)
    optimizer = torch.optim.Adam(trainable, lr=1e-2)
    for _ in range(15):
        _, loss, _ = next(objective.losses(x, None))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    last = objective.evaluate(x, None)
    assert last["dpo_loss"] < 0.5 * math.log(2) and last["preference_accuracy"] == 1 and last["reward_margin"] > 0
    reference = gl.load(text_run).ema_net  # the reference did not move
    ids, mask = x[:, 0, 0], x[:, 0, 1]
    np.testing.assert_allclose(objective.reference.sequence_log_prob(ids, mask).detach(),
                               reference.sequence_log_prob(ids, mask).detach(), atol=1e-5)
