"""Sample requests that arrive together, served by one pass of the network: sixteen clients asking a diffusion
model for samples at once share its denoising steps. (Text completions batch continuously instead:
text_decoding.py.)

Only requests without a seed are pooled: a seed promises the very samples (or text) the Python API gives for
it alone, and a pooled draw cannot keep that promise, so a seeded request is served alone."""
from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from .limits import ApiError, InferenceSlots

BATCH_WINDOW_SECONDS = 0.005  # how long the first request of a pool waits for others to join it


@dataclass
class _Pool:
    run: Callable[[list[Any]], list[Any]]
    entries: list[Any] = field(default_factory=list)
    answers: list[asyncio.Future] = field(default_factory=list)
    size: int = 0


class Pools:
    """Requests pooled by key (the run and every setting that changes what is made). A pool is served once, by
    `run(entries)` on a worker thread under one inference slot, as soon as the window has passed and a slot is
    free; requests that arrive while it is served form the next pool. `max_waiting` bounds the work (samples or
    tokens) waiting in open pools; past it, a 429."""

    def __init__(self, slots: InferenceSlots, max_waiting: int):
        self.slots, self.max_waiting = slots, max_waiting
        self._open: dict[Hashable, _Pool] = {}
        self.pools_served = self.requests_served = 0  # how much pooling there was: /healthz shows it
        self._serving: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    @property
    def waiting(self) -> int:
        return sum(pool.size for pool in self._open.values())

    def add(self, key: Hashable, entry: Any, size: int, run: Callable[[list[Any]], list[Any]]) -> asyncio.Future:
        """Put `entry` (of `size` units of work) in the pool of `key`; the future is its share of the pool's
        result. `run` serves a pool of entries (the first request's `run` serves its whole pool)."""
        if self.waiting + size > self.max_waiting:
            raise ApiError(429, f"the server holds {self.waiting} units of work waiting to be pooled; retry in a "
                                "second", {"Retry-After": "1"})
        loop = asyncio.get_running_loop()
        pool = self._open.get(key)
        if pool is None:
            pool = self._open[key] = _Pool(run)
            task = loop.create_task(self._serve_when_ready(key, pool))
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
        answer = loop.create_future()
        pool.entries.append(entry)
        pool.answers.append(answer)
        pool.size += size
        return answer

    async def _serve_when_ready(self, key: Hashable, pool: _Pool) -> None:
        await asyncio.sleep(BATCH_WINDOW_SECONDS)
        await self.slots.wait_for_slot()  # the pool's requests were accepted: they wait rather than hear 429
        del self._open[key]  # requests from here on start the next pool
        try:
            shares = await self.slots.run(lambda: pool.run(pool.entries), claimed=True)
        except Exception as error:  # every request of the pool gets the error
            for answer in pool.answers:
                if not answer.done():
                    answer.set_exception(error)
            return
        self.pools_served += 1
        self.requests_served += len(pool.entries)
        for answer, share in zip(pool.answers, shares):
            if not answer.done():
                answer.set_result(share)

    def counts(self) -> dict[str, int]:
        return {"pools": self.pools_served, "requests": self.requests_served}


def fresh_seed() -> int:
    """A seed for a request that gave none (pooled or not): what it gets is new each time."""
    return secrets.randbelow(2 ** 31)


def split(samples: Any, sizes: list[int]) -> list[Any]:
    """Samples drawn for a pool, cut into each request's share (arrays, lists and DataFrames alike)."""
    shares, start = [], 0
    for size in sizes:
        shares.append(samples[start:start + size])
        start += size
    return shares
