import pytest
import torch

from genloom.errors import GenloomError
from genloom.data.text_layout import TextLayout
from genloom.nets import build_backbone

LAYOUT = TextLayout((), vocab_size=50)


def _net(**options):
    torch.manual_seed(0)
    return build_backbone("causal", LAYOUT, n_layer=2, n_head=4, n_embd=32, block_size=16, **options).eval()


@pytest.mark.parametrize("rope", [False, True])
def test_kv_cache_gives_the_full_forward_logits(rope):
    net = _net(rope=rope)
    ids = torch.randint(50, (2, 12))
    with torch.no_grad():
        full = net(ids)
        cache = net.new_cache(2)
        steps = [net(ids[:, :5], cache)]                   # prefill
        for t in range(5, 12):
            steps.append(net(ids[:, t:t + 1], cache))      # one token at a time
        other = net.new_cache(2)
        net(ids[:, :9], other)
        two = net(ids[:, 9:12], other)                     # several new tokens against a cache
    assert cache.length == 12 and other.length == 12
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)
    assert torch.allclose(two, full[:, 9:12], atol=1e-5)


@pytest.mark.parametrize("rope", [False, True])
def test_rows_right_aligned_in_one_cache_give_their_own_logits(rope):
    """Sequences of 3, 7 and 5 tokens behind 4, 0 and 2 filler slots: each row's logits, prefilled and then a
    token at a time (several tokens at once as well), are those of the row alone."""
    net = _net(rope=rope)
    lengths, longest = [3, 7, 5], 7
    rows = [torch.randint(50, (length + 4,)) for length in lengths]  # 4 more tokens each, fed after the prompt
    padding = torch.tensor([longest - length for length in lengths])
    filler = torch.randint(50, (1,))  # whatever the filler, it is never seen
    prompts = torch.stack([torch.cat([filler.expand(pad), row[:length]])
                           for row, length, pad in zip(rows, lengths, padding.tolist())])
    following = torch.stack([row[length:] for row, length in zip(rows, lengths)])
    with torch.no_grad():
        alone = [net(row[None])[0] for row in rows]
        cache = net.new_cache(3, padding)
        steps = [net(prompts, cache)[:, -1:]] + [net(following[:, t:t + 1], cache) for t in range(3)]
        several = net.new_cache(3, padding)
        net(prompts, several)
        together = net(following[:, :3], several)
    for row, length in enumerate(lengths):
        wanted = alone[row][length - 1:length + 3]
        assert torch.allclose(torch.cat(steps, dim=1)[row], wanted, atol=1e-5)
        assert torch.allclose(together[row], wanted[1:], atol=1e-5)


def test_attention_is_causal():
    net = _net()
    ids = torch.randint(50, (1, 10))
    changed = ids.clone()
    changed[0, 7] = (ids[0, 7] + 1) % 50
    with torch.no_grad():
        a, b = net(ids), net(changed)
    assert torch.allclose(a[:, :7], b[:, :7]) and not torch.allclose(a[:, 7:], b[:, 7:])


def test_embeddings_are_tied_and_residuals_scaled():
    net = _net()
    assert net.lm_head.weight is net.wte.weight
    std = net.h[0].attn.c_proj.weight.std().item()
    assert 0.5 * 0.02 / 2 < std < 1.5 * 0.02 / 2  # 0.02 / sqrt(2 * n_layer)


def test_context_limit():
    with pytest.raises(GenloomError, match="17 tokens exceed the model's context of 16"):
        _net()(torch.zeros(1, 17, dtype=torch.long))


def test_a_full_cache_is_refused():
    net = _net()
    cache = net.new_cache(1)
    with torch.no_grad():
        net(torch.zeros(1, 16, dtype=torch.long), cache)
        with pytest.raises(GenloomError, match="17 tokens exceed the model's context of 16"):
            net(torch.zeros(1, 1, dtype=torch.long), cache)


def test_rotary_embeddings_equal_transformers_rotate_half():
    """RoPE in the rotate-half layout (GPT-NeoX, Llama), against transformers' own apply_rotary_pos_emb."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    from genloom.nets.transformer import apply_rotary, rotary_tables

    length, head_dim = 12, 16
    q, k = torch.randn(2, 4, length, head_dim), torch.randn(2, 4, length, head_dim)
    cos, signed_sin = rotary_tables(length, head_dim)
    inverse_frequency = 1.0 / 10000 ** (torch.arange(0, head_dim, 2).float() / head_dim)
    angles = torch.outer(torch.arange(length).float(), inverse_frequency)
    angles = torch.cat([angles, angles], dim=-1)
    theirs_q, theirs_k = apply_rotary_pos_emb(q, k, angles.cos()[None], angles.sin()[None])
    torch.testing.assert_close(apply_rotary(q, cos, signed_sin), theirs_q)
    torch.testing.assert_close(apply_rotary(k, cos, signed_sin), theirs_k)
