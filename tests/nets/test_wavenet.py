import pytest
import torch

from genloom.data.signal_layout import SignalLayout
from genloom.errors import GenloomError
from genloom.nets import build_backbone
from genloom.nets.wavenet import WaveNet

TOKENS = SignalLayout((1, 64), 2, vocab_size=260, start_token=259)


def _wavenet(layers=3, cycles=1, block_size=64) -> WaveNet:
    torch.manual_seed(0)
    return build_backbone("dilated causal", TOKENS, layers=layers, cycles=cycles, channels=16,
                          block_size=block_size).eval()


def _tokens(length=40, seed=1) -> torch.Tensor:
    return torch.randint(256, (2, length), generator=torch.Generator().manual_seed(seed))


def test_the_receptive_field_reaches_back_as_far_as_the_dilations_sum():
    """Dilations 1, 2, 4: position t sees tokens t-7..t (and the first token, the global condition), nothing
    later and nothing earlier."""
    net = _wavenet()
    assert net.receptive_field == 8
    tokens = _tokens()
    changed = tokens.clone()
    changed[:, 10] = (changed[:, 10] + 1) % 256
    with torch.no_grad():
        moved = (net(tokens) - net(changed)).abs().amax(dim=(0, 2)) > 1e-6
    assert moved.nonzero().flatten().tolist() == list(range(10, 18))


def test_the_first_token_conditions_every_position():
    net = _wavenet()
    tokens = _tokens()
    other = tokens.clone()
    other[:, 0] = 258  # the other class's token
    with torch.no_grad():
        assert (net(tokens)[:, -1] - net(other)[:, -1]).abs().max() > 1e-4


def test_sampling_through_the_rings_computes_what_the_whole_pass_does():
    net = _wavenet(layers=4, cycles=2)
    tokens = _tokens(length=50)
    cache = net.new_cache(2)
    with torch.no_grad():
        stepped = torch.cat([net(tokens[:, :3], cache), *[net(tokens[:, t:t + 1], cache) for t in range(3, 50)]],
                            dim=1)
        torch.testing.assert_close(stepped, net(tokens), rtol=1e-4, atol=1e-5)
    assert cache.length == 50


def test_without_a_layer_count_the_dilations_fill_the_sequence_up_to_ten_layers():
    assert _wavenet(layers=None, cycles=1, block_size=64).receptive_field == 64  # dilations 1..32
    assert _wavenet(layers=None, cycles=2, block_size=64).receptive_field == 63  # twice 1..16
    assert _wavenet(layers=None, cycles=1, block_size=5000).receptive_field == 1024  # 1..512


def test_a_sequence_shorter_than_the_receptive_field_is_refused():
    with pytest.raises(GenloomError, match="a sequence of 64 tokens is shorter than WaveNet's receptive field of "
                                           "128 .* lower --wavenet-layers"):
        _wavenet(layers=7)
