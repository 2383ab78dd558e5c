import asyncio
import threading
import time

import pytest

from genloom.serve.limits import ApiError, InferenceSlots
from genloom.serve.text_decoding import CompletionJob, ContinuousBatches, Finished, Outbox, whole_choice


async def _arrivals(queue: asyncio.Queue, count: int) -> list[tuple[float, object]]:
    return [(time.monotonic(), await queue.get()) for _ in range(count)]


def test_text_waits_for_the_next_delivery_and_the_end_of_a_choice_brings_it_at_once():
    async def scenario():
        outbox, queue = Outbox(asyncio.get_running_loop(), interval=10.0), asyncio.Queue()
        outbox.push(queue, "first")  # nothing delivered lately: it goes at once
        assert await asyncio.wait_for(queue.get(), 1.0) == "first"
        outbox.push(queue, "second")
        await asyncio.sleep(0.2)
        assert queue.empty()  # held until the interval has passed
        pushed = time.monotonic()
        outbox.push(queue, Finished("stop", 2))
        (_, second), (arrived, end) = await asyncio.wait_for(_arrivals(queue, 2), 1.0)
        assert (second, end) == ("second", Finished("stop", 2)) and arrived - pushed < 0.5

    asyncio.run(scenario())


def test_a_token_a_millisecond_wakes_the_loop_about_once_an_interval():
    async def scenario():
        loop, queue = asyncio.get_running_loop(), asyncio.Queue()
        outbox, deliveries = Outbox(loop, interval=0.05), []
        deliver = outbox._deliver
        outbox._deliver = lambda: (deliveries.append(time.monotonic()), deliver())

        def tokens():
            for index in range(200):
                outbox.push(queue, str(index))
                time.sleep(0.001)
            outbox.push(queue, Finished("length", 200))

        producer = threading.Thread(target=tokens)
        producer.start()
        items = [item for _, item in await asyncio.wait_for(_arrivals(queue, 201), 10.0)]
        producer.join()
        assert items == [str(index) for index in range(200)] + [Finished("length", 200)]
        seconds = deliveries[-1] - deliveries[0]
        assert len(deliveries) <= seconds / 0.05 + 3  # not one a token (200)

    asyncio.run(scenario())


class _Stream:
    """A row of _Batch: `tokens` pieces "t", the first only once `gate` is set."""

    def __init__(self, tokens: int, gate: threading.Event, failing: bool = False):
        self.left, self.gate, self.closed, self.failing = tokens, gate, False, failing
        self.tokens_generated, self.finish_reason = 0, "length"

    def __iter__(self):
        return self

    def __next__(self) -> str:
        self.gate.wait(10)
        if self.left == 0 or self.closed:
            raise StopIteration
        if self.failing and self.tokens_generated == 1:
            raise RuntimeError("out of memory")
        self.left -= 1
        self.tokens_generated += 1
        return "t"

    def close(self) -> None:
        self.closed = True


class _Batch:
    def __init__(self, gate: threading.Event):
        self.gate, self.joined, self.streams = gate, [], []

    def join(self, prompt: str, max_tokens: int, stop) -> _Stream:
        self.joined.append(prompt)
        self.streams.append(_Stream(max_tokens, self.gate, failing=prompt == "failing"))
        return self.streams[-1]


class _Model:
    """Model.text_batch's shape: each batch made is kept, its rows held until `gate` is set."""

    def __init__(self):
        self.gate, self.batches = threading.Event(), []

    def text_batch(self, seed: int, **sampling) -> _Batch:
        self.batches.append(_Batch(self.gate))
        return self.batches[-1]


def _job(model, prompt: str, max_tokens: int = 3) -> CompletionJob:
    return CompletionJob(model, "run", prompt, 1, 1, max_tokens, {"temperature": 1.0}, [], None)


async def _finished(job: CompletionJob) -> tuple[str, Finished]:
    return await asyncio.wait_for(whole_choice(job.choices[0]), 10)


def _start(batches: ContinuousBatches, job: CompletionJob) -> None:
    job.choices = [asyncio.Queue()]
    batches.add(job)


def test_a_completion_that_arrives_while_a_batch_decodes_joins_it():
    async def scenario():
        slots = InferenceSlots(4, 60)
        model, batches = _Model(), ContinuousBatches(slots, max_owed_tokens=100)
        first, second = _job(model, "first"), _job(model, "second", max_tokens=5)
        _start(batches, first)
        while not model.batches:  # the first batch is decoding (held at its first piece)
            await asyncio.sleep(0.01)
        _start(batches, second)
        model.gate.set()
        assert await _finished(first) == ("ttt", Finished("length", 3))
        assert await _finished(second) == ("ttttt", Finished("length", 5))
        assert [batch.joined for batch in model.batches] == [["first", "second"]]
        assert batches.counts() == {"batches": 1, "requests": 2}
        while slots.busy:  # the batch's thread sees no row left and ends
            await asyncio.sleep(0.01)
        _start(batches, third := _job(model, "third"))  # so a new batch starts
        await _finished(third)
        assert [batch.joined for batch in model.batches] == [["first", "second"], ["third"]]

    asyncio.run(scenario())


