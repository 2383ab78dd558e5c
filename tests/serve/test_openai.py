"""The official `openai` client, pointed at a real server on loopback, gets what `model.generate` gives for the
same settings: plain and streamed, completions and chat, with usage counts."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

import genloom as gl
from genloom.data.provenance import check_provenance
from genloom.serve.catalogue import RunCatalogue
from genloom.serve.openai_api import chat_prompt
from genloom.serve.schemas import ChatMessage
from tests.serve.conftest import client_of


@pytest.fixture(scope="module")
def client(live_server):
    return openai.OpenAI(base_url=f"{live_server}/v1", api_key="not-needed-on-loopback", max_retries=0)


SETTINGS = {"max_tokens": 24, "temperature": 0.7, "top_p": 0.9, "seed": 5}


def test_completions_are_the_models_generations(client, served):
    response = client.completions.create(model="shakespeare", prompt="ROMEO:", **SETTINGS)
    expected = gl.load(served / "shakespeare").generate("ROMEO:", **SETTINGS)
    assert response.choices[0].text == expected and response.choices[0].finish_reason == "length"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (6, 24)
    assert [model.id for model in client.models.list()] == ["shakespeare"]


def test_streamed_completions_and_several_choices(client, served):
    model = gl.load(served / "shakespeare")
    pieces = [chunk.choices[0].text for chunk in
              client.completions.create(model="shakespeare", prompt="ROMEO:", stream=True, **SETTINGS)]
    assert len(pieces) > 2 and "".join(pieces) == model.generate("ROMEO:", **SETTINGS)
    two = client.completions.create(model="shakespeare", prompt="ROMEO:", n=2, **SETTINGS)
    assert [choice.text for choice in two.choices] == [model.generate("ROMEO:", **{**SETTINGS, "seed": seed})
                                                       for seed in (5, 6)]


def test_chat_uses_the_role_tagged_template(client, served):
    messages = [{"role": "system", "content": "Speak as in a play."}, {"role": "user", "content": "Who art thou?"}]
    prompt = chat_prompt([ChatMessage(**message) for message in messages])
    assert prompt == "system: Speak as in a play.\nuser: Who art thou?\nassistant:"
    expected = gl.load(served / "shakespeare").generate(prompt, stop=["\nuser:", "\nsystem:"], **SETTINGS)
    reply = client.chat.completions.create(model="shakespeare", messages=messages, **SETTINGS)
    assert reply.choices[0].message.role == "assistant" and reply.choices[0].message.content == expected.strip()
    streamed = client.chat.completions.create(model="shakespeare", messages=messages, stream=True, **SETTINGS)
    chunks = list(streamed)
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason is not None
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == expected


def test_a_completion_body_carries_its_provenance_which_checks_out(client, tmp_path):
    raw = client.completions.with_raw_response.create(model="shakespeare", prompt="ROMEO:", **SETTINGS)
    response = raw.parse()
    record = response.model_extra["provenance"]  # the client keeps the field it does not know
    assert (record["run"], record["seed"], record["request"], record["watermarked"]) == (
        "shakespeare", 5, "POST /v1/completions", False)
    saved = tmp_path / "completion.json"
    saved.write_text(raw.text)  # the body as it came
    assert check_provenance(saved)[1]
    edited = json.loads(raw.text)
    edited["choices"][0]["text"] += " (edited)"
    saved.write_text(json.dumps(edited))
    assert not check_provenance(saved)[1]
    chat = client.chat.completions.create(model="shakespeare", messages=[{"role": "user", "content": "Hi"}],
                                          **SETTINGS)
    assert chat.model_extra["provenance"]["request"] == "POST /v1/chat/completions"


def test_errors_reach_the_client_as_its_exceptions(client):
    with pytest.raises(openai.NotFoundError, match="no run named 'nobody'"):
        client.completions.create(model="nobody", prompt="a")
    with pytest.raises(openai.BadRequestError, match="makes image data"):
        client.completions.create(model="digits", prompt="a")


def test_a_stream_never_blocks_other_requests(live_server):
    """While a long completion streams, the server still answers: inference runs off the event loop."""
    with httpx.Client(timeout=60) as http:
        with http.stream("POST", f"{live_server}/v1/completions", json={"model": "shakespeare", "prompt": "A",
                                                                   "max_tokens": 2000, "stream": True}) as stream:
            next(stream.iter_lines())
            started = time.perf_counter()
            assert http.get(f"{live_server}/healthz").status_code == 200
            assert time.perf_counter() - started < 5


def test_unseeded_completions_that_arrive_together_decode_side_by_side(live_server):
    before = httpx.get(f"{live_server}/healthz").json()["batching"]["text"]

    def complete(max_tokens: int) -> dict:  # prompts of 1 to 6 characters: different token lengths pool too
        body = {"model": "shakespeare", "prompt": "KING: "[:max_tokens // 5], "max_tokens": max_tokens,
                "temperature": 0.9}
        return httpx.post(f"{live_server}/v1/completions", json=body, timeout=60).json()

    with ThreadPoolExecutor(6) as clients:
        answers = list(clients.map(complete, [5, 10, 15, 20, 25, 30]))
    assert [answer["usage"]["completion_tokens"] for answer in answers] == [5, 10, 15, 20, 25, 30]
    assert len({answer["choices"][0]["text"][:5] for answer in answers}) > 1  # each row its own draw
    after = httpx.get(f"{live_server}/healthz").json()["batching"]["text"]
    assert after["requests"] - before["requests"] == 6 and after["batches"] - before["batches"] < 6


def test_a_completion_asked_with_a_watermark_carries_it(client, served):
    model = gl.load(served / "shakespeare")
    marked = client.completions.create(model="shakespeare", prompt="", max_tokens=200, seed=1,
                                       extra_body={"watermark": "k1"}).choices[0].text
    assert marked == model.generate("", max_tokens=200, seed=1, watermark="k1")
    assert model.detect_watermark(marked, "k1").watermarked
    with pytest.raises(openai.UnprocessableEntityError, match="at least 1 character"):
        client.completions.create(model="shakespeare", prompt="", max_tokens=4, extra_body={"watermark": ""})


def test_a_servers_watermark_key_marks_every_completion(served):
    with client_of(RunCatalogue([served]), watermark_key="server key") as server:
        body = {"model": "shakespeare", "prompt": "", "max_tokens": 200, "seed": 2}
        text = server.post("/v1/completions", json=body).json()["choices"][0]["text"]
        own = server.post("/v1/completions", json={**body, "watermark": "own"}).json()["choices"][0]["text"]
    model = gl.load(served / "shakespeare")
    assert text == model.generate("", max_tokens=200, seed=2, watermark="server key")
    assert own == model.generate("", max_tokens=200, seed=2, watermark="own")  # the request's key wins
