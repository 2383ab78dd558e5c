"""Drawing samples in batches, each from its own CPU generator, in shards; labels and latent codes checked first."""
import numpy as np
import pytest
import torch

import genloom as gl
from genloom.data.image_layout import ImageLayout
from genloom.families import drawing
from genloom.families.configs import VAEConfig
from genloom.families.drawing import check_memory, check_shard, draw, label_tensor, latent_tensor, shard_rows
from genloom.families.vae import VAE


def _vae(conditional=False):
    torch.manual_seed(0)
    return VAE(ImageLayout((1, 8, 8), 10), VAEConfig(latent_dim=3, width=4, conditional=conditional))


def test_each_batch_has_its_own_generator_so_any_part_can_be_drawn_alone(monkeypatch):
    vae, passes = _vae(), []
    monkeypatch.setattr(drawing, "SAMPLE_BATCH", 4)
    batched = draw(vae, 12, 1, on_pass=lambda: passes.append(1))
    assert len(passes) == 3 and batched.shape == (12, 1, 8, 8)
    assert torch.equal(batched, draw(vae, 12, 1))  # a seed, the same samples
    assert not torch.equal(batched[:4], batched[4:8])  # each batch draws anew: not the same noise again
    assert torch.equal(batched[:4], vae.sample(4, None, torch.Generator().manual_seed(1), None, (), lambda: None))
    assert torch.equal(draw(vae, 8, 1, first=4), batched[4:])  # the later part alone: what a shard draws
    assert not torch.equal(draw(vae, 12, 2), batched)


@pytest.mark.parametrize("n, count", [(1, 3), (12, 2), (13, 3), (40, 7), (5, 5)])
def test_shards_split_the_samples_into_whole_batches_that_cover_them_once(monkeypatch, n, count):
    monkeypatch.setattr(drawing, "SAMPLE_BATCH", 4)
    parts = [shard_rows(n, (index, count)) for index in range(count)]
    assert [i for part in parts for i in part] == list(range(n))
    assert all(part.start % 4 == 0 for part in parts if len(part))
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 4 * (1 + (n % 4 != 0))  # as even as whole batches allow
    assert shard_rows(n, None) == range(n)


@pytest.mark.parametrize("shard", [(2, 2), (-1, 2), (0, 0), (0.5, 2), "0/2", (1,), None])
def test_a_shard_is_the_ith_of_k_counted_from_zero(shard):
    if shard is None:
        assert check_shard(None) is None
        return
    with pytest.raises(gl.GenloomError, match=r"shard must be \(i, k\) with k >= 1 and i from 0 to k-1 .* "
                                              r"\(CLI: --shard I/K, e.g. 0/4\)"):
        check_shard(shard)
    assert check_shard((1, 2)) == (1, 2)


def test_labels_are_one_for_all_or_one_each_and_only_for_a_conditional_family():
    assert label_tensor(_vae(True), np.array([3]), 4).tolist() == [3, 3, 3, 3]
    assert label_tensor(_vae(True), np.array([1, 2]), 2).tolist() == [1, 2]
    with pytest.raises(gl.GenloomError, match="3 labels for 2 examples; give one label, or one per example"):
        label_tensor(_vae(True), np.array([1, 2, 3]), 2)
    with pytest.raises(gl.GenloomError, match="this vae is not conditional, so it cannot take labels"):
        label_tensor(_vae(), np.array([1]), 2)


@pytest.mark.parametrize("latents, got", [(np.zeros((2, 4)), r"\(2, 4\)"), (np.zeros(3), r"\(3,\)"),
                                          ([["a", "b", "c"]], "list"), (np.full((1, 3), np.nan), r"\(1, 3\)")])
def test_latent_codes_must_fit_the_latent_space(latents, got):
    with pytest.raises(gl.GenloomError, match=f"latent codes must be finite numbers of shape \\(N, 3\\); got {got}"):
        latent_tensor(latents, (3,))
    assert latent_tensor([[1, 2, 3]], (3,)).dtype == torch.float32
    assert latent_tensor(np.zeros((2, 1, 4, 4)), (1, 4, 4)).shape == (2, 1, 4, 4)  # a diffusion model's noise
    with pytest.raises(gl.GenloomError, match=r"shape \(N, 1, 4, 4\); got \(2, 16\)"):
        latent_tensor(np.zeros((2, 16)), (1, 4, 4))


def test_samples_that_do_not_fit_in_memory_are_refused_with_their_size(monkeypatch):
    monkeypatch.setattr(drawing, "free_memory", lambda: 2e9)
    check_memory(_vae(), 1000, "write them to a file")
    with pytest.raises(gl.GenloomError, match=r"1,000,000,000 samples would take about 1,024.0 GB of memory and "
                                              "2.0 GB are free; ask for fewer, or write them to a file"):
        check_memory(_vae(), 10**9, "write them to a file")