def test_a_full_batch_takes_no_more_rows_and_owed_tokens_are_bounded():
    async def scenario():
        model, batches = _Model(), ContinuousBatches(InferenceSlots(4, 60), max_owed_tokens=8, max_rows=1)
        _start(batches, first := _job(model, "first"))
        _start(batches, second := _job(model, "second"))
        with pytest.raises(ApiError, match="owes 6 tokens") as refused:
            _start(batches, _job(model, "third"))
        assert refused.value.status == 429 and refused.value.headers == {"Retry-After": "1"}
        model.gate.set()
        await _finished(first), await _finished(second)
        assert sorted(batch.joined for batch in model.batches) == [["first"], ["second"]]
        _start(batches, third := _job(model, "third"))  # what was owed is paid
        await _finished(third)

    asyncio.run(scenario())


def test_a_cancelled_completion_leaves_its_batch():
    async def scenario():
        model, batches = _Model(), ContinuousBatches(InferenceSlots(4, 60), max_owed_tokens=100)
        _start(batches, gone := _job(model, "gone", max_tokens=50))
        _start(batches, staying := _job(model, "staying", max_tokens=4))
        while not model.batches or len(model.batches[0].joined) < 2:  # both decoding, held at the first piece
            await asyncio.sleep(0.01)
        gone.cancelled.set()
        model.gate.set()
        assert await _finished(staying) == ("tttt", Finished("length", 4))
        await asyncio.sleep(0.1)
        left = [gone.choices[0].get_nowait() for _ in range(gone.choices[0].qsize())]
        assert left in ([], ["t"])  # at most the piece being read as it was cancelled; no end, nothing after
        assert model.batches[0].streams[0].closed

    asyncio.run(scenario())


def test_a_completion_cancelled_before_it_joins_is_never_decoded():
    async def scenario():
        model, batches = _Model(), ContinuousBatches(InferenceSlots(4, 60), max_owed_tokens=9)
        _start(batches, first := _job(model, "first"))
        while not model.batches or not model.batches[0].joined:  # the worker waits at the first row's piece
            await asyncio.sleep(0.01)
        _start(batches, gone := _job(model, "gone"))
        gone.cancelled.set()
        _start(batches, later := _job(model, "later"))
        model.gate.set()
        await _finished(first), await _finished(later)
        assert model.batches[0].joined == ["first", "later"] and gone.choices[0].empty()
        _start(batches, again := _job(model, "again", max_tokens=9))  # every token owed was paid back
        await _finished(again)

    asyncio.run(scenario())


class _FailingOnce(_Model):
    def text_batch(self, seed: int, **sampling) -> _Batch:
        if not self.batches:
            self.batches.append(None)
            raise RuntimeError("out of memory")
        return super().text_batch(seed, **sampling)


def test_a_batch_that_fails_ends_every_completion_in_it_and_pays_back_what_it_owed():
    async def scenario():
        model, batches = _FailingOnce(), ContinuousBatches(InferenceSlots(4, 60), max_owed_tokens=6)
        _start(batches, first := _job(model, "first"))
        _start(batches, second := _job(model, "second"))
        for job in (first, second):
            with pytest.raises(RuntimeError, match="out of memory"):
                await _finished(job)
        model.gate.set()
        _start(batches, after := _job(model, "after", max_tokens=6))  # a new batch, the whole allowance free
        assert await _finished(after) == ("tttttt", Finished("length", 6))

    asyncio.run(scenario())


def test_a_step_that_fails_mid_batch_ends_the_batch_and_the_next_completion_starts_another():
    """A failed step leaves no row able to go on: every completion in the batch hears the error, and one that
    comes later is decoded in a new batch rather than failing with it."""
    async def scenario():
        model, batches = _Model(), ContinuousBatches(InferenceSlots(4, 60), max_owed_tokens=100)
        _start(batches, failing := _job(model, "failing", max_tokens=5))
        _start(batches, beside := _job(model, "beside", max_tokens=5))
        model.gate.set()
        for job in (failing, beside):
            with pytest.raises(RuntimeError, match="out of memory"):
                await _finished(job)
        _start(batches, later := _job(model, "later"))
        assert await _finished(later) == ("ttt", Finished("length", 3))
        assert [batch.joined for batch in model.batches] == [["failing", "beside"], ["later"]]

    asyncio.run(scenario())
