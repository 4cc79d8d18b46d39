"""A Gemini 3 tool loop through the server, with clients that keep only a call's id, name and arguments.

Gemini 3 refuses a turn whose function call comes back without its ``thoughtSignature``. The
signature reaches the client inside the call's id (and, on Chat Completions, as Google's own
``extra_content.google.thought_signature``), and comes back to Gemini from either; after a
fallback the other provider sees only the original id. Turn 1 replays a recorded Gemini 3
answer (pydantic-ai's cassette, a real signature) from a mock upstream; the official OpenAI and
Anthropic SDKs are the clients.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings
from tests.wire import cassette

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

RECORDED = cassette("pydantic-ai/tests/models/cassettes/test_google/test_google_streaming_tool_call_thought_signature.yaml")[0]
CHUNKS = [json.loads(c.removeprefix(b"data: ")) for c in RECORDED.response.body.split(b"\r\n\r\n") if c.strip()]
SIGNATURE = CHUNKS[0]["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
MODEL = "gem/gemini-3-pro-preview"
ANSWER = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Mexico."}]}, "finishReason": "STOP"}],
          "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 2, "totalTokenCount": 22},
          "modelVersion": "gemini-3-pro-preview"}
TOOLS = [{"type": "function", "function": {"name": "get_country", "parameters": {"type": "object", "properties": {}}}}]
ANTHROPIC_TOOLS = [{"name": "get_country", "input_schema": {"type": "object", "properties": {}}}]
ASK = [{"role": "user", "content": "What is the country?"}]


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    providers = {"gem": ProviderSettings("gem", kind="gemini", base_url=upstream.url, api_key="gk-mock"),
                 "oai": ProviderSettings("oai", kind="openai", base_url=upstream.url, api_key="sk-mock")}
    routes = {"agent": {"targets": [MODEL, "oai/gpt-4o"]}}
    server = start_live(settings(providers=providers, routes=routes))
    yield server
    stop_live(server)


@pytest.fixture(autouse=True)
def fresh_queue(upstream: Upstream) -> None:
    with upstream.lock:
        upstream.replies.clear()


def _recorded_turn(stream: bool) -> Reply:
    if stream:
        return Reply(headers={"content-type": "text/event-stream"}, chunks=[RECORDED.response.body])
    whole = {**CHUNKS[0], "candidates": [{**CHUNKS[0]["candidates"][0], "finishReason": "STOP"}],
             "usageMetadata": CHUNKS[-1]["usageMetadata"]}
    return Reply(body=json.dumps(whole).encode())


def _sent_call(upstream: Upstream) -> dict[str, Any]:
    """The functionCall part of the model turn the gateway sent Gemini on turn 2."""
    contents = json.loads(upstream.seen[-1].body)["contents"]
    [part] = [p for c in contents if c["role"] == "model" for p in c["parts"] if "functionCall" in p]
    return part  # type: ignore[no-any-return]


@pytest.mark.parametrize("stream", [False, True])
def test_an_openai_client_that_keeps_id_name_and_arguments_gets_the_signature_back(
        live: Live, upstream: Upstream, stream: bool) -> None:
    client = live.openai()
    upstream.queue(_recorded_turn(stream), Reply(body=json.dumps(ANSWER).encode()))
    if stream:
        chunks = list(client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS, stream=True))
        [delta] = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or ()]
        call_id, name, extra = delta.id, delta.function.name, delta.model_extra.get("extra_content")
    else:
        [call] = client.chat.completions.create(model=MODEL, messages=ASK, tools=TOOLS).choices[0].message.tool_calls
        call_id, name, extra = call.id, call.function.name, call.model_extra.get("extra_content")
    assert extra == {"google": {"thought_signature": SIGNATURE}}   # Google's own OpenAI-compatible field
    rebuilt = {"role": "assistant", "content": None,   # what an agent keeps: id, name, arguments
               "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}]}
    answer = client.chat.completions.create(
        model=MODEL, tools=TOOLS, messages=[*ASK, rebuilt, {"role": "tool", "tool_call_id": call_id, "content": "Mexico"}])
    assert answer.choices[0].message.content == "Mexico."
    sent = _sent_call(upstream)
    assert sent["thoughtSignature"] == SIGNATURE
    original = sent["functionCall"]["id"]
    assert "__thsig_" not in original and call_id.startswith(original)
    response = [p for c in json.loads(upstream.seen[-1].body)["contents"] for p in c["parts"] if "functionResponse" in p]
    assert response[0]["functionResponse"]["id"] == original


@pytest.mark.parametrize("stream", [False, True])
def test_an_anthropic_client_gets_the_signature_back_in_a_valid_tool_use_id(
        live: Live, upstream: Upstream, stream: bool) -> None:
    client = live.anthropic()
    upstream.queue(_recorded_turn(stream), Reply(body=json.dumps(ANSWER).encode()))
    if stream:
        with client.messages.stream(model=MODEL, max_tokens=100, messages=ASK, tools=ANTHROPIC_TOOLS) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(model=MODEL, max_tokens=100, messages=ASK, tools=ANTHROPIC_TOOLS)
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", use.id)   # Anthropic's tool_use id pattern
    # the signature's bytes ride in the id, not a second base64 of its text
    assert len(use.id) < len(SIGNATURE) + 60
    turn = [*ASK, {"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Mexico"}]}]
    answer = client.messages.create(model=MODEL, max_tokens=100, messages=turn, tools=ANTHROPIC_TOOLS)
    assert answer.content[0].text == "Mexico."  # type: ignore[union-attr]
    assert _sent_call(upstream)["thoughtSignature"] == SIGNATURE


def test_after_a_fallback_the_other_provider_sees_the_original_id(live: Live, upstream: Upstream) -> None:
    client = live.anthropic()
    upstream.queue(_recorded_turn(False))
    first = client.messages.create(model="agent", max_tokens=100, messages=ASK, tools=ANTHROPIC_TOOLS)
    [use] = [b for b in first.content if b.type == "tool_use"]
    unavailable = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    done = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Mexico."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}}
    upstream.queue(Reply(status=503, body=json.dumps(unavailable).encode()), Reply(body=json.dumps(done).encode()))
    turn = [*ASK, {"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Mexico"}]}]
    answer = client.messages.create(model="agent", max_tokens=100, messages=turn, tools=ANTHROPIC_TOOLS)
    assert answer.content[0].text == "Mexico."  # type: ignore[union-attr]
    sent = json.loads(upstream.seen[-1].body)
    assert upstream.seen[-1].path.endswith("/chat/completions")
    [assistant] = [m for m in sent["messages"] if m["role"] == "assistant"]
    [tool] = [m for m in sent["messages"] if m["role"] == "tool"]
    original = assistant["tool_calls"][0]["id"]
    assert "__thsig_" not in original and use.id.startswith(original) and tool["tool_call_id"] == original
