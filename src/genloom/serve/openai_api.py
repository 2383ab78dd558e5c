"""OpenAI-compatible text endpoints (/v1/models, /v1/completions, /v1/chat/completions), so existing clients,
the official `openai` package among them, can point base_url at a genloom text run.

Chat uses a plain role-tagged template: each message becomes a line "role: content", the prompt ends with
"assistant:", and the reply stops where the model starts a new "user:" or "system:" line."""
from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any, Callable, Iterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from ..errors import GenloomError
from .catalogue import RunCatalogue
from .limits import ApiError, InferenceSlots
from .schemas import ChatMessage, ChatRequest, CompletionRequest
from .settings import ServeSettings

CHAT_STOPS = ("\nuser:", "\nsystem:")
CREATED = int(time.time())  # OpenAI lists a model's creation time; a served run's is the server's start


def chat_prompt(messages: list[ChatMessage]) -> str:
    """The role-tagged prompt of a conversation, ending where the assistant's reply begins."""
    return "".join(f"{message.role}: {message.content}\n" for message in messages) + "assistant:"


def _stops(stop: str | list[str] | None, extra: tuple[str, ...] = ()) -> list[str]:
    return ([stop] if isinstance(stop, str) else list(stop or [])) + list(extra)


def _sse(payload: dict[str, Any] | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


class TextCompletions:
    """Runs completions of one request: n choices, each a seeded generation, with OpenAI's usage counts."""

    def __init__(self, catalogue: RunCatalogue, settings: ServeSettings, name: str, prompt: str, max_tokens: int,
                 temperature: float, top_p: float, top_k: int | None, stop: list[str], seed: int | None, n: int):
        if n > settings.max_samples:
            raise ApiError(400, f"n is {n}; this server makes at most {settings.max_samples} (--max-samples)")
        if max_tokens > settings.max_tokens:
            raise ApiError(400, f"max_tokens is {max_tokens}; this server generates at most {settings.max_tokens} "
                                "(--max-tokens)")
        kind = catalogue.summary(name).kind
        if kind != "text":
            raise ApiError(400, f"run {name!r} makes {kind} data; the completion endpoints serve text runs "
                                f"(POST /v1/runs/{name}/samples serves this one)")
        self.catalogue, self.name, self.prompt, self.n = catalogue, name, prompt, n
        self.options = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "top_k": top_k,
                        "stop": stop}
        self.seed = seed if seed is not None else int.from_bytes(uuid.uuid4().bytes[:4], "little")
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def streams(self) -> Iterator[tuple[int, Any]]:
        """(choice index, its TextStream) for each of the n choices, made one after the other."""
        model = self.catalogue.model(self.name)
        self.prompt_tokens = len(model.codec.encode(self.prompt)) if self.prompt else 0
        for index in range(self.n):
            yield index, model.generate(self.prompt, seed=self.seed + index, stream=True, **self.options)

    def whole(self) -> list[tuple[str, str]]:
        """(text, finish reason) of every choice."""
        choices = []
        for _, stream in self.streams():
            choices.append(("".join(stream), stream.finish_reason))
            self.completion_tokens += stream.tokens_generated
        return choices

    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens * self.n, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens * self.n + self.completion_tokens}


def add_openai_routes(app: FastAPI, catalogue: RunCatalogue, slots: InferenceSlots, settings: ServeSettings) -> None:
    """The OpenAI-compatible routes, on the app's slots and limits."""

    @app.get("/v1/models", tags=["openai"])
    def list_models() -> dict[str, Any]:
        """The served text runs, as OpenAI lists models."""
        text_runs = [name for name in catalogue.names() if catalogue.summary(name).kind == "text"]
        return {"object": "list",
                "data": [{"id": name, "object": "model", "created": CREATED, "owned_by": "genloom"}
                         for name in text_runs]}

    @app.post("/v1/completions", tags=["openai"])
    async def completions(request: CompletionRequest) -> Any:
        """Continue a prompt (or each of a list of prompts with n=1)."""
        prompts = [request.prompt] if isinstance(request.prompt, str) else request.prompt
        if len(prompts) != 1:
            raise ApiError(400, "send one prompt a request (a list of one is fine); concurrent requests are "
                                "decoded side by side")
        job = TextCompletions(catalogue, settings, request.model, prompts[0], request.max_tokens,
                              request.temperature, request.top_p, request.top_k, _stops(request.stop), request.seed,
                              request.n)
        meta = {"id": f"cmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": request.model}
        if request.stream:
            def chunk(index: int, text: str, finish: str | None) -> dict[str, Any]:
                return {**meta, "object": "text_completion",
                        "choices": [{"index": index, "text": text, "logprobs": None, "finish_reason": finish}]}
            return await _streamed(slots, job, chunk)
        choices = await slots.run(job.whole)
        return {**meta, "object": "text_completion", "usage": job.usage(),
                "choices": [{"index": index, "text": text, "logprobs": None, "finish_reason": finish}
                            for index, (text, finish) in enumerate(choices)]}

    @app.post("/v1/chat/completions", tags=["openai"])
    async def chat_completions(request: ChatRequest) -> Any:
        """Reply to a conversation, written with the role-tagged template (see the module's docstring)."""
        job = TextCompletions(catalogue, settings, request.model, chat_prompt(request.messages),
                              request.max_completion_tokens or request.max_tokens or 256, request.temperature,
                              request.top_p, None, _stops(request.stop, CHAT_STOPS), request.seed, request.n)
        meta = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": request.model}
        if request.stream:
            def chunk(index: int, text: str, finish: str | None) -> dict[str, Any]:
                delta = {"content": text} if finish is None else {}
                return {**meta, "object": "chat.completion.chunk",
                        "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}
            return await _streamed(slots, job, chunk, first={"role": "assistant", "content": ""})
        choices = await slots.run(job.whole)
        return {**meta, "object": "chat.completion", "usage": job.usage(),
                "choices": [{"index": index, "message": {"role": "assistant", "content": text.strip()},
                             "finish_reason": finish} for index, (text, finish) in enumerate(choices)]}


async def _streamed(slots: InferenceSlots, job: TextCompletions,
                    chunk: Callable[[int, str, str | None], dict[str, Any]],
                    first: dict[str, Any] | None = None) -> StreamingResponse:
    """Server-sent events: a chunk per piece of text, one with each choice's finish reason, then [DONE]. The
    model is loaded (and the prompt checked) before the response starts, so those errors are still 4xx."""
    streams = await slots.run(lambda: _started(job.streams()))
    slots.take()  # held while the events are made, on Starlette's worker thread

    def events() -> Iterator[str]:
        try:
            for index, stream in streams:
                if first is not None:
                    opening = chunk(index, "", None)
                    opening["choices"][0]["delta"] = first
                    yield _sse(opening)
                for piece in stream:
                    yield _sse(chunk(index, piece, None))
                yield _sse(chunk(index, "", stream.finish_reason))
            yield _sse("[DONE]")
        except GenloomError as error:  # a bad setting met mid-stream: the stream says so and ends
            yield _sse({"error": {"message": str(error), "type": "invalid_request_error", "code": 400}})
        finally:
            slots.give_back()

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _started(streams: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """The choices' streams with the first one already made: loading and prompt errors surface here."""
    first = next(streams)
    return itertools.chain([first], streams)
