"""The token likelihood a molecule VAE decodes with: each position's categorical, the property slot left out, the
likeliest tokens as the mean and draws that follow the probabilities."""
import pytest
import torch
import torch.nn.functional as F

import genloom as gl
from genloom.data.molecule_layout import MoleculeLayout


def test_token_log_likelihood_is_the_sum_of_each_positions_log_softmax_and_ignores_the_property_slot():
    reconstruction = MoleculeLayout((4,), vocab_size=5, property_position=3).reconstruction()
    logits = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))
    x = torch.tensor([[1.0, 4.0, 0.0, 0.7], [2.0, 2.0, 3.0, -0.2]])
    expected = F.log_softmax(logits, -1).gather(2, x[:, :3].long()[..., None]).squeeze(2).sum(1)
    torch.testing.assert_close(reconstruction.log_prob(x, logits, torch.zeros(1)), expected)
    changed = x.clone()
    changed[:, 3] = 5.0
    torch.testing.assert_close(reconstruction.log_prob(changed, logits, torch.zeros(1)), expected)


def test_the_mean_is_the_likeliest_token_and_draws_follow_the_probabilities():
    reconstruction = MoleculeLayout((3,), vocab_size=4, property_position=2).reconstruction()
    logits = torch.log(torch.tensor([[[0.1, 0.7, 0.1, 0.1], [0.05, 0.05, 0.1, 0.8]]])).expand(4000, -1, -1)
    assert reconstruction.mean(logits[:1]).tolist() == [[1.0, 3.0, 0.0]]  # an empty slot for the property
    drawn = reconstruction.sample(logits, torch.Generator().manual_seed(0))
    assert (drawn[:, 0] == 1).float().mean().item() == pytest.approx(0.7, abs=0.03)
    assert (drawn[:, 1] == 3).float().mean().item() == pytest.approx(0.8, abs=0.03)
    assert not reconstruction.adversarial
    with pytest.raises(gl.GenloomError, match="tokens are not a generator's output"):
        reconstruction.activate(logits)
    assert MoleculeLayout((3,), vocab_size=4).length == 3
    assert MoleculeLayout((3,), vocab_size=4, property_position=2).length == 2
