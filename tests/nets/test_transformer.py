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


def test_a_row_added_with_a_longer_window_moves_the_others_and_leaves_no_unwritten_memory_in_view():
    """A row joins holding 6 tokens beside rows holding 2 and 1: the others move right (their tokens kept), and
    the slots no row holds, never written before, read zero whatever the memory held (NaN here): hidden slots
    still enter attention's sums, where NaN times a zero weight is NaN. Rows then leave; each row's next logits
    stay those it has alone."""
    net = _net(rope=True)
    rows = [torch.randint(50, (length,)) for length in (3, 2, 7)]  # each row's window and its next token
    cache = net.new_cache(2, torch.tensor([0, 1]))
    for held in cache.keys + cache.values:
        held.fill_(float("nan"))
    with torch.no_grad():
        net(torch.stack([rows[0][:2], torch.cat([rows[1][:1], rows[1][:1]])]), cache)
        joined = net.new_cache(1)
        net(rows[2][None, :6], joined)
        cache.add_rows(1)
        cache.restart_rows(torch.tensor([False, False, True]), joined, torch.tensor([2, 1, 6]))
        assert cache.length == 6 and cache.padding.tolist() == [4, 5, 0]
        assert not any(held[:, :, :6].isnan().any() for held in cache.keys + cache.values)
        logits = net(torch.stack([row[-1:] for row in rows]), cache)[:, -1]
        alone = [net(row[None])[0, -1] for row in rows]
        assert all(torch.allclose(logits[row], alone[row], atol=1e-5) for row in range(3))
        cache.keep_rows(torch.tensor([True, False, False]))
        cache.hold(torch.tensor([3]))
        assert cache.length == 3 and cache.padding is None
        assert torch.allclose(net(torch.tensor([[7]]), cache)[0, -1],
                              net(torch.cat([rows[0], torch.tensor([7])])[None])[0, -1], atol=1e-5)


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
