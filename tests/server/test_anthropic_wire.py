"""anthropic_wire: Messages request parsing and rendering, checked with the official SDK's
types and its own stream accumulator (the code Anthropic SDK clients run on our stream)."""

from __future__ import annotations

import base64
import json

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message as AnthropicMessage
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from cloverleaf._documents import plain_parts
from cloverleaf._types import (
    Attachment,
    ChatResponse,
    Document,
    Reasoning,
    ResponseMetadata,
    Role,
    StreamEvent,
    Text,
    ToolCall,
    ToolResult,
    Usage,
)
from cloverleaf.attachments import AttachmentPolicy, resolve
from cloverleaf.server import anthropic_wire as aw
from cloverleaf.server.anthropic_stream import MessageStreamEncoder
from cloverleaf.server.errors import BadRequest

PDF = b"%PDF-1.4 tiny"


def test_parse_full_messages_request() -> None:
    body = {
        "model": "fake/echo",
        "max_tokens": 256,
        "system": [{"type": "text", "text": "be terse", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "read this"},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                "data": base64.b64encode(PDF).decode()}, "title": "doc"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig=="},
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "found", "is_error": False},
                {"type": "text", "text": "and now?"},
            ]},
        ],
        "tools": [{"name": "lookup", "description": "search", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "stop_sequences": ["END"],
        "temperature": 0.2,
        "metadata": {"user_id": "u-1"},
        "stream": True,
    }
    req = aw.parse_messages_request(body)
    roles = [m.role for m in req.messages]
    assert roles == [Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.TOOL, Role.USER]
    assert req.messages[0].content == "be terse"
    assert isinstance(req.messages[0].parts[0], Text) and req.messages[0].parts[0].cache_control == {"type": "ephemeral"}
    doc, img = req.messages[1].parts[1], req.messages[1].parts[2]
    assert isinstance(doc, Document) and doc.title == "doc"
    assert isinstance(doc.content, Attachment) and not doc.content.resolved  # passed on unread, resolved by the engine
    loaded = resolve(doc.content, policy=AttachmentPolicy(allow_local_paths=False))
    assert (loaded.type, loaded.media_type, loaded.data) == ("pdf", "application/pdf", PDF)
    assert isinstance(img, Attachment) and img.source == "https://example.com/a.png"
    thinking, text, call = req.messages[2].parts
    assert isinstance(thinking, Reasoning) and thinking.signature == "sig=="
    assert isinstance(text, Text) and isinstance(call, ToolCall) and call.arguments == {"q": "x"}
    result = req.messages[3].parts[0]
    assert isinstance(result, ToolResult) and (result.tool_call_id, result.content) == ("toolu_1", "found")
    assert req.messages[4].content == "and now?"
    assert req.tool_choice is not None and req.tool_choice.mode == "required" and req.parallel_tool_calls is False
    assert req.reasoning is not None and req.reasoning.budget_tokens == 1024
    assert (req.max_tokens, req.stop, req.temperature, req.user, req.stream) == (256, ["END"], 0.2, "u-1", True)


def test_structured_output_config() -> None:
    req = aw.parse_messages_request({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}],
                                     "output_config": {"format": {"type": "json_schema",
                                                                  "schema": {"type": "object"}}}})
    assert req.response_format is not None and req.response_format.schema == {"type": "object"}


@pytest.mark.parametrize("body, param", [
    ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "file:///etc/passwd"}}]}]},
     "messages[0].content[0].source.url"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
      "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
      "tool_choice": {"type": "maybe"}}, "tool_choice.type"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
      "thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "temperature": 3},
     "temperature"),
])
def test_bad_requests_name_the_field(body: dict, param: str) -> None:
    with pytest.raises(BadRequest) as info:
        aw.parse_messages_request(body)
    assert info.value.param == param


