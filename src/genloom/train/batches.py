"""Mini-batch order that is a pure function of (seed, epoch, position), so a resume replays it exactly."""
from __future__ import annotations

import numpy as np


class ShuffledBatches:
    """Indices of shuffled mini-batches over n examples; an incomplete last batch is dropped."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, min(batch_size, n), seed
        self.epoch, self.position = 0, 0
        self._order = None

    @property
    def per_epoch(self) -> int:
        return self.n // self.batch_size

    def next(self) -> np.ndarray:
        if self.position + self.batch_size > self.n:
            self.epoch, self.position = self.epoch + 1, 0
        if self._order is None or self._order[0] != self.epoch:
            self._order = (self.epoch, np.random.default_rng([self.seed, self.epoch]).permutation(self.n))
        indices = self._order[1][self.position:self.position + self.batch_size]
        self.position += self.batch_size
        return indices

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
