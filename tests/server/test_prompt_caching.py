"""Anthropic prompt-cache hints through the gateway: what a Claude user marks with
``cache_control`` reaches an Anthropic upstream as they wrote it (a breakpoint lost is a prompt
billed at full price on every call), and other providers' requests carry nothing of it. Driven
by the official Anthropic SDK against a mock upstream that records the body it received."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from ..sdk.upstream import Reply, Upstream
from .conftest import Live
from .two_upstreams import answer, sent

HI: Any = [{"role": "user", "content": "hi"}]
EPHEMERAL = {"type": "ephemeral"}
ONE_HOUR = {"type": "ephemeral", "ttl": "1h"}
MESSAGE = {"id": "msg_up", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
           "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 10, "output_tokens": 5}}
COMPLETION = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": [
    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}]}


def tool(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "description": f"the {name} tool",
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}, **fields}


@pytest.fixture(scope="module")
def live(two_upstreams_live: Live) -> Live:
    return two_upstreams_live




def test_cache_control_on_a_tool_reaches_an_anthropic_upstream(live: Live, upstream: Upstream) -> None:
    """Marking the last tool caches the whole tool list: the breakpoint is sent where it was put."""
    client = live.anthropic()
    tools: Any = [tool("search"), tool("fetch", cache_control=ONE_HOUR)]
    upstream.queue(answer(MESSAGE))
    client.messages.create(model="anth/claude-sonnet-4-5", max_tokens=20, messages=HI, tools=tools)
    assert sent(upstream)["tools"] == tools
    upstream.queue(Reply(headers={"content-type": "text/event-stream"}, chunks=[
        f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in (
            {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None}},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
             "usage": {"output_tokens": 1}},
            {"type": "message_stop"})]))
    with client.messages.stream(model="anth/claude-sonnet-4-5", max_tokens=20, messages=HI, tools=tools) as s:
        s.get_final_message()
    assert sent(upstream)["tools"] == tools


def test_cache_control_on_a_tool_is_dropped_for_a_provider_without_it(live: Live, upstream: Upstream) -> None:
    upstream.queue(answer(COMPLETION))
    live.anthropic().messages.create(model="oai/gpt-4o", max_tokens=20, messages=HI,
                                     tools=[tool("fetch", cache_control=EPHEMERAL)])
    body = sent(upstream)
    assert [t["function"]["name"] for t in body["tools"]] == ["fetch"]
    assert "cache_control" not in json.dumps(body)


def test_a_cache_control_that_is_not_an_object_is_a_400(live: Live, upstream: Upstream) -> None:
    before = len(upstream.seen)
    with pytest.raises(anthropic.BadRequestError) as err:
        live.anthropic().messages.create(model="anth/claude-sonnet-4-5", max_tokens=20, messages=HI,
                                         tools=[tool("fetch", cache_control="ephemeral")])  # type: ignore[arg-type]
    assert "tools[0].cache_control" in str(err.value)
    assert len(upstream.seen) == before


def test_top_level_cache_control_reaches_an_anthropic_upstream(live: Live, upstream: Upstream) -> None:
    """Anthropic's automatic prompt caching (a top-level cache_control) is sent on as written, and
    not at all to a provider without it (an OpenAI upstream would refuse an unknown field)."""
    upstream.queue(answer(MESSAGE))
    live.anthropic().messages.create(model="anth/claude-sonnet-4-5", max_tokens=20, messages=HI,
                                     extra_body={"cache_control": ONE_HOUR})
    assert sent(upstream)["cache_control"] == ONE_HOUR
    upstream.queue(answer(MESSAGE))
    live.anthropic().messages.create(model="anth/claude-sonnet-4-5", max_tokens=20, messages=HI)
    assert "cache_control" not in sent(upstream)
    upstream.queue(answer(COMPLETION))
    live.anthropic().messages.create(model="oai/gpt-4o", max_tokens=20, messages=HI,
                                     extra_body={"cache_control": EPHEMERAL})
    assert "cache_control" not in json.dumps(sent(upstream))


def test_a_top_level_cache_control_that_is_not_an_object_is_a_400(live: Live, upstream: Upstream) -> None:
    before = len(upstream.seen)
    with pytest.raises(anthropic.BadRequestError) as err:
        live.anthropic().messages.create(model="anth/claude-sonnet-4-5", max_tokens=20, messages=HI,
                                         extra_body={"cache_control": "ephemeral"})
    assert "cache_control" in str(err.value) and "object" in str(err.value)
    assert len(upstream.seen) == before


def test_cache_control_on_tool_use_and_tool_result_reaches_an_anthropic_upstream(live: Live,
                                                                                  upstream: Upstream) -> None:
    """Claude Code's rolling breakpoint sits on the last block of the last turn, a tool_result in
    an agent loop: that mark, one on a tool_use and ones on blocks inside a tool_result (text,
    image, document) reach Anthropic where the client put them, so each turn reads the cache."""
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="
    messages: Any = [
        {"role": "user", "content": "read README.md"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "reading", "cache_control": EPHEMERAL},
            {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "README.md"},
             "cache_control": EPHEMERAL},
            {"type": "tool_use", "id": "toolu_2", "name": "Read", "input": {"path": "logo.png"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "cloverleaf is great",
             "cache_control": ONE_HOUR},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": [
                {"type": "text", "text": "the logo", "cache_control": EPHEMERAL},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png},
                 "cache_control": EPHEMERAL},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
                 "cache_control": ONE_HOUR}]}]}]
    upstream.queue(answer(MESSAGE))
    live.anthropic().messages.create(model="anth/claude-sonnet-4-5", max_tokens=20, messages=messages,
                                     tools=[tool("Read")])
    assistant, results = sent(upstream)["messages"][1:]
    assert [b.get("cache_control") for b in assistant["content"]] == [EPHEMERAL, EPHEMERAL, None]
    first, second = results["content"]
    assert first == {**messages[2]["content"][0], "is_error": False}
    assert "cache_control" not in second
    assert [b.get("cache_control") for b in second["content"]] == [EPHEMERAL, EPHEMERAL, ONE_HOUR]


def test_cache_control_on_tool_blocks_is_dropped_for_a_provider_without_it(live: Live, upstream: Upstream) -> None:
    messages: Any = [
        {"role": "user", "content": "read README.md"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "Read", "input": {},
                                           "cache_control": EPHEMERAL}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "great",
                                      "cache_control": EPHEMERAL}]}]
    upstream.queue(answer(COMPLETION))
    live.anthropic().messages.create(model="oai/gpt-4o", max_tokens=20, messages=messages, tools=[tool("Read")])
    body = sent(upstream)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool"]
    assert "cache_control" not in json.dumps(body)


def test_a_tool_results_cache_control_that_is_not_an_object_is_a_400(live: Live, upstream: Upstream) -> None:
    before = len(upstream.seen)
    messages: Any = [
        {"role": "user", "content": "read README.md"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "great",
                                      "cache_control": "ephemeral"}]}]
    with pytest.raises(anthropic.BadRequestError) as err:
        live.anthropic().messages.create(model="anth/claude-sonnet-4-5", max_tokens=20, messages=messages,
                                         tools=[tool("Read")])
    assert "messages[2].content[0].cache_control" in str(err.value)
    assert len(upstream.seen) == before


def test_the_openapi_document_describes_both_marks() -> None:
    from cloverleaf.server.openapi_schemas import MESSAGES_REQUEST

    props = MESSAGES_REQUEST["properties"]
    assert "cache_control" in props and MESSAGES_REQUEST["additionalProperties"] is False
    tool_schema = props["tools"]["anyOf"][0]["items"]   # nullable(arr(...))
    assert "cache_control" in tool_schema["properties"]
