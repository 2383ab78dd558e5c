"""PPO's pieces: GAE against a hand computation, a first round where the policy is its reference (ratio 1, no KL),
and updates on a fixed batch that make the rewarded sequence likelier than the penalised one."""
import pytest
import torch

import genloom as gl
from genloom.families.configs import PPOSettings
from genloom.families.ppo import PPOObjective, generalised_advantages
from genloom.nets.lora import add_lora


def test_advantages_with_lambda_one_are_the_return_less_the_value_and_with_zero_the_td_error():
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])   # the last position is padding: zero reward, zero value
    values = torch.tensor([[0.5, 0.2, 0.1, 0.0]])
    torch.testing.assert_close(generalised_advantages(rewards, values, 1.0), torch.tensor([[0.5, 0.8, 0.9, 0.0]]))
    torch.testing.assert_close(generalised_advantages(rewards, values, 0.0),
                               torch.tensor([[0.2 - 0.5, 0.1 - 0.2, 1.0 - 0.1, 0.0]]))
    halfway = generalised_advantages(rewards, values, 0.5)  # delta = (-0.3, -0.1, 0.9): A_1 = -0.1 + 0.45
    torch.testing.assert_close(halfway, torch.tensor([[-0.3 + 0.5 * 0.35, 0.35, 0.9, 0.0]]))


def _objective(run, **settings):
    torch.manual_seed(0)
    policy = gl.load(run).ema_net
    add_lora(policy, 4, 8.0)
    return PPOObjective(policy, PPOSettings(**settings)).eval()


def _drawn(model, prompt, responses):
    """Sequences of a prompt and responses of one length, with their response masks."""
    examples = [model.codec.preference_example(prompt, response) for response in responses]
    return torch.stack([ids for ids, _ in examples]), torch.stack([mask for _, mask in examples])


def test_the_first_round_has_no_kl_and_a_ratio_of_one(text_run):
    objective = _objective(text_run)
    ids, response = _drawn(gl.load(text_run), "ROMEO:", [" I love thee", " qxz zqx kqz"])
    rollouts = objective.rollouts(ids, response, torch.tensor([1.0, -1.0]))
    assert rollouts.kl.abs().max() < 1e-5 and rollouts.mask.sum() == response.sum()
    assert (rollouts.values == 0).all()  # the value head starts at zero
    assert rollouts.advantages[0][rollouts.mask[0] > 0].mean() > 0 > rollouts.advantages[1][rollouts.mask[1] > 0].mean()
    _, numbers = objective.loss(rollouts)
    assert numbers["clip_fraction"] == 0


def test_updates_make_the_rewarded_sequence_likelier_and_move_away_from_the_reference(text_run):
    objective = _objective(text_run, clip_range=0.2)
    ids, response = _drawn(gl.load(text_run), "ROMEO:", [" I love thee", " qxz zqx kqz"])
    before = objective.policy.sequence_log_prob(ids, response).detach()
    rollouts = objective.rollouts(ids, response, torch.tensor([1.0, -1.0]))
    trainable = [p for p in objective.parameters() if p.requires_grad]
    assert trainable and all("lora" in name or name.startswith("value_head")
                             for name, p in objective.named_parameters() if p.requires_grad)
    optimizer = torch.optim.Adam(trainable, lr=1e-2)
    clipped = []
    for _ in range(20):
        loss, numbers = objective.loss(rollouts)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        clipped.append(numbers["clip_fraction"])
    after = objective.policy.sequence_log_prob(ids, response).detach()
    assert after[0] > before[0] and after[1] < before[1]
    assert max(clipped) > 0  # the ratio reached the clip range: the surrogate stops pushing there
    assert objective.rollouts(ids, response, torch.tensor([1.0, -1.0])).kl.abs().max() > 0.01
    reference = gl.load(text_run).ema_net  # the reference did not move
    torch.testing.assert_close(objective.reference.sequence_log_prob(ids, response),
                               reference.sequence_log_prob(ids, response), atol=1e-5, rtol=0)
    with pytest.raises(gl.GenloomError, match="clip_range must be"):
        PPOSettings(clip_range=0)