def test_message_json_validates_with_sdk() -> None:
    resp = ChatResponse(
        parts=[Reasoning("think", signature="s1"), Text("Hi"), ToolCall("toolu_9", "f", {"a": 1})],
        model="claude", provider="fake", finish_reason="tool_calls",
        usage=Usage(input_tokens=100, output_tokens=20, cached_tokens=30, cache_write_tokens=10),
        metadata=ResponseMetadata(response_id="msg_1"),
    )
    out = aw.message_json(resp, message_id="msg_1", model="fake/echo")
    msg = AnthropicMessage.model_validate(out)
    assert msg.stop_reason == "tool_use"
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use"]
    assert msg.usage.input_tokens == 60 and msg.usage.cache_read_input_tokens == 30
    assert msg.usage.cache_creation_input_tokens == 10 and msg.usage.output_tokens == 20
    assert msg.usage.server_tool_use is None


def test_web_searches_are_reported_as_anthropic_reports_them() -> None:
    """The searches a call ran (billed per search) reach a /v1/messages client in its usage."""
    resp = ChatResponse(parts=[Text("Spain")], model="claude", provider="anthropic", finish_reason="stop",
                        usage=Usage(input_tokens=100, output_tokens=20, web_search_requests=2))
    msg = AnthropicMessage.model_validate(aw.message_json(resp, message_id="msg_1", model="anthropic/claude"))
    assert msg.usage.server_tool_use is not None and msg.usage.server_tool_use.web_search_requests == 2


@pytest.mark.parametrize("finish, raw, expected", [
    ("stop", None, "end_turn"), ("length", None, "max_tokens"), ("content_filter", None, "refusal"),
    ("stop", "stop_sequence", "stop_sequence"), ("other", None, "end_turn"), ("error", None, "end_turn"),
])
def test_stop_reasons(finish: str, raw: str | None, expected: str) -> None:
    assert aw.stop_reason(finish, raw, False) == expected


@pytest.mark.parametrize("finish, raw, has_tools, expected", [
    ("tool_calls", "tool_use", True, "tool_use"), ("tool_calls", None, True, "tool_use"),
    ("stop", None, True, "tool_use"),
    # structured output through the forced json_response tool: the call became the text
    ("stop", "tool_use", False, "end_turn"), ("tool_calls", None, False, "end_turn"),
])
def test_tool_use_only_with_a_tool_use_block(finish: str, raw: str | None, has_tools: bool, expected: str) -> None:
    assert aw.stop_reason(finish, raw, has_tools) == expected


def _run_stream(events: list[StreamEvent]) -> tuple[list[dict], AnthropicMessage]:
    enc = MessageStreamEncoder(message_id="msg_s", model="fake/echo")
    raw = enc.start()
    for ev in events:
        raw += enc.encode(ev) or b""
    raw += enc.finish()
    adapter: TypeAdapter = TypeAdapter(RawMessageStreamEvent)
    payloads = []
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for frame in raw.decode().split("\n\n"):
        if not frame:
            continue
        name_line, data_line = frame.split("\n")
        name = name_line.removeprefix("event: ")
        payload = json.loads(data_line.removeprefix("data: "))
        assert payload["type"] == name
        payloads.append(payload)
        if name == "ping":
            continue
        event = adapter.validate_python(payload)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)
    assert snapshot is not None
    return payloads, AnthropicMessage.model_validate(snapshot.model_dump())


