"""Completions made on worker threads and handed to the event loop a piece at a time. One thread makes a whole
completion and its pieces wait in an asyncio queue per choice: handing each token's work to a thread of its own
cost a third of the speed of a stream. Unseeded one-choice completions of a run with the same sampling settings
decode side by side, prompts of any length, each joining the batch already decoding at its next token
(continuous batching: Model.text_batch)."""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .batching import fresh_seed
from .limits import ApiError, InferenceSlots

if TYPE_CHECKING:
    from ..families.text_stream import TextStream
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
        """What completions must share to decode side by side: the run as loaded (a run rewritten on disk and
        loaded again starts batches of its own) and the sampling settings."""
        return (self.name, id(self.model), tuple(sorted(self.sampling.items())))


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


MAX_BATCH_ROWS = 32  # rows one batch decodes at most; past it, a new batch starts beside it in a slot of its own


@dataclass
class RunningBatch:
    """Completions decoding together on one worker thread, and those waiting to join at its next step."""

    arrivals: list[CompletionJob]
    rows: int = 1  # completions joined or waiting to, not yet finished


class ContinuousBatches:
    """Completions that can share a batch (an unseeded choice each, the same run and sampling settings) decode in
    one Model.text_batch: the first starts it on a worker thread under an inference slot, and those that come
    while it runs (or waits for its slot) join it at its next step. `max_owed_tokens` bounds the tokens promised
    to accepted completions and not yet made; past it, a 429."""

    def __init__(self, slots: InferenceSlots, max_owed_tokens: int, max_rows: int = MAX_BATCH_ROWS):
        self.slots, self.max_owed_tokens, self.max_rows = slots, max_owed_tokens, max_rows
        self._accepting: dict[tuple, RunningBatch] = {}  # by pool key: the batch new completions join
        self._lock = threading.Lock()  # the event loop adds jobs, worker threads take them
        self._owed = 0
        self.batches_started = self.requests_served = 0  # how much batching there was: /healthz shows it
        self._serving: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def add(self, job: CompletionJob) -> None:
        """Join `job` to its batch, or start one; a 429 when too many tokens are owed already."""
        with self._lock:
            if self._owed + job.max_tokens > self.max_owed_tokens:
                raise ApiError(429, f"the server owes {self._owed:,} tokens to completions it accepted; retry in a "
                                    "second", {"Retry-After": "1"})
            self._owed += job.max_tokens
            self.requests_served += 1
            batch = self._accepting.get(job.pool_key())
            if batch is not None and batch.rows < self.max_rows:
                batch.arrivals.append(job)
                batch.rows += 1
                return
            batch = self._accepting[job.pool_key()] = RunningBatch([job])
            self.batches_started += 1
        loop = asyncio.get_running_loop()  # the server's one loop: every row's pieces go to it
        task = loop.create_task(self._serve(job.pool_key(), batch, Outbox(loop).push))
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _serve(self, key: tuple, batch: RunningBatch, push: Push) -> None:
        await self.slots.wait_for_slot()  # accepted work waits rather than hear 429; arrivals join meanwhile
        await self.slots.run(lambda: self._decode(key, batch, push), claimed=True, deadline=False)

    def _decode(self, key: tuple, batch: RunningBatch, push: Push) -> None:
        """Until no row is left and none waits: take arrivals in, then a piece of text from every row. An error
        in a step ends the whole batch (no row can go on from a failed step): it reaches every completion in it
        and every one waiting to join, and the next completion starts a new batch."""
        active: list[tuple[CompletionJob, TextStream]] = []
        try:
            first = batch.arrivals[0]
            text = first.model.text_batch(seed=fresh_seed(), **first.sampling)
            while True:
                with self._lock:
                    arrivals, batch.arrivals = batch.arrivals, []
                    if not arrivals and not active:
                        self._stop_accepting(key, batch)
                        return
                for job in arrivals:
                    if job.cancelled.is_set():  # its client left (or its deadline passed) while it waited
                        self._finish(batch, job, push, Finished("cancelled", 0))
                        continue
                    try:
                        active.append((job, text.join(job.prompt, job.max_tokens, job.stop)))
                    except Exception as error:  # the handler raises it: a GenloomError is the request's fault (400)
                        self._finish(batch, job, push, error)
                for row in list(active):
                    ended = self._read_piece(*row, push)
                    if ended is not None:
                        active.remove(row)
                        row[1].close()
                        self._finish(batch, row[0], push, ended)
        except Exception as error:
            with self._lock:
                self._stop_accepting(key, batch)
                waiting, batch.arrivals = batch.arrivals, []
            for job in [job for job, _ in active] + waiting:
                self._finish(batch, job, push, error)

    def _stop_accepting(self, key: tuple, batch: RunningBatch) -> None:
        """No completion joins `batch` from now on (called under the lock)."""
        if self._accepting.get(key) is batch:
            del self._accepting[key]

    @staticmethod
    def _read_piece(job: CompletionJob, stream: TextStream, push: Push) -> Finished | None:
        """The next piece of a row pushed to its queue; how the row ended instead (None while it goes on)."""
        if job.cancelled.is_set():
            return Finished("cancelled", stream.tokens_generated)
        piece = next(stream, None)
        if piece is None:
            return Finished(stream.finish_reason, stream.tokens_generated)
        push(job.choices[0], piece)
        return None

    def _finish(self, batch: RunningBatch, job: CompletionJob, push: Push, end: Finished | Exception) -> None:
        """Pay back what `job` was owed, then tell its client (who may ask again at once)."""
        with self._lock:
            batch.rows -= 1
            self._owed -= job.max_tokens
        if not job.cancelled.is_set():
            push(job.choices[0], end)

    def counts(self) -> dict[str, int]:
        return {"batches": self.batches_started, "requests": self.requests_served}


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
    """Starts completion jobs: in a running batch where they can be, alone under an inference slot otherwise."""

    def __init__(self, slots: InferenceSlots, batching: bool, max_owed_tokens: int):
        self.slots = slots
        self.batches = ContinuousBatches(slots, max_owed_tokens) if batching else None
        self._running: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def start(self, job: CompletionJob) -> None:
        """Begin making `job`'s choices; a 429 when no slot is free for a job that cannot join a batch."""
        loop = asyncio.get_running_loop()
        job.choices = [asyncio.Queue() for _ in range(job.n)]
        if self.batches is not None and job.seed is None and job.n == 1:
            self.batches.add(job)
            return
        self.slots.take()
        push = Outbox(loop).push
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
