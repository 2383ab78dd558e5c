import pytest
import torch

from genloom.data.text_layout import TextLayout
from genloom.errors import GenloomError
from genloom.nets import build_backbone
from genloom.nets.lora import add_lora
from genloom.nets.token_decoder import TokenDecoder, gelu

LAYOUT = TextLayout((), vocab_size=50)


def _net(**options):
    torch.manual_seed(0)
    net = build_backbone("causal", LAYOUT, n_layer=2, n_head=4, n_embd=32, block_size=16, **options).eval()
    with torch.no_grad():  # biases and LayerNorm shifts away from their zero start, so that a missed one shows
        for name, param in net.named_parameters():
            if name.endswith("bias") or "ln" in name:
                param.add_(torch.randn_like(param) * 0.3)
    return net


@pytest.mark.parametrize("options", [
    {"rope": True, "bias": False, "gelu": "tanh"},   # genloom's text default
    {"rope": False, "bias": True, "gelu": "tanh"},   # GPT-2's layout
    {"rope": False, "bias": False, "gelu": "none"},
])
def test_one_token_gives_the_forward_logits_and_writes_the_same_cache(options):
    net = _net(**options)
    ids = torch.randint(50, (3, 9))
    with torch.no_grad():
        through_modules, decoded = net.new_cache(3), net.new_cache(3)
        net(ids[:, :5], through_modules)
        net(ids[:, :5], decoded)
        decoder = TokenDecoder(net)
        for t in range(5, 9):
            wanted = net(ids[:, t:t + 1], through_modules)[:, -1]
            assert torch.allclose(decoder(ids[:, t], decoded), wanted, atol=1e-5)
        assert decoded.length == through_modules.length == 9
        for mine, theirs in zip(decoded.keys + decoded.values, through_modules.keys + through_modules.values):
            assert torch.allclose(mine[:, :, :9], theirs[:, :, :9], atol=1e-5)


@pytest.mark.parametrize("rope", [False, True])
def test_a_lora_adapter_is_applied(rope):
    net = _net(rope=rope)
    add_lora(net, rank=2, alpha=4.0)
    ids = torch.randint(50, (2, 6))
    with torch.no_grad():
        for name, param in net.named_parameters():
            if name.endswith("lora_b"):  # B starts at zero: give the update something to do
                param.copy_(torch.randn_like(param) * 0.5)
        cache = net.new_cache(2)
        net(ids[:, :5], cache)
        decoded = TokenDecoder(net)(ids[:, 5], cache)
    assert torch.allclose(decoded, net(ids)[:, -1], atol=1e-5)
    assert not torch.allclose(decoded, _net(rope=rope)(ids)[:, -1], atol=1e-2)  # the adapter changed the logits


@pytest.mark.parametrize("rope", [False, True])
def test_right_aligned_rows_keep_their_own_positions_and_tokens(rope):
    """Rows behind 3, 0 and 1 filler slots: each row's next logits are those of the row alone."""
    net = _net(rope=rope)
    lengths, padding = [2, 5, 4], torch.tensor([3, 0, 1])
    rows = [torch.randint(50, (length + 1,)) for length in lengths]
    prompts = torch.stack([torch.cat([torch.zeros(pad, dtype=torch.long), row[:-1]])
                           for row, pad in zip(rows, padding.tolist())])
    last = torch.stack([row[-1] for row in rows])
    with torch.no_grad():
        cache, through_modules = net.new_cache(3, padding), net.new_cache(3, padding)
        net(prompts, cache)
        net(prompts, through_modules)
        logits = TokenDecoder(net)(last, cache)
        net(last[:, None], through_modules)
        for row, tokens in enumerate(rows):
            assert torch.allclose(logits[row], net(tokens[None])[0, -1], atol=1e-5)
    for mine, theirs in zip(cache.keys + cache.values, through_modules.keys + through_modules.values):
        assert torch.allclose(mine[:, :, :6], theirs[:, :, :6], atol=1e-5)


def test_a_full_context_is_refused():
    net = _net()
    with torch.no_grad():
        cache = net.new_cache(1)
        net(torch.zeros(1, 16, dtype=torch.long), cache)
        with pytest.raises(GenloomError, match="17 tokens exceed the model's context of 16"):
            TokenDecoder(net)(torch.zeros(1, dtype=torch.long), cache)


def test_it_stands_aside_while_dropout_is_drawn():
    assert TokenDecoder.applies_to(_net(dropout=0.1))  # eval mode: no dropout
    assert not TokenDecoder.applies_to(_net(dropout=0.1).train())
    assert TokenDecoder.applies_to(_net().train())  # training without dropout: the same arithmetic


def test_the_tanh_gelu_is_torchs_to_float_rounding():
    x = torch.linspace(-12, 12, 10_001)
    assert torch.allclose(gelu(x, "tanh"), torch.nn.functional.gelu(x, approximate="tanh"), atol=2e-6)
