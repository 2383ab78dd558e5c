import pytest
import torch

from genloom.data.image_layout import ImageLayout
from genloom.data.signal_layout import SignalLayout
from genloom.layout import Layout
from genloom.errors import GenloomError
from genloom.nets import build_backbone
from genloom.nets.conv import halvings


@pytest.mark.parametrize("layout", [ImageLayout((1, 8, 8)), ImageLayout((3, 28, 28)), ImageLayout((3, 32, 48)),
                                    ImageLayout((1, 7, 9)), SignalLayout((1, 5120)), SignalLayout((1, 100)),
                                    SignalLayout((1, 40, 32))])
def test_encoder_decoder_shapes(layout):
    shape = layout.shape
    encoder = build_backbone("encoder", layout, 10, width=8)
    decoder = build_backbone("decoder", layout, 6, width=8, cond_dim=3)
    assert encoder(torch.zeros(2, *shape)).shape == (2, 10)
    assert decoder(torch.zeros(2, 6), torch.zeros(2, 3)).shape == (2, *shape)


def test_halvings_stop_at_odd_or_small_sides():
    assert halvings(8, 8) == 1 and halvings(28, 28) == 2 and halvings(32, 32) == 3 and halvings(7, 7) == 0


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(GenloomError, match="no encoder network for graph data"):
        build_backbone("encoder", Layout("graph", (5,)), 4)


@pytest.mark.parametrize("shape", [(1, 5120), (1, 40, 32)])
def test_signals_get_one_or_two_dimensional_convolutions_by_their_shape(shape):
    encoder = build_backbone("encoder", SignalLayout(shape), 10, width=8)
    convolutions = [m for m in encoder.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))]
    assert all(isinstance(m, torch.nn.Conv1d if len(shape) == 2 else torch.nn.Conv2d) for m in convolutions)


def test_a_waveform_halves_down_to_eight_samples_six_times_at_most():
    assert halvings(5120, smallest=8) == 9 and halvings(100, smallest=8) == 2
    encoder = build_backbone("encoder", SignalLayout((1, 5120)), 4, width=8)
    assert encoder.head[0].in_features == 256 * 80  # 5,120 halved six times, at the widest channels
