import asyncio
import threading
import time

from genloom.serve.text_decoding import Finished, Outbox


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
