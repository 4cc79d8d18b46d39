"""A stream is complete at the provider's terminal event, whatever the connection does next.

An upstream (or a proxy in front of it) may send the whole answer, its usage and its terminal
event (OpenAI's ``[DONE]``, Anthropic's ``message_stop``, Responses' ``response.completed``,
Bedrock's ``messageStop`` and ``metadata``, Ollama's ``done: true``, Gemini's chunk carrying
``finishReason`` with the usage, its last: Gemini has no terminal event) and then close the
connection without the chunked body's closing ``0`` chunk, or keep it open sending nothing.
The official SDKs stop reading at the terminal event and return the answer; so must every
path here (sync, and async on each HTTP client), at the usage the upstream reported, without
waiting for the idle timeout. The upstream is a real HTTP server on 127.0.0.1 (``upstream.py``)
writing exactly those bytes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloverleaf import AsyncClient, Client
from tests.wire import cassette

from .upstream import Reply, Upstream

pytest.importorskip("httptools")


def _sse(*events: tuple[str | None, Any]) -> bytes:
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        out.append(f"{head}data: {data if isinstance(data, str) else json.dumps(data)}\n\n")
    return "".join(out).encode()


def _openai_chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
                  usage: dict[str, int] | None = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                             "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}
    if usage is not None:
        chunk["choices"], chunk["usage"] = [], usage
    return chunk


OPENAI = _sse((None, _openai_chunk({"content": "Good"})), (None, _openai_chunk({"content": " answer"})),
              (None, _openai_chunk(finish="stop")),
              (None, _openai_chunk(usage={"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})),
              (None, "[DONE]"))

ANTHROPIC = _sse(
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
        "stop_reason": None, "usage": {"input_tokens": 5, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Good"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": " answer"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}),
    ("message_stop", {"type": "message_stop"}),
)

_RESPONSE = {"id": "resp_1", "object": "response", "model": "gpt-4o", "status": "in_progress", "output": []}
RESPONSES = _sse(
    ("response.created", {"type": "response.created", "response": _RESPONSE}),
    ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": {
        "id": "msg_1", "type": "message", "role": "assistant", "status": "in_progress", "content": []}}),
    ("response.output_text.delta", {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
                                    "content_index": 0, "delta": "Good"}),
    ("response.output_text.delta", {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
                                    "content_index": 0, "delta": " answer"}),
    ("response.completed", {"type": "response.completed", "response": {
        **_RESPONSE, "status": "completed",
        "output": [{"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": "Good answer", "annotations": []}]}],
        "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8}}}),
)

OLLAMA = b"".join(json.dumps(line).encode() + b"\n" for line in (
    {"model": "llama3.1", "message": {"role": "assistant", "content": "Good"}, "done": False},
    {"model": "llama3.1", "message": {"role": "assistant", "content": " answer"}, "done": False},
    {"model": "llama3.1", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
     "prompt_eval_count": 5, "eval_count": 3},
))

#: A real ConverseStream answer: messageStop, then the metadata frame with the usage.
BEDROCK = cassette("pydantic-ai/tests/models/cassettes/test_bedrock/test_bedrock_model_stream.yaml")[0].response.body

#: A real streamGenerateContent answer: no terminal event, its last chunk carries finishReason and the usage.
GEMINI = cassette("pydantic-ai/tests/models/cassettes/test_google/test_google_model_stream.yaml")[0].response.body

#: provider -> (model id, body, text, (input tokens, output tokens))
CASES: dict[str, tuple[str, bytes, str, tuple[int, int]]] = {
    "openai": ("openai/gpt-4o", OPENAI, "Good answer", (5, 3)),
    "anthropic": ("anthropic/claude-sonnet-4-5", ANTHROPIC, "Good answer", (5, 3)),
    "openai-responses": ("openai-responses/gpt-4o", RESPONSES, "Good answer", (5, 3)),
    "ollama": ("ollama/llama3.1", OLLAMA, "Good answer", (5, 3)),
    "bedrock": ("bedrock/us.amazon.nova-micro-v1:0", BEDROCK, "The capital of France is Paris.", (13, 82)),
    "gemini": ("gemini/gemini-2.0-flash", GEMINI, "The capital of France is Paris.", (13, 8)),
}
CONTENT_TYPES = {"ollama": "application/x-ndjson", "bedrock": "application/vnd.amazon.eventstream"}


@pytest.fixture(params=["close", "hang"])
def end(request: pytest.FixtureRequest) -> str:
    """What the upstream does after the answer instead of ending the body: closes, or stalls."""
    return str(request.param)


def _queue(upstream: Upstream, provider: str, end: str, times: int) -> None:
    headers = {"content-type": CONTENT_TYPES.get(provider, "text/event-stream")}
    upstream.queue(*[Reply(headers=headers, chunks=[CASES[provider][1]], end=end) for _ in range(times)])


#: Not the default 30 s: a regression fails in seconds (a ReadTimeout), never by being slow.
SETTINGS: dict[str, Any] = {"max_retries": 0, "idle_timeout": 5.0,
                            "env": {"AWS_BEARER_TOKEN_BEDROCK": "bk-test", "AWS_REGION": "us-east-1"}}


def _check(provider: str, response: Any, texts: list[str]) -> None:
    _, _, text, (tokens_in, tokens_out) = CASES[provider]
    assert "".join(texts) == response.text and response.text.startswith(text)
    assert response.finish_reason == "stop"
    # the usage that came before the terminal event (Bedrock: the metadata frame after messageStop)
    assert (response.usage.input_tokens, response.usage.output_tokens) == (tokens_in, tokens_out)


@pytest.mark.parametrize("provider", list(CASES))
def test_sync_stream_ends_at_the_terminal_event(provider: str, end: str, upstream: Upstream) -> None:
    _queue(upstream, provider, end, 2)
    with Client(**SETTINGS) as client:
        stream = client.stream(CASES[provider][0], "hi", base_url=upstream.url, api_key="k")
        texts = [ev.text or "" for ev in stream if ev.type == "text"]
        _check(provider, stream.until_done(), texts)
        # the connection left before its body ended is not pooled: the next call opens its own
        again = client.stream(CASES[provider][0], "hi", base_url=upstream.url, api_key="k").until_done()
        assert again.text == "".join(texts)
    assert len(upstream.seen) == 2


@pytest.mark.parametrize("http_client", ["h1", "httpx", "aiohttp"])
@pytest.mark.parametrize("provider", list(CASES))
async def test_async_stream_ends_at_the_terminal_event(provider: str, http_client: str, end: str,
                                                       upstream: Upstream) -> None:
    _queue(upstream, provider, end, 2)
    async with AsyncClient(http_client=http_client, **SETTINGS) as client:
        stream = client.stream(CASES[provider][0], "hi", base_url=upstream.url, api_key="k")
        texts = [ev.text or "" async for ev in stream if ev.type == "text"]
        _check(provider, await stream.until_done(), texts)
        # the connection left before its body ended is not pooled: the next call opens its own
        again = await client.stream(CASES[provider][0], "hi", base_url=upstream.url, api_key="k").until_done()
        assert again.text == "".join(texts)
    assert len(upstream.seen) == 2


@pytest.mark.parametrize("http_client", ["h1", "httpx", "aiohttp"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_body_that_ends_a_moment_after_the_terminal_event_keeps_its_connection(
        provider: str, http_client: str, upstream: Upstream) -> None:
    """The closing chunk often arrives a packet behind the terminal event: the async path (the
    gateway's) waits a moment for it, so the connection is pooled and the next stream reuses it
    instead of opening a new one (a TLS handshake to a real provider)."""
    _queue(upstream, provider, "late", 3)
    async with AsyncClient(http_client=http_client, **SETTINGS) as client:
        for _ in range(3):
            response = await client.stream(CASES[provider][0], "hi", base_url=upstream.url, api_key="k").until_done()
            assert response.text == CASES[provider][2]
    assert len(upstream.seen) == 3 and len({seen.peer for seen in upstream.seen}) == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_a_sync_stream_reads_the_tail_and_keeps_its_connection(provider: str, upstream: Upstream) -> None:
    """The sync path too: the closing chunk a packet behind the terminal event is read (each read
    bounded by TAIL_GRACE_SECONDS), so the connection is pooled and the next stream reuses it
    rather than opening a new one (a TLS handshake to a real provider)."""
    _queue(upstream, provider, "late", 3)
    with Client(**SETTINGS) as client:
        for _ in range(3):
            response = client.stream(CASES[provider][0], "hi", base_url=upstream.url, api_key="k").until_done()
            assert response.text.startswith(CASES[provider][2])
    assert len(upstream.seen) == 3 and len({seen.peer for seen in upstream.seen}) == 1
