"""The molecule VAE's networks: the encoder reads only the tokens (not a property slot after them), every
position the parallel decoder writes depends on the code, and the autoregressive decoder reads only the tokens
before each position, generates what its teacher-forced pass predicts, and masks what it reads only in training."""
import pytest
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


def _reading_decoder(word_dropout=0.0):
    torch.manual_seed(0)
    return build_backbone("autoregressive decoder", MoleculeLayout((9,), vocab_size=6), 4, width=4,
                          word_dropout=word_dropout).eval()


def test_each_position_the_autoregressive_decoder_writes_reads_only_the_tokens_before_it_and_the_code():
    decoder = _reading_decoder()
    z, tokens = torch.randn(2, 4), torch.randint(0, 6, (2, 9))
    logits = decoder(z, None, tokens.float())
    assert logits.shape == (2, 9, 6)
    changed = tokens.clone()
    changed[:, 4] = (changed[:, 4] + 1) % 6
    moved = decoder(z, None, changed.float())
    torch.testing.assert_close(moved[:, :5], logits[:, :5])  # positions up to 4 have not read token 4
    assert not torch.allclose(moved[:, 5:], logits[:, 5:])  # those after it have
    other_code = decoder(z + 1, None, tokens.float())
    assert not torch.allclose(other_code[:, 0], logits[:, 0])  # the first position from the code alone


@pytest.mark.parametrize("seed", [None, 3])
def test_generated_tokens_are_those_the_teacher_forced_pass_predicts(seed):
    """Greedy generation picks each position's argmax of the teacher-forced logits over its own output; a drawn
    sequence is the same draw from those logits, so the stepwise and whole-sequence passes agree."""
    decoder = _reading_decoder()
    z = torch.randn(5, 4)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    drawn = []

    def pick(logits):
        drawn.append(logits)
        if generator is None:
            return logits.argmax(-1)
        return torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]

    tokens = decoder.generate(z, None, pick)
    assert tokens.shape == (5, 9)
    whole = decoder(z, None, tokens.float())
    whole[:, 0, 0] = float("-inf")  # generating, a molecule never ends before its first token
    torch.testing.assert_close(torch.stack(drawn, dim=1), whole, atol=1e-5, rtol=1e-4)
    if generator is None:
        assert torch.equal(whole.argmax(-1), tokens)


def test_word_dropout_masks_what_the_decoder_reads_in_training_only():
    decoder = _reading_decoder(word_dropout=0.999)
    z, tokens = torch.randn(3, 4), torch.randint(0, 6, (3, 9)).float()
    other = (tokens + 1) % 6
    evaluated = decoder(z, None, tokens)
    assert not torch.allclose(decoder(z, None, other), evaluated)  # in evaluation it reads the tokens
    decoder.train()
    torch.manual_seed(1)
    masked = decoder(z, None, tokens)
    torch.manual_seed(1)
    torch.testing.assert_close(decoder(z, None, other), masked)  # in training it reads the mask instead
    assert not torch.allclose(masked, evaluated)


def test_a_generated_molecule_never_ends_before_its_first_token():
    decoder = _reading_decoder()
    with torch.no_grad():
        decoder.out.bias[0] = 50.0  # the end token far likelier than any other everywhere
    tokens = decoder.generate(torch.randn(8, 4), None, lambda logits: logits.argmax(-1))
    assert (tokens[:, 0] != 0).all() and (tokens[:, 1:] == 0).all()
