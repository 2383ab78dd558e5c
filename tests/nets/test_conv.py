import pytest
import torch

from genloom.data.image_layout import ImageLayout
from genloom.layout import Layout
from genloom.errors import GenloomError
from genloom.nets import build_backbone
from genloom.nets.conv import halvings


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 28, 28), (3, 32, 48), (1, 7, 9)])
def test_encoder_decoder_shapes(shape):
    layout = ImageLayout(shape)
    encoder = build_backbone("encoder", layout, 10, width=8)
    decoder = build_backbone("decoder", layout, 6, width=8, cond_dim=3)
    assert encoder(torch.zeros(2, *shape)).shape == (2, 10)
    assert decoder(torch.zeros(2, 6), torch.zeros(2, 3)).shape == (2, *shape)


def test_halvings_stop_at_odd_or_small_sides():
    assert halvings(8, 8) == 1 and halvings(28, 28) == 2 and halvings(32, 32) == 3 and halvings(7, 7) == 0


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(GenloomError, match="no encoder network for graph data"):
        build_backbone("encoder", Layout("graph", (5,)), 4)
