"""What keeps a server up under load: a bound on inference at once (the rest are told to retry), a deadline per
request, and a cap on request bodies; all answer with the one-line JSON errors of the rest of the API."""
from __future__ import annotations

import asyncio
import ctypes
import hmac
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

RETRY_AFTER_SECONDS = 1
QUEUE_POLL_SECONDS = 0.002


MALLOC_ARENAS = 2
M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_malloc_arenas(count: int = MALLOC_ARENAS) -> None:
    """glibc gives threads that allocate at once heap arenas of their own; a server's worker threads making
    tensors of changing sizes then keep growing memory: 392 MB after warm-up became 876 MB after 110 s of
    mixed load, still rising, against a plateau at 670 MB with two arenas (benchmarks/serve.py's load). Called
    once, as the server process starts; without glibc there is nothing to do."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, count)
    except (OSError, AttributeError):
        pass


def quiet_idle_threads() -> None:
    """OpenMP's idle threads sleep instead of spinning. By default each of torch's worker threads spins for a
    while after every parallel operation, on the cores the server's event loop and its clients need: a stream on
    2 threads of this 2-core machine ran 7-15% behind `model.generate`, and 1-4% with the threads asleep. OpenMP
    reads the policy once, as torch loads: after that (a server made in a Python session) there is nothing to
    do, and nothing is changed. A policy the user set is kept."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class ApiError(Exception):
    """An answer other than 2xx: its HTTP status, a one-line message and any headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_body(status: int, message: str) -> bytes:
    """The JSON every error is sent as, OpenAI's shape: {"error": {"message", "type", "code"}}."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode("utf-8")


class InferenceSlots:
    """At most `size` inference jobs at once, each on a worker thread so the event loop keeps answering; a job
    past `timeout` is answered 504 while its thread finishes (and keeps its slot until then)."""

    def __init__(self, size: int, timeout: float):
        self.size, self.timeout = size, timeout
        self._busy, self._lock = 0, threading.Lock()
        self._workers = ThreadPoolExecutor(max_workers=size, thread_name_prefix="genloom-serve")

    def take(self) -> None:
        """Claim a slot, or a 429 that says when to retry."""
        if not self._claim():
            raise ApiError(429, f"the server is busy with {self.size} requests (--max-concurrency); retry in "
                                f"{RETRY_AFTER_SECONDS} s", {"Retry-After": str(RETRY_AFTER_SECONDS)})

    def _claim(self) -> bool:
        with self._lock:
            if self._busy >= self.size:
                return False
            self._busy += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._busy -= 1

    @property
    def busy(self) -> int:
        return self._busy

    async def wait_for_slot(self) -> None:
        """Claim a slot, waiting until one is free: for work accepted already (a pool of sample requests)."""
        while not self._claim():
            await asyncio.sleep(QUEUE_POLL_SECONDS)

    async def run(self, work: Callable[[], Any], claimed: bool = False, deadline: bool = True) -> Any:
        """`work()` on a worker thread under a slot (claimed now, or by wait_for_slot) and, unless told otherwise
        (text that streams, bounded by max_tokens instead), the deadline."""
        def in_slot() -> Any:
            try:
                return work()
            finally:
                self.give_back()

        if not claimed:
            self.take()
        try:
            future = asyncio.get_running_loop().run_in_executor(self._workers, in_slot)
        except BaseException:
            self.give_back()
            raise
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout if deadline else None)
        except asyncio.TimeoutError:
            raise ApiError(504, f"the request took longer than {self.timeout:g} s (--timeout); ask for fewer "
                                "samples or tokens") from None


Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class GuardMiddleware:
    """Before any route: the API key for /v1 (constant-time compare; Bearer or X-API-Key) and the body cap. A
    body is read whole up to the cap, so an oversized one is a 413 however it is sent (chunked included)."""

    def __init__(self, app: Callable, api_key: str | None, max_body_bytes: int):
        self.app, self.api_key, self.max_body_bytes = app, api_key, max_body_bytes

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        if self.api_key is not None and scope["path"].startswith("/v1") and not self._authorised(headers):
            await _answer(send, 401, "a valid API key is needed: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                          {"WWW-Authenticate": "Bearer"})
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _answer(send, 413, self._too_large())
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_body_bytes:
                await _answer(send, 413, self._too_large())
                return
        body, sent = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()  # after the body: the client's disconnect, for streaming responses
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _authorised(self, headers: dict[str, str]) -> bool:
        given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode("utf-8"), self.api_key.encode("utf-8"))

    def _too_large(self) -> str:
        return f"the request body is over this server's limit of {self.max_body_bytes:,} bytes (--max-body-bytes)"


async def _answer(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = error_body(status, message)
    fields = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    fields += [(key.lower().encode("latin-1"), value.encode("latin-1")) for key, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": body})