def test_stream_full_event_sequence() -> None:
    payloads, msg = _run_stream([
        StreamEvent("usage", usage=Usage(input_tokens=40)),
        StreamEvent("reasoning", text="Let me "),
        StreamEvent("reasoning", text="think."),
        StreamEvent("reasoning", signature="EqQB"),
        StreamEvent("text", text="Sure, "),
        StreamEvent("text", text="checking."),
        StreamEvent("tool_call_delta", index=0, id="call_x", name="weather", arguments='{"city":'),
        StreamEvent("tool_call_delta", index=1, id="call_y", name="time", arguments="{}"),
        StreamEvent("tool_call_delta", index=0, arguments='"Oslo"}'),
        StreamEvent("usage", usage=Usage(output_tokens=33)),
        StreamEvent("done", finish_reason="tool_calls"),
    ])
    types = [p["type"] for p in payloads]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    starts = [p for p in payloads if p["type"] == "content_block_start"]
    stops = [p["index"] for p in payloads if p["type"] == "content_block_stop"]
    assert [s["index"] for s in starts] == [0, 1, 2, 3]
    assert sorted(stops) == [0, 1, 2, 3]
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use", "tool_use"]
    thinking, text, t1, t2 = msg.content
    assert thinking.thinking == "Let me think." and thinking.signature == "EqQB"  # type: ignore[union-attr]
    assert text.text == "Sure, checking."  # type: ignore[union-attr]
    assert (t1.name, t1.input, t2.name, t2.input) == ("weather", {"city": "Oslo"}, "time", {})  # type: ignore[union-attr]
    assert msg.stop_reason == "tool_use"
    assert msg.usage.input_tokens == 40 and msg.usage.output_tokens == 33


def test_stream_text_only_and_redacted() -> None:
    payloads, msg = _run_stream([
        StreamEvent("reasoning", redacted="opaque"),
        StreamEvent("text", text="Hello"),
        StreamEvent("done", finish_reason="length"),
    ])
    assert [b.type for b in msg.content] == ["redacted_thinking", "text"]
    assert msg.content[1].text == "Hello"  # type: ignore[union-attr]
    assert msg.stop_reason == "max_tokens"


def _open_blocks_at_each_start(payloads: list[dict]) -> list[int]:
    """How many blocks were open whenever a new one started (Anthropic: always 0)."""
    open_now: set[int] = set()
    seen = []
    for p in payloads:
        if p["type"] == "content_block_start":
            seen.append(len(open_now))
            open_now.add(p["index"])
        elif p["type"] == "content_block_stop":
            open_now.discard(p["index"])
    assert not open_now
    return seen


def test_stream_blocks_are_sequential_like_anthropics_own() -> None:
    """Parallel tool calls as OpenAI-style providers stream them: one block is started,
    filled and stopped before the next starts, as clients reading raw events expect."""
    payloads, msg = _run_stream([
        StreamEvent("reasoning", text="plan"),
        StreamEvent("text", text="Checking both."),
        StreamEvent("tool_call_delta", index=0, id="call_a", name="weather", arguments='{"city":'),
        StreamEvent("tool_call_delta", index=0, arguments='"Oslo"}'),
        StreamEvent("tool_call_delta", index=1, id="call_b", name="weather", arguments='{"city":"Rome"}'),
        StreamEvent("done", finish_reason="tool_calls"),
    ])
    assert _open_blocks_at_each_start(payloads) == [0, 0, 0, 0]
    events = [(p["type"], p.get("index")) for p in payloads if p["type"].startswith("content_block_")]
    assert events[-4:] == [("content_block_stop", 2), ("content_block_start", 3), ("content_block_delta", 3),
                           ("content_block_stop", 3)]
    assert [(b.type, getattr(b, "input", None)) for b in msg.content] == [
        ("thinking", None), ("text", None), ("tool_use", {"city": "Oslo"}), ("tool_use", {"city": "Rome"})]


def test_a_content_documents_blocks_keep_their_boundaries() -> None:
    """A ``content`` source's blocks were glued: "First." and "Second." read "First.Second."."""
    req = aw.parse_messages_request({"model": "fake/echo", "max_tokens": 16, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "First."},
                                                                      {"type": "text", "text": "Second."}]}}]}]})
    doc = req.messages[0].parts[0]
    assert doc == Document([Text("First."), Text("Second.")])
    assert plain_parts(doc) == [Text("First.\nSecond.")]   # what a provider without documents reads
