"""A streamed ``/v1/chat/completions`` answer carries what the same answer carries whole: the
``url_citation`` annotations of its web sources (an OpenAI-compatible search model's, Claude's web
search citations, Gemini's grounding) and the images the model made (Gemini's, in ``images`` as
OpenRouter answers them). Streamed, both were lost. Each test serves one answer both ways from a
mock upstream behind a live server, recorded shapes where the wire collection has them, and reads
it with the official ``openai`` SDK three ways: whole, chunk by chunk, and through the SDK's own
stream helper (``chat.completions.stream()``), which joins the chunks into one message."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings
from tests.providers.test_gemini_answer_extras import GROUNDING, USAGE
from tests.wire import cassette

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

ASK: Any = [{"role": "user", "content": "hi"}]
SSE = {"content-type": "text/event-stream"}
OPENROUTER_STREAM = "pydantic-ai/tests/models/cassettes/test_openrouter/test_openrouter_web_search_annotations_stream.yaml"
CLAUDE_STREAM = "pydantic-ai/tests/models/cassettes/test_anthropic/test_anthropic_model_web_search_tool_stream.yaml"


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    providers = {"gem": ProviderSettings("gem", kind="gemini", base_url=upstream.url, api_key="gk-mock"),
                 "oai": ProviderSettings("oai", kind="openai", base_url=upstream.url, api_key="sk-mock"),
                 "claude": ProviderSettings("claude", kind="anthropic", base_url=upstream.url, api_key="sk-ant-mock")}
    server = start_live(settings(providers=providers))
    yield server
    stop_live(server)


@pytest.fixture(autouse=True)
def fresh_queue(upstream: Upstream) -> None:
    with upstream.lock:
        upstream.replies.clear()


def _three_ways(live: Live, upstream: Upstream, model: str, whole: Reply, streamed: Reply,
                key: str) -> tuple[Any, Any, Any]:
    """The message's ``key`` as the whole answer has it, as the chunks' deltas carry it (joined),
    and as the SDK's stream helper assembles it."""
    client = live.openai()
    upstream.queue(whole)
    message = client.chat.completions.with_raw_response.create(model=model, messages=ASK).http_response.json()
    upstream.queue(streamed)
    chunks = list(client.chat.completions.create(model=model, messages=ASK, stream=True))
    from_chunks = [item for c in chunks if c.choices for item in (c.choices[0].delta.model_extra or {}).get(key) or ()]
    assert sum(1 for c in chunks if c.choices and (c.choices[0].delta.model_extra or {}).get(key)) == 1
    upstream.queue(streamed)
    with client.chat.completions.stream(model=model, messages=ASK) as stream:
        helper = stream.get_final_completion().choices[0].message.to_dict().get(key)
    return message["choices"][0]["message"].get(key), from_chunks, helper


# --------------------------------------------------------------------------- images


def _png(n: int) -> str:
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes([n]) * 16).decode()


def test_generated_images_stream_as_the_whole_answer_has_them(live: Live, upstream: Upstream) -> None:
    """Gemini answers text, an image, more text and another image: whole, ``message.images``; streamed,
    the images were missing from the chunks."""
    parts = [[{"text": "Here is a cat:"}, {"inlineData": {"mimeType": "image/png", "data": _png(1)}}],
             [{"text": " and a dog:"}, {"inlineData": {"mimeType": "image/jpeg", "data": _png(2)}}]]
    chunks = [{"candidates": [{"content": {"role": "model", "parts": p}}]} for p in parts]
    chunks[-1]["candidates"][0]["finishReason"] = "STOP"
    chunks[-1]["usageMetadata"] = USAGE
    whole = {**chunks[-1], "candidates": [{**chunks[-1]["candidates"][0],
                                           "content": {"role": "model", "parts": parts[0] + parts[1]}}]}
    sse = b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)
    images = _three_ways(live, upstream, "gem/gemini-2.5-flash-image", Reply(body=json.dumps(whole).encode()),
                         Reply(headers=SSE, chunks=[sse]), "images")
    assert images[0] == [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + _png(1)}},
                         {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + _png(2)}}]
    assert images[1] == images[2] == images[0]


# --------------------------------------------------------------------------- web sources


