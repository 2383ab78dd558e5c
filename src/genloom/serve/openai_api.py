"""OpenAI-compatible text endpoints (/v1/models, /v1/completions, /v1/chat/completions), so existing clients,
the official `openai` package among them, can point base_url at a genloom text run.

Chat uses a plain role-tagged template: each message becomes a line "role: content", the prompt ends with
"assistant:", and the reply stops where the model starts a new "user:" or "system:" line."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, AsyncIterator, Callable

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from ..errors import GenloomError
from .catalogue import RunCatalogue
from .limits import ApiError
from .schemas import ChatMessage, ChatRequest, CompletionRequest
from .settings import ServeSettings
from .text_decoding import CompletionJob, Finished, TextDecoder, next_item, whole_choice

CHAT_STOPS = ("\nuser:", "\nsystem:")
CREATED = int(time.time())  # OpenAI lists a model's creation time; a served run's is the server's start
Chunk = Callable[[int, str, "str | None"], dict[str, Any]]


def chat_prompt(messages: list[ChatMessage]) -> str:
    """The role-tagged prompt of a conversation, ending where the assistant's reply begins."""
    return "".join(f"{message.role}: {message.content}\n" for message in messages) + "assistant:"


def _stops(stop: str | list[str] | None, extra: tuple[str, ...] = ()) -> list[str]:
    return ([stop] if isinstance(stop, str) else list(stop or [])) + list(extra)


