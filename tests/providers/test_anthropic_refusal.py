"""Claude's refusal (``stop_reason: "refusal"``) is ``ChatResponse.refusal``, streamed or not, as an
OpenAI ``message.refusal`` is: a structured call then says the model refused, instead of a JSON
error about the refusal's words. Through the SDK, against a mock Messages API on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from cloverleaf import Client
from cloverleaf._errors import StructuredOutputError
from cloverleaf.providers.anthropic.parse import DECLINED
from tests.sdk.upstream import Reply, Upstream

MODEL = "anthropic/claude-sonnet-4-5"


class City(BaseModel):
    name: str


def message(text: str | None) -> bytes:
    content = [{"type": "text", "text": text}] if text is not None else []
    return json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                       "content": content, "stop_reason": "refusal", "stop_sequence": None,
                       "usage": {"input_tokens": 3, "output_tokens": 4}}).encode()


def stream(text: str) -> Reply:
    events = [
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                              "model": "claude-sonnet-4-5", "content": [],
                                              "usage": {"input_tokens": 3, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[:5]}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[5:]}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "refusal", "stop_sequence": None},
         "usage": {"output_tokens": 4}},
        {"type": "message_stop"},
    ]
    return Reply(headers={"content-type": "text/event-stream"},
                 chunks=[f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events])


@pytest.fixture
def client(upstream: Upstream) -> Iterator[Client]:
    with Client(env={}, max_retries=0) as c:
        yield c


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


def test_a_refusal_is_the_responses_refusal(client: Client, upstream: Upstream) -> None:
    upstream.queue(Reply(body=message("I can't help with that.")))
    resp = client.chat(MODEL, "x", base_url=upstream.url, api_key="k")
    assert resp.refusal == "I can't help with that." and resp.finish_reason == "content_filter"
    assert resp.text == "I can't help with that."


def test_a_structured_call_says_the_model_refused(client: Client, upstream: Upstream) -> None:
    upstream.queue(Reply(body=message("I can't help with that.")))
    with pytest.raises(StructuredOutputError, match="refused") as err:
        client.chat(MODEL, "x", response_format=City, base_url=upstream.url, api_key="k")
    assert err.value.response.refusal == "I can't help with that."


def test_a_refusal_without_words_still_says_so(client: Client, upstream: Upstream) -> None:
    upstream.queue(Reply(body=message(None)))
    assert client.chat(MODEL, "x", base_url=upstream.url, api_key="k").refusal == DECLINED


def test_a_streamed_refusal_is_the_responses_refusal(client: Client, upstream: Upstream) -> None:
    upstream.queue(stream("I can't help with that."))
    with pytest.raises(StructuredOutputError, match="refused"):
        s = client.stream(MODEL, "x", response_format=City, base_url=upstream.url, api_key="k")
        for _ in s:
            pass
        s.response.parsed  # noqa: B018 - parsing is what raises, wherever the stream does it
    upstream.queue(stream("I can't help with that."))
    s = client.stream(MODEL, "x", base_url=upstream.url, api_key="k")
    for _ in s:
        pass
    assert s.response.refusal == "I can't help with that."
