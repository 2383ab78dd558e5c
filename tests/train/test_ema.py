import torch
from torch import nn

from genloom.train.ema import EMA


def _shifted(module: nn.Module) -> None:
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(1.0)


def test_trained_weights_are_averaged_and_frozen_ones_copied():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    ema = EMA(module, decay=0.3)
    for _ in range(5):
        ema.update(module)  # ramped decay min(0.3, (1 + n) / (10 + n)) = 0.3 from here on
    _shifted(module)
    module[1].requires_grad_(False)  # finished: a latent family's autoencoder after its stage
    before = [p.clone() for p in ema.module.parameters()]
    ema.update(module)
    pairs = list(zip(before, ema.module.parameters(), module.parameters()))
    for old, average, current in pairs[:2]:
        torch.testing.assert_close(average, 0.3 * old + 0.7 * current)
    for _, average, current in pairs[2:]:
        assert torch.equal(average, current)


def test_a_weight_that_starts_training_late_ramps_its_own_decay():
    """A prior that starts halfway through a run: its average follows it at once, not after 1,000 steps."""
    torch.manual_seed(0)
    module = nn.Linear(3, 3)
    ema = EMA(module, decay=0.999)
    module.requires_grad_(False)
    for _ in range(500):
        ema.update(module)  # waiting for its stage: copied
    module.requires_grad_(True)
    _shifted(module)
    ema.update(module)  # its first trained update: decay (1 + 1) / (10 + 1), not 0.999
    assert ema.updates.tolist() == [1, 1]
    torch.testing.assert_close(ema.module.weight, module.weight - 1 + 9 / 11)