def _sse(payload: dict[str, Any] | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


def _usage(job: CompletionJob, finished: list[Finished]) -> dict[str, int]:
    completion = sum(end.tokens for end in finished)
    return {"prompt_tokens": job.prompt_tokens * job.n, "completion_tokens": completion,
            "total_tokens": job.prompt_tokens * job.n + completion}


def _with_provenance(job: CompletionJob, route: str, body: dict[str, Any]) -> dict[str, Any]:
    """A completion body with its origin as a "provenance" field, as every JSON body genloom writes (the run, its
    configuration's SHA-256, the seed, and a digest of the rest of the body that `genloom provenance` checks);
    OpenAI's clients keep a field they do not know. A watermark is named, never its key."""
    from ..data.provenance import with_json_provenance

    record = job.model.provenance(seed=job.seed, samples=job.n, request=f"POST {route}",
                                  watermarked=bool(job.sampling.get("watermark")))
    return with_json_provenance(body, record)


def add_openai_routes(app: FastAPI, catalogue: RunCatalogue, decoder: TextDecoder, settings: ServeSettings) -> None:
    """The OpenAI-compatible routes, on the app's decoder and limits."""

    async def new_job(name: str, prompt: str, max_tokens: int, sampling: dict[str, Any], stop: list[str],
                      seed: int | None, n: int) -> CompletionJob:
        """A checked, started job: limits, the run's kind and the prompt's characters are 4xx before any work."""
        if n > settings.max_samples:
            raise ApiError(400, f"n is {n}; this server makes at most {settings.max_samples} (--max-samples)")
        if max_tokens > settings.max_tokens:
            raise ApiError(400, f"max_tokens is {max_tokens}; this server generates at most {settings.max_tokens} "
                                "(--max-tokens)")
        model = await asyncio.to_thread(catalogue.model, name)
        if model.codec.kind != "text":
            raise ApiError(400, f"run {name!r} makes {model.codec.kind} data; the completion endpoints serve text "
                                f"runs (POST /v1/runs/{name}/samples serves this one)")
        prompt_tokens = len(model.codec.encode(prompt)) if prompt else 1
        job = CompletionJob(model, name, prompt, prompt_tokens, n, max_tokens, sampling, stop, seed)
        decoder.start(job)
        return job

    async def answer(job: CompletionJob) -> tuple[list[tuple[str, str]], dict[str, int]]:
        """Every choice's (text, finish reason) and the usage, within the deadline."""
        try:
            choices = await asyncio.wait_for(asyncio.gather(*map(whole_choice, job.choices)),
                                             settings.timeout_seconds)
        except asyncio.TimeoutError:
            job.cancelled.set()
            raise ApiError(504, f"the completion took longer than {settings.timeout_seconds:g} s (--timeout); ask "
                                "for fewer tokens") from None
        return [(text, end.reason) for text, end in choices], _usage(job, [end for _, end in choices])

    @app.get("/v1/models", tags=["openai"])
    def list_models() -> dict[str, Any]:
        """The served text runs, as OpenAI lists models."""
        text_runs = [name for name in catalogue.names() if catalogue.summary(name).kind == "text"]
        return {"object": "list",
                "data": [{"id": name, "object": "model", "created": CREATED, "owned_by": "genloom"}
                         for name in text_runs]}

    @app.post("/v1/completions", tags=["openai"])
    async def completions(request: CompletionRequest) -> Any:
        """Continue a prompt (a list of one prompt is taken too)."""
        prompts = [request.prompt] if isinstance(request.prompt, str) else request.prompt
        if len(prompts) != 1:
            raise ApiError(400, "send one prompt a request (a list of one is fine); requests that arrive together "
                                "are decoded side by side")
        sampling = {"temperature": request.temperature, "top_p": request.top_p, "top_k": request.top_k,
                    "watermark": request.watermark or settings.watermark_key}
        job = await new_job(request.model, prompts[0], request.max_tokens, sampling, _stops(request.stop),
                            request.seed, request.n)
        meta = {"id": f"cmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": request.model}
        if request.stream:
            def chunk(index: int, text: str, finish: str | None) -> dict[str, Any]:
                return {**meta, "object": "text_completion",
                        "choices": [{"index": index, "text": text, "logprobs": None, "finish_reason": finish}]}
            return await _streamed(job, chunk)
        choices, usage = await answer(job)
        return _with_provenance(job, "/v1/completions", {
            **meta, "object": "text_completion", "usage": usage,
            "choices": [{"index": index, "text": text, "logprobs": None, "finish_reason": finish}
                        for index, (text, finish) in enumerate(choices)]})

    @app.post("/v1/chat/completions", tags=["openai"])
    async def chat_completions(request: ChatRequest) -> Any:
        """Reply to a conversation, written with the role-tagged template (see the module's docstring)."""
        sampling = {"temperature": request.temperature, "top_p": request.top_p, "top_k": None,
                    "watermark": request.watermark or settings.watermark_key}
        job = await new_job(request.model, chat_prompt(request.messages),
                            request.max_completion_tokens or request.max_tokens or 256, sampling,
                            _stops(request.stop, CHAT_STOPS), request.seed, request.n)
        meta = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": request.model}
        if request.stream:
            def chunk(index: int, text: str, finish: str | None) -> dict[str, Any]:
                delta = {"content": text} if finish is None else {}
                return {**meta, "object": "chat.completion.chunk",
                        "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}
            return await _streamed(job, chunk, opening={"role": "assistant", "content": ""})
        choices, usage = await answer(job)
        return _with_provenance(job, "/v1/chat/completions", {
            **meta, "object": "chat.completion", "usage": usage,
            "choices": [{"index": index, "message": {"role": "assistant", "content": text.strip()},
                         "finish_reason": finish} for index, (text, finish) in enumerate(choices)]})


async def _streamed(job: CompletionJob, chunk: Chunk, opening: dict[str, Any] | None = None) -> StreamingResponse:
    """Server-sent events: a chunk per piece of text, one with each choice's finish reason, then [DONE]. The
    first piece is awaited before the response starts, so an error in loading or in the prompt is still a 4xx;
    pieces that are ready together go out in one write."""
    first = await next_item(job.choices[0])

    async def events() -> AsyncIterator[str]:
        try:
            for index, queue in enumerate(job.choices):
                ready = [first] if index == 0 else [await next_item(queue)]
                if opening is not None:
                    start = chunk(index, "", None)
                    start["choices"][0]["delta"] = opening
                    yield _sse(start)
                while True:
                    while not queue.empty() and not isinstance(ready[-1], Finished):
                        ready.append(await next_item(queue))
                    finished = isinstance(ready[-1], Finished)
                    texts = ready[:-1] if finished else ready
                    written = "".join(_sse(chunk(index, text, None)) for text in texts)
                    if finished:
                        written += _sse(chunk(index, "", ready[-1].reason))
                    yield written
                    if finished:
                        break
                    ready = [await next_item(queue)]
            yield _sse("[DONE]")
        except GenloomError as error:  # a bad setting met mid-stream: the stream says so and ends
            yield _sse({"error": {"message": str(error), "type": "invalid_request_error", "code": 400}})
        finally:
            job.cancelled.set()  # the client may have left: stop making text nobody reads

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