def _chunk_data(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in body.decode().splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


def _openrouter_whole(body: bytes) -> dict[str, Any]:
    """The recorded stream's answer as one chat.completion: its content joined, its annotations in order."""
    chunks = _chunk_data(body)
    deltas = [c["choices"][0]["delta"] for c in chunks if c.get("choices")]
    message = {"role": "assistant", "content": "".join(d.get("content") or "" for d in deltas),
               "annotations": [a for d in deltas for a in d.get("annotations") or ()]}
    return {"id": chunks[0]["id"], "object": "chat.completion", "created": chunks[0]["created"],
            "model": chunks[0]["model"], "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": chunks[-1]["usage"]}


def test_url_citations_of_a_recorded_stream_are_its_annotations(live: Live, upstream: Upstream) -> None:
    """OpenRouter's recorded web-search stream sends each ``url_citation`` in a chunk of its own."""
    body = cassette(OPENROUTER_STREAM)[0].response.body
    whole = _openrouter_whole(body)
    got = _three_ways(live, upstream, "oai/deepseek/deepseek-chat", Reply(body=json.dumps(whole).encode()),
                      Reply(headers=SSE, chunks=[body]), "annotations")
    recorded = whole["choices"][0]["message"]["annotations"]
    assert len(recorded) > 1
    assert got[0] == [{"type": "url_citation", "url_citation": {k: a["url_citation"][k] for k in (
        "url", "title", "start_index", "end_index")}} for a in recorded]
    assert got[1] == got[2] == got[0]


def _claude_whole(body: bytes) -> dict[str, Any]:
    """The recorded Messages stream's answer as the one message the API would have answered."""
    events = _chunk_data(body)
    message = dict(next(e["message"] for e in events if e["type"] == "message_start"))
    blocks: dict[int, dict[str, Any]] = {}
    inputs: dict[int, str] = {}
    for e in events:
        if e["type"] == "content_block_start":
            blocks[e["index"]] = dict(e["content_block"])
        elif e["type"] == "content_block_delta":
            block, delta = blocks[e["index"]], e["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "citations_delta":
                block["citations"] = [*(block.get("citations") or ()), delta["citation"]]
            elif delta["type"] == "input_json_delta":
                inputs[e["index"]] = inputs.get(e["index"], "") + delta["partial_json"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
        elif e["type"] == "message_delta":
            message.update(e["delta"])
            message["usage"] = {**message["usage"], **e["usage"]}
    for index, raw in inputs.items():
        blocks[index]["input"] = json.loads(raw)
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return message


def test_claude_web_search_citations_stream_as_whole(live: Live, upstream: Upstream) -> None:
    """Claude's recorded web-search stream: each citation comes before the text it cites, so its span
    is known only once that text has come; streamed and whole, the same annotations."""
    body = cassette(CLAUDE_STREAM)[0].response.body
    got = _three_ways(live, upstream, "claude/claude-sonnet-4-0", Reply(body=json.dumps(_claude_whole(body)).encode()),
                      Reply(headers=SSE, chunks=[body]), "annotations")
    assert len(got[0]) == sum(1 for e in _chunk_data(body) if e.get("delta", {}).get("type") == "citations_delta")
    assert all(a["type"] == "url_citation" and a["url_citation"]["url"].startswith("https://") for a in got[0])
    assert got[1] == got[2] == got[0]


def test_gemini_grounding_streams_as_whole(live: Live, upstream: Upstream) -> None:
    """Gemini's grounding supports, sent with the last chunk, cite the text that came before."""
    chunks = [{"candidates": [{"content": {"role": "model", "parts": [{"text": "Spain won Euro 2024, "}]}}]},
              {"candidates": [{"content": {"role": "model", "parts": [{"text": "beating England 2-1."}]},
                               "finishReason": "STOP", "groundingMetadata": GROUNDING}], "usageMetadata": USAGE}]
    whole = {**chunks[1], "candidates": [{**chunks[1]["candidates"][0], "content": {"role": "model", "parts": [
        {"text": "Spain won Euro 2024, beating England 2-1."}]}}]}
    sse = b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)
    got = _three_ways(live, upstream, "gem/gemini-2.5-flash", Reply(body=json.dumps(whole).encode()),
                      Reply(headers=SSE, chunks=[sse]), "annotations")
    assert [a["url_citation"]["title"] for a in got[0]] == ["aljazeera.com", "uefa.com"]
    assert got[1] == got[2] == got[0]
