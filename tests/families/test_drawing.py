"""Drawing samples in batches, each from its own CPU generator, in shards; labels and latent codes checked first."""
import threading

import numpy as np
import pytest
import torch

import genloom as gl
from genloom.data.image_layout import ImageLayout
from genloom.errors import GenloomError
from genloom.families import drawing
from genloom.families.configs import VAEConfig
from genloom.families.drawing import (Stopped, check_memory, check_shard, draw, label_tensor, latent_tensor,
                                     on_threads, one_at_a_time, shard_rows)
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


class Watched(VAE):
    """A VAE that may draw batches side by side and notes the thread and torch thread count of each batch."""
    samples_side_by_side = True

    def sample(self, *args):
        self.seen.append((threading.current_thread().name, torch.get_num_threads()))
        return super().sample(*args)


def _watched():
    torch.manual_seed(0)
    vae = Watched(ImageLayout((1, 8, 8), 10), VAEConfig(latent_dim=3, width=4))
    vae.seen = []
    return vae


def test_batches_side_by_side_are_the_batches_one_at_a_time_each_on_one_thread(monkeypatch):
    vae, passes = _watched(), []
    monkeypatch.setattr(drawing, "SAMPLE_BATCH", 4)
    threads = torch.get_num_threads()
    alone = draw(vae, 14, 3)
    assert {name for name, _ in vae.seen} == {"MainThread"}
    vae.seen.clear()
    together = draw(vae, 14, 3, on_pass=lambda: passes.append(1), workers=2)
    assert torch.equal(together, alone) and len(passes) == 4
    assert {name.startswith("genloom-draw") for name, _ in vae.seen} == {True}
    assert {count for _, count in vae.seen} == {1}
    assert torch.get_num_threads() == threads  # put back


def test_batches_go_one_at_a_time_where_the_family_or_the_thread_does_not_allow_more(monkeypatch):
    monkeypatch.setattr(drawing, "SAMPLE_BATCH", 4)
    vae = _vae()
    plain = draw(vae, 8, 0, workers=2)  # a family that has not said it may: the main thread only
    assert torch.equal(plain, draw(vae, 8, 0))
    watched = _watched()
    worker = threading.Thread(target=draw, args=(watched, 8, 0), kwargs={"workers": 2}, name="server-worker")
    worker.start()
    worker.join()
    assert {name for name, _ in watched.seen} == {"server-worker"}  # not the main thread: torch's count stays


def test_a_failing_batch_stops_the_others_and_puts_the_thread_count_back():
    threads, done, stopped = torch.get_num_threads(), [], threading.Event()

    def work(item):
        if item == 0:
            raise GenloomError("batch 0 failed")
        if not stopped.wait(timeout=5):  # the others run until told to stop
            done.append(item)
        return item

    with pytest.raises(GenloomError, match="batch 0 failed"):
        on_threads(work, list(range(200)), 2, stopped)
    assert stopped.is_set() and done == [] and torch.get_num_threads() == threads


def test_a_batch_still_running_stops_at_its_next_pass_once_sampling_stopped():
    stopped, passes = threading.Event(), []
    on_pass = one_at_a_time(lambda: passes.append(1), stopped)
    on_pass()
    stopped.set()
    with pytest.raises(Stopped):
        on_pass()
    assert passes == [1]


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
