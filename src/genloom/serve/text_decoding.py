"""Completions made on worker threads and handed to the event loop a piece at a time. One thread makes a whole
completion and its pieces wait in an asyncio queue per choice: handing each token's work to a thread of its own
cost a third of the speed of a stream. Unseeded one-choice completions of a run that arrive together with the
same sampling settings decode side by side, prompts of any length (see batching.py)."""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .batching import Pools, fresh_seed
from .limits import InferenceSlots

if TYPE_CHECKING:
    from ..model import Model

DELIVERY_INTERVAL_SECONDS = 0.02


@dataclass(frozen=True)
class Finished:
    """The last item of a choice's queue: why it ended ("stop" or "length") and the tokens it took."""

    reason: str
    tokens: int


@dataclass
class CompletionJob:
    """One request's completions; `choices` fill with pieces of text, then a Finished (or an exception)."""

    model: Model
    name: str
    prompt: str
    prompt_tokens: int
    n: int
    max_tokens: int
    sampling: dict[str, Any]  # temperature, top_p, top_k
    stop: list[str]
    seed: int | None
    choices: list[asyncio.Queue] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)  # the client left or the deadline passed

    def pool_key(self) -> tuple:
        """What completions must share to decode side by side."""
        return (self.name, tuple(sorted(self.sampling.items())))


Push = Callable[[asyncio.Queue, Any], None]


def decode_alone(job: CompletionJob, push: Push) -> None:
    """Each choice in turn, seeded seed, seed + 1, ... as `model.generate` would make them."""
    seed = job.seed if job.seed is not None else fresh_seed()
    try:
        for index, queue in enumerate(job.choices):
            stream = job.model.generate(job.prompt, max_tokens=job.max_tokens, stop=job.stop, seed=seed + index,
                                        stream=True, **job.sampling)
            for piece in stream:
                if job.cancelled.is_set():
                    return
                push(queue, piece)
            push(queue, Finished(stream.finish_reason, stream.tokens_generated))
    except Exception as error:  # the handler raises it: a GenloomError is the request's fault (400)
        for queue in job.choices:
            push(queue, error)


def decode_together(jobs: list[CompletionJob], push: Push) -> list[None]:
    """One-choice jobs of one pool key, a forward pass a token for all; each row read in turn."""
    try:
        streams = jobs[0].model.generate_many([job.prompt for job in jobs], max_tokens=[job.max_tokens for job in jobs],
                                              stops=[job.stop for job in jobs], seed=fresh_seed(),
                                              **jobs[0].sampling)
    except Exception as error:
        for job in jobs:
            push(job.choices[0], error)
        return [None] * len(jobs)
    active = list(zip(jobs, streams))
    while active:
        reading, active = active, []
        for job, stream in reading:
            if job.cancelled.is_set():
                continue
            try:
                piece = next(stream, None)
            except Exception as error:
                push(job.choices[0], error)
                continue
            if piece is None:
                push(job.choices[0], Finished(stream.finish_reason, stream.tokens_generated))
            else:
                push(job.choices[0], piece)
                active.append((job, stream))
    return [None] * len(jobs)


class Outbox:
    """Items from a worker thread to queues on the event loop, delivered at most once every `interval` seconds:
    each wake-up of the loop takes the GIL from the thread making the tokens, and a wake-up per token cost a
    stream 15-25% of its speed (benchmarks/serve.py). The end of a choice (or an error) goes at once, so a short
    completion waits for nothing; text in between waits at most `interval` (a reader sees no difference at 20 ms,
    and streaming servers send several tokens a chunk, as vLLM's stream_interval does)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = DELIVERY_INTERVAL_SECONDS):
        self.loop, self.interval = loop, interval
        self._items: list[tuple[asyncio.Queue, Any]] = []
        self._lock = threading.Lock()
        self._waking = False  # a delivery is scheduled and will take what is pushed meanwhile
        self._quiet_until = 0.0  # time.monotonic() before which text waits for the next delivery

    def push(self, queue: asyncio.Queue, item: Any) -> None:
        ends = isinstance(item, (Finished, Exception))
        with self._lock:
            self._items.append((queue, item))
            if self._waking and not ends:
                return
            self._waking = True
            delay = 0.0 if ends else self._quiet_until - time.monotonic()
        if delay > 0:
            self.loop.call_soon_threadsafe(self.loop.call_later, delay, self._deliver)
        else:
            self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            if not self._items:  # a timer outlived by an end that went at once
                return
            items, self._items = self._items, []
            self._waking = False
            self._quiet_until = time.monotonic() + self.interval
        for queue, item in items:
            queue.put_nowait(item)


class TextDecoder:
    """Starts completion jobs: pooled where they can be, alone under an inference slot otherwise."""

    def __init__(self, slots: InferenceSlots, pooling: bool, max_waiting_tokens: int):
        self.slots = slots
        self.pools = Pools(slots, max_waiting_tokens, deadline=False) if pooling else None
        self._running: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def start(self, job: CompletionJob) -> None:
        """Begin making `job`'s choices; a 429 when no slot is free for a job that cannot be pooled."""
        loop = asyncio.get_running_loop()
        job.choices = [asyncio.Queue() for _ in range(job.n)]
        push = Outbox(loop).push
        if self.pools is not None and job.seed is None and job.n == 1:
            self.pools.add(job.pool_key(), job, job.max_tokens, lambda jobs: decode_together(jobs, push))
            return
        self.slots.take()
        task = loop.create_task(self.slots.run(lambda: decode_alone(job, push), claimed=True, deadline=False))
        self._running.add(task)
        task.add_done_callback(self._running.discard)


async def next_item(queue: asyncio.Queue) -> Any:
    """The next piece or Finished of a choice; the exception that ended it is raised here."""
    item = await queue.get()
    if isinstance(item, Exception):
        raise item
    return item


async def whole_choice(queue: asyncio.Queue) -> tuple[str, Finished]:
    """A choice's text and how it finished."""
    pieces = []
    while not isinstance(item := await next_item(queue), Finished):
        pieces.append(item)
    return "".join(pieces), item
