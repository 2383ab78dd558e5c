"""The molecule VAE's networks: the encoder reads only the tokens (not a property slot after them), and every
position the decoder writes depends on the code."""
import torch

from genloom.data.molecule_layout import MoleculeLayout
from genloom.nets import build_backbone


def test_the_encoder_reads_the_tokens_and_not_the_property_slot():
    torch.manual_seed(0)
    layout = MoleculeLayout((11,), vocab_size=7, property_position=10)
    encoder = build_backbone("encoder", layout, 6, width=4)
    x = torch.cat([torch.randint(0, 7, (3, 10)).float(), torch.zeros(3, 1)], dim=1)
    code = encoder(x)
    assert code.shape == (3, 6)
    slot_changed, token_changed = x.clone(), x.clone()
    slot_changed[:, 10] = 0.9
    token_changed[:, 4] = (token_changed[:, 4] + 1) % 7
    torch.testing.assert_close(encoder(slot_changed), code)
    assert not torch.allclose(encoder(token_changed), code)


def test_every_position_the_decoder_writes_depends_on_the_code():
    torch.manual_seed(0)
    decoder = build_backbone("decoder", MoleculeLayout((12,), vocab_size=7), 5, width=4)
    z = torch.randn(2, 5, requires_grad=True)
    logits = decoder(z)
    assert logits.shape == (2, 12, 7)
    for position in (0, 6, 11):
        gradient, = torch.autograd.grad(logits[0, position].sum(), z, retain_graph=True)
        assert gradient[0].abs().sum() > 0 and gradient[1].abs().sum() == 0  # its own code only
