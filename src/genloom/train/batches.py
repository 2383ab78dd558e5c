"""Mini-batches that are a pure function of (seed, position), so a resumed run replays them exactly."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import GenloomError


LENGTH_GROUP = 50  # batches' worth of shuffled examples sorted by length together (Hugging Face's group_by_length)


def grouped_by_length(order: np.ndarray, lengths: np.ndarray, batch_size: int,
                      rng: np.random.Generator) -> np.ndarray:
    """`order` regrouped so that each run of batch_size holds examples of like lengths: those past the last
    whole batch left out first (as an epoch's incomplete batch is: others each epoch, never the longest), then
    every LENGTH_GROUP batches' worth sorted by length, cut into batches, and the batches shuffled."""
    order = order[:len(order) // batch_size * batch_size]
    group = LENGTH_GROUP * batch_size
    sorted_groups = [part[np.argsort(lengths[part], kind="stable")] for part in
                     np.split(order, range(group, len(order), group))]
    batches = np.concatenate(sorted_groups).reshape(-1, batch_size)
    return batches[rng.permutation(len(batches))].ravel()


class ShuffledBatches:
    """Shuffled mini-batches of whole examples, epoch after epoch; an incomplete last batch is dropped.
    With `weights`, each batch is drawn with replacement in proportion to them (a family's rebalancing); with
    `lengths`, each batch gathers examples of like lengths (grouped_by_length)."""

    def __init__(self, x: torch.Tensor, labels: torch.Tensor | None, batch_size: int, seed: int,
                 weights: torch.Tensor | None = None, lengths: np.ndarray | None = None):
        self.x, self.labels, self.seed, self.lengths = x, labels, seed, lengths
        self.batch_size = min(batch_size, len(x))
        self.epoch, self.position = 0, 0
        self._order: tuple[int, np.ndarray] | None = None
        # cumulative weights once: each weighted batch is then a binary search, not a pass over every example
        self.cumulative = None if weights is None else np.cumsum(weights.double().numpy())

    @property
    def per_epoch(self) -> float:
        return len(self.x) // self.batch_size

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.position + self.batch_size > len(self.x):
            self.epoch, self.position = self.epoch + 1, 0
        if self.cumulative is not None:
            rng = np.random.default_rng([self.seed, self.epoch, self.position])
            drawn = rng.random(self.batch_size) * self.cumulative[-1]
            indices = torch.from_numpy(np.searchsorted(self.cumulative, drawn, side="right"))
            self.position += self.batch_size
            return self.x[indices], self.labels[indices] if self.labels is not None else None
        if self._order is None or self._order[0] != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch])
            order = rng.permutation(len(self.x))
            if self.lengths is not None:
                order = grouped_by_length(order, self.lengths, self.batch_size, rng)
            self._order = (self.epoch, order)
        indices = torch.from_numpy(self._order[1][self.position:self.position + self.batch_size])
        self.position += self.batch_size
        return self.x[indices], self.labels[indices] if self.labels is not None else None

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


class RandomWindows:
    """Windows of `window` consecutive tokens at random offsets of a token stream (nanoGPT's get_batch); with a
    `grid`, at random multiples of it, each given with its offset."""

    def __init__(self, tokens: torch.Tensor, window: int, batch_size: int, seed: int, what: str = "the text",
                 grid: int | None = None):
        if len(tokens) <= window:
            raise GenloomError(f"{what} has {len(tokens)} tokens, not more than one block of {window}; "
                               "use a longer corpus or a smaller block_size (CLI: --block-size)")
        self.tokens, self.window, self.batch_size, self.seed, self.grid = tokens, window, batch_size, seed, grid
        self.count = 0

    @property
    def per_epoch(self) -> float:
        return len(self.tokens) / (self.batch_size * self.window)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        rng = np.random.default_rng([self.seed, self.count])
        step = self.grid or 1
        starts = torch.from_numpy(rng.integers(0, (len(self.tokens) - self.window) // step + 1, self.batch_size) * step)
        self.count += 1
        return self.tokens[starts[:, None] + torch.arange(self.window)], starts if self.grid else None

    def state_dict(self) -> dict[str, int]:
        return {"count": self.count}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.count = int(state["count"])


def make_batches(x: torch.Tensor, labels: torch.Tensor | None, batch_size: int, seed: int,
                 context_length: int | None, what: str = "the text", weights: torch.Tensor | None = None,
                 grid: int | None = None, lengths: np.ndarray | None = None) -> ShuffledBatches | RandomWindows:
    """Windows for a token stream (1-D x, needs the family's context length; with a `grid`, starting at its
    multiples, their offsets as labels), whole examples otherwise (drawn in proportion to `weights` when given,
    of like `lengths` when given)."""
    if x.dim() == 1:
        if context_length is None:
            raise GenloomError("this family cannot train on a token stream; use --family autoregressive for text")
        return RandomWindows(x, context_length + 1, batch_size, seed, what, grid)
    return ShuffledBatches(x, labels, batch_size, seed, weights, lengths)


def held_out_indices(n: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the examples kept for training and of those held out: a seeded random `fraction`, the same
    for every run on the same data (evaluation takes a table's rows by them)."""
    n_val = int(n * fraction)
    order = np.random.default_rng(0).permutation(n)
    return order[n_val:], order[:n_val]


Part = tuple[torch.Tensor, torch.Tensor | None]  # examples (or a token stream) and their labels


def split_validation(x: torch.Tensor, labels: torch.Tensor | None, fraction: float) -> tuple[Part, Part | None]:
    """Hold out `fraction`: the tail of a token stream (as nanoGPT), or a seeded random subset of examples;
    ((x, labels) to train on, (x, labels) held out or None)."""
    n_val = int(len(x) * fraction)
    if n_val == 0:
        return (x, labels), None
    if x.dim() == 1:
        return (x[:-n_val], None), (x[-n_val:], None)
    train, val = ((x[idx], labels[idx] if labels is not None else None)
                  for idx in map(torch.from_numpy, held_out_indices(len(x), fraction)))
    return train, val
