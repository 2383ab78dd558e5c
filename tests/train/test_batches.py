import numpy as np
import torch

from genloom.train.batches import ShuffledBatches


def test_batches_of_like_lengths_cover_an_epoch_and_replay():
    """With lengths, each batch holds examples of like lengths (their spread a fraction of shuffled batches'),
    every example comes once an epoch but for the incomplete batch, and the order is a function of the seed."""
    lengths = np.random.default_rng(0).integers(10, 60, 1000)
    x = torch.arange(1000)
    grouped = ShuffledBatches(x, None, 16, seed=3, lengths=lengths)
    plain = ShuffledBatches(x, None, 16, seed=3)
    epoch = [grouped.next()[0] for _ in range(62)]  # 62 whole batches of 16 in 1,000

    def spread(batches):
        return np.mean([np.ptp(lengths[batch.numpy()]) for batch in batches])

    assert spread(epoch) < spread(plain.next()[0] for _ in range(62)) / 5
    seen = torch.cat(epoch)
    assert len(set(seen.tolist())) == 992
    assert not torch.equal(seen[:16], torch.cat([grouped.next()[0] for _ in range(62)])[:16])  # a new epoch's order
    again = ShuffledBatches(x, None, 16, seed=3, lengths=lengths)
    assert all(torch.equal(batch, again.next()[0]) for batch in epoch)
    # not sorted across the epoch: long and short batches come in a shuffled order
    means = [lengths[batch.numpy()].mean() for batch in epoch]
    assert not (np.all(np.diff(means) >= 0) or np.all(np.diff(means) <= 0))


def test_batches_of_like_lengths_leave_out_other_examples_each_epoch_not_the_longest():
    """An epoch's incomplete batch is left out before grouping: over epochs every example trains, the longest too."""
    lengths = np.arange(300)
    batches = ShuffledBatches(torch.arange(300), None, 128, seed=0, lengths=lengths)
    seen = torch.cat([batches.next()[0] for _ in range(2 * 10)])  # ten epochs of two batches
    assert set(seen.tolist()) == set(range(300))
