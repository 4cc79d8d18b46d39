"""Anthropic SSE streams decoded: recorded streams (text, thinking, redacted thinking, server tools)
and synthetic ones built from the documented format (function tool use, native structured
output, an in-stream overloaded_error), plus the any-split property for every one of them."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloverleaf._errors import MalformedResponseError, OverloadedError
from cloverleaf._http import HttpResponse
from cloverleaf._types import (
    ChatRequest,
    Message,
    Reasoning,
    ReasoningConfig,
    ResponseFormat,
    StreamEvent,
    Text,
    Tool,
)
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.anthropic.messages import STRUCTURED_TOOL
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.registry import get_spec
from cloverleaf.streams.accumulate import StreamAccumulator
from tests.wire import cassette

REC = "pydantic-ai/tests/models/cassettes/test_anthropic/"
SYN = "../synthetic/anthropic/"
CITY_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"},
                                                "population": {"type": "integer"}},
               "required": ["city", "country", "population"]}
WEATHER = Tool("get_weather", "Get the current weather in a given location", {
    "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]})

GET_TIME = Tool("get_time", "The current time", {"type": "object", "properties": {}})

#: cassette -> the neutral request it answers
STREAMS = {
    REC + "test_request_stream_fallback_for_high_max_tokens.yaml":
        ChatRequest("claude-sonnet-4-5", [Message.user("What is 1+1? Answer with just the number.")], stream=True),
    REC + "test_anthropic_model_thinking_part_stream.yaml":
        ChatRequest("claude-sonnet-4-0", [Message.user("How do I cross the street?")], stream=True,
                    reasoning=ReasoningConfig(budget_tokens=1024), max_tokens=4096),
    REC + "test_anthropic_model_thinking_part_redacted_stream.yaml":
        ChatRequest("claude-sonnet-4-5-20250929", [Message.user("magic")], stream=True,
                    reasoning=ReasoningConfig(budget_tokens=1024)),
    REC + "test_anthropic_code_execution_tool_stream.yaml":
        ChatRequest("claude-sonnet-4-6", [Message.user("what is 65465-6544 * 65464-6+1.02255")], stream=True,
                    reasoning=ReasoningConfig(budget_tokens=3000), max_tokens=4096,
                    extra_body={"tools": [{"name": "code_execution", "type": "code_execution_20260120"}]}),
    SYN + "stream_tool_use.yaml":
        ChatRequest("claude-sonnet-4-5", [Message.user("What is the weather like in San Francisco?")],
                    tools=[WEATHER], stream=True),
    SYN + "stream_structured_output.yaml":
        ChatRequest("claude-sonnet-4-5", [Message.user("Tell me about London")], stream=True,
                    response_format=ResponseFormat(schema=CITY_SCHEMA)),
    SYN + "stream_stop_sequence.yaml":
        ChatRequest("claude-sonnet-4-5", [Message.user("Count to three, then say END.")], stop=["STOP", "END"],
                    stream=True),
    SYN + "stream_tool_no_arguments.yaml":
        ChatRequest("claude-sonnet-4-5", [Message.user("What time is it?")], tools=[GET_TIME], stream=True),
    SYN + "stream_document_citations.yaml":
        ChatRequest("claude-sonnet-4-5", [Message.user("What color is the grass and sky?")], stream=True),
    REC + "test_anthropic_model_web_search_tool_stream.yaml":
        ChatRequest("claude-sonnet-4-0", [Message.user("What is the weather in San Francisco today?")], stream=True),
}


@pytest.fixture(scope="module")
def adapter() -> AnthropicAdapter:
    return AnthropicAdapter(get_spec("anthropic"))


def decode(adapter, req, pieces: list[bytes]):
    dec = adapter.stream_decoder(req)
    events: list[StreamEvent] = []
    for piece in pieces:
        events += dec.feed(piece)
    events += dec.close()
    acc = StreamAccumulator(req.model, adapter.name)
    for ev in events:
        acc.add(ev)
    return events, acc.response()


def body_of(name: str) -> bytes:
    return cassette(name)[0].response.body


def merged(events: list[StreamEvent]) -> list[dict]:
    """Events as dicts, with adjacent plain text (or reasoning-text) deltas joined."""
    out: list[dict] = []
    for ev in events:
        item = asdict(ev)
        plain = ev.type in ("text", "reasoning") and not (ev.signature or ev.redacted)
        if plain and out and out[-1]["type"] == ev.type and out[-1]["_plain"]:
            out[-1]["text"] = (out[-1]["text"] or "") + (ev.text or "")
        else:
            out.append(item)
        out[-1]["_plain"] = plain
    return out


# --------------------------------------------------------------------------- recorded streams


def test_text_stream(adapter):
    name = REC + "test_request_stream_fallback_for_high_max_tokens.yaml"
    events, resp = decode(adapter, STREAMS[name], [body_of(name)])
    assert resp.text == "2" and resp.finish_reason == "stop" and resp.metadata.raw_finish_reason == "end_turn"
    assert resp.usage.input_tokens == 20 and resp.usage.output_tokens == 5
    assert resp.model == "claude-sonnet-4-5-20250929" and resp.metadata.response_id == "msg_018E1hg8GoVTGEKQY3ovMcSJ"
    assert [e.type for e in events].count("done") == 1 and events[-1].type == "done"


def test_thinking_stream_keeps_text_and_signature(adapter):
    name = REC + "test_anthropic_model_thinking_part_stream.yaml"
    req = STREAMS[name]
    _, resp = decode(adapter, req, [body_of(name)])
    thinking = resp.parts[0]
    assert isinstance(thinking, Reasoning)
    assert thinking.text.startswith("This is a straightforward question about pedestrian safety.")
    assert thinking.signature.startswith("EvMCCkYICxgCKkCHP2cSuEdcJK") and thinking.signature.endswith("fQYAQ==")
    assert isinstance(resp.parts[1], Text) and resp.text.startswith("Here are the basic steps for safely crossing")
    assert resp.finish_reason == "stop" and resp.usage.input_tokens == 43

    # the streamed thinking goes back on the next turn, signature included
    req2 = ChatRequest(req.model, [*req.messages, resp.to_message(), Message.user("and a river?")],
                       reasoning=req.reasoning, max_tokens=4096)
    block = adapter.build_chat(req2, ProviderConfig("anthropic", "anthropic", "https://x")).json()["messages"][1]
    assert block["content"][0] == {"type": "thinking", "thinking": thinking.text, "signature": thinking.signature}


def test_consecutive_redacted_thinking_blocks_stay_apart(adapter):
    name = REC + "test_anthropic_model_thinking_part_redacted_stream.yaml"
    _, resp = decode(adapter, STREAMS[name], [body_of(name)])
    redacted = [p for p in resp.parts if isinstance(p, Reasoning)]
    assert len(redacted) == 2
    assert redacted[0].redacted.startswith("EqkECkYIBxgCKkA8") and redacted[1].redacted.startswith("EtgBCkYIBxgC")
    assert resp.text.startswith("I notice that you've sent what appears to be")
    assert resp.usage.input_tokens == 92


def test_server_tool_blocks_do_not_become_tool_calls(adapter):
    name = REC + "test_anthropic_code_execution_tool_stream.yaml"
    _, resp = decode(adapter, STREAMS[name], [body_of(name)])
    assert resp.tool_calls == [] and resp.finish_reason == "stop"
    assert resp.text.startswith("I'll calculate that expression for you right away!")
    assert "-428,328,955.97745" in resp.text
    assert resp.reasoning


# --------------------------------------------------------------------------- synthetic streams


def test_tool_use_stream_assembles_arguments(adapter):
    name = SYN + "stream_tool_use.yaml"
    events, resp = decode(adapter, STREAMS[name], [body_of(name)])
    assert resp.text == "Okay, let's check the weather for San Francisco, CA:"
    [call] = resp.tool_calls
    assert (call.id, call.name, call.arguments) == ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather",
                                                    {"location": "San Francisco, CA"})
    assert resp.finish_reason == "tool_calls" and resp.usage.output_tokens == 89 and resp.usage.input_tokens == 472
    firsts = [e for e in events if e.type == "tool_call_delta" and e.name]
    assert len(firsts) == 1 and firsts[0].id == call.id


def test_tool_with_no_arguments_streams_as_an_empty_object(adapter):
    """Anthropic streams a no-argument call as one empty fragment; the arguments a client reads
    are ``{}``, as in the whole message (``input: {}``), never ``""``, which is not JSON."""
    name = SYN + "stream_tool_no_arguments.yaml"
    events, resp = decode(adapter, STREAMS[name], [body_of(name)])
    fragments = "".join(e.arguments or "" for e in events if e.type == "tool_call_delta")
    assert json.loads(fragments) == {}
    [call] = resp.tool_calls
    assert (call.name, call.arguments, call.arguments_json) == ("get_time", {}, "{}")
    whole = adapter.parse_chat(HttpResponse(200, {}, json.dumps({
        "id": "msg_1", "model": "claude-sonnet-4-5", "stop_reason": "tool_use",
        "content": [{"type": "tool_use", "id": call.id, "name": "get_time", "input": {}}]}).encode()),
        STREAMS[name])
    assert whole.tool_calls[0].arguments_json == call.arguments_json
    assert resp.finish_reason == whole.finish_reason == "tool_calls"


def test_the_stop_sequence_that_ended_the_answer_is_kept(adapter):
    """Which stop sequence matched (Anthropic says so) is on metadata.extra, streamed or not."""
    name = SYN + "stream_stop_sequence.yaml"
    assert cassette(name)[0].request_json == {k: v for k, v in adapter.build_chat(
        STREAMS[name], ProviderConfig("anthropic", "anthropic", "https://x")).json().items()}
    events, resp = decode(adapter, STREAMS[name], [body_of(name)])
    assert events[-1].type == "done" and events[-1].extra == {"stop_sequence": "END"}
    assert (resp.text, resp.finish_reason, resp.metadata.raw_finish_reason) == ("1, 2, 3. ", "stop", "stop_sequence")
    assert resp.metadata.extra["stop_sequence"] == "END"
    whole = adapter.parse_chat(HttpResponse(200, {}, json.dumps({
        "id": "msg_1", "model": "claude-sonnet-4-5", "stop_reason": "stop_sequence", "stop_sequence": "END",
        "content": [{"type": "text", "text": "1, 2, 3. "}]}).encode()), STREAMS[name])
    assert whole.metadata.extra == {"stop_sequence": "END"} and whole.metadata.raw_finish_reason == "stop_sequence"
    # ended any other way, there is no stop sequence to report
    _, plain = decode(adapter, STREAMS[REC + "test_request_stream_fallback_for_high_max_tokens.yaml"],
                      [body_of(REC + "test_request_stream_fallback_for_high_max_tokens.yaml")])
    assert "stop_sequence" not in plain.metadata.extra


def test_structured_output_stream_is_json_text(adapter):
    name = SYN + "stream_structured_output.yaml"
    assert cassette(name)[0].request_json["output_config"] == adapter.build_chat(
        STREAMS[name], ProviderConfig("anthropic", "anthropic", "https://x")).json()["output_config"]
    _, resp = decode(adapter, STREAMS[name], [body_of(name)])
    assert json.loads(resp.text) == {"city": "London", "country": "United Kingdom", "population": 9002488}
    assert resp.finish_reason == "stop"


def test_structured_tool_stream_becomes_text(adapter):
    req = ChatRequest("claude-3-5-haiku-latest", [Message.user("London?")], stream=True,
                      response_format=ResponseFormat(schema=CITY_SCHEMA))
    sse = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in [
        {"type": "message_start", "message": {"id": "msg_1", "model": "claude-3-5-haiku-20241022",
                                              "usage": {"input_tokens": 9, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": STRUCTURED_TOOL, "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta",
                                                              "partial_json": '"London", "country": "UK", "population": 1}'}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 20}},
        {"type": "message_stop"},
    ]).encode()
    events, resp = decode(adapter, req, [sse])
    assert not any(e.type == "tool_call_delta" for e in events)
    assert json.loads(resp.text) == {"city": "London", "country": "UK", "population": 1}
    assert resp.finish_reason == "stop" and resp.metadata.raw_finish_reason == "tool_use"


def _sse(events: list[dict]) -> bytes:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def _text_block(index: int, text: str) -> list[dict]:
    return [{"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}},
            {"type": "content_block_stop", "index": index}]


_START = {"type": "message_start", "message": {"id": "msg_1", "model": "claude-3-7-sonnet-20250219",
                                               "usage": {"input_tokens": 9, "output_tokens": 1}}}


def test_a_sentence_before_the_structured_tool_call_is_not_streamed_into_the_answer(adapter):
    """As the whole-message parser: once the structured tool is called, the text around it is
    dropped; it is held back (never streamed) until the stream shows whether the tool comes."""
    req = ChatRequest("claude-3-7-sonnet-20250219", [Message.user("London?")], stream=True,
                      reasoning=ReasoningConfig(budget_tokens=2048), max_tokens=4096,
                      response_format=ResponseFormat(schema=CITY_SCHEMA))
    sse = _sse([_START,
                {"type": "content_block_start", "index": 0,
                 "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
                {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "UK."}},
                {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}},
                {"type": "content_block_stop", "index": 0},
                *_text_block(1, "Here is the answer in the requested format."),
                {"type": "content_block_start", "index": 2,
                 "content_block": {"type": "tool_use", "id": "toolu_1", "name": STRUCTURED_TOOL, "input": {}}},
                {"type": "content_block_delta", "index": 2, "delta": {
                    "type": "input_json_delta", "partial_json": '{"city": "London", "country": "UK", "population": 1}'}},
                {"type": "content_block_stop", "index": 2},
                *_text_block(3, "Anything else?"),
                {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 20}},
                {"type": "message_stop"}])
    events, resp = decode(adapter, req, [sse])
    assert "".join(e.text or "" for e in events if e.type == "text") == resp.text
    assert json.loads(resp.text) == {"city": "London", "country": "UK", "population": 1}
    assert [type(p).__name__ for p in resp.parts] == ["Reasoning", "Text"] and resp.finish_reason == "stop"


def test_held_text_comes_out_when_no_structured_tool_follows(adapter):
    req = ChatRequest("claude-3-7-sonnet-20250219", [Message.user("London?")], stream=True, tools=[WEATHER],
                      reasoning=ReasoningConfig(budget_tokens=2048), max_tokens=4096,
                      response_format=ResponseFormat(schema=CITY_SCHEMA))
    call = [{"type": "content_block_start", "index": 1,
             "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}},
            {"type": "content_block_delta", "index": 1,
             "delta": {"type": "input_json_delta", "partial_json": '{"location": "London"}'}},
            {"type": "content_block_stop", "index": 1}]
    end = [{"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 20}},
           {"type": "message_stop"}]
    _, resp = decode(adapter, req, [_sse([_START, *_text_block(0, "Let me check the weather."), *call, *end])])
    assert [type(p).__name__ for p in resp.parts] == ["Text", "ToolCall"]  # the text stays before the call
    assert resp.text == "Let me check the weather." and resp.tool_calls[0].arguments == {"location": "London"}
    _, prose = decode(adapter, req, [_sse([_START, *_text_block(0, "I cannot answer that."), *end])])
    assert prose.text == "I cannot answer that."


def test_native_structured_text_streams_as_it_comes(adapter):
    """Text that begins like JSON is the answer (native structured output): never held back."""
    name = SYN + "stream_structured_output.yaml"
    dec = adapter.stream_decoder(STREAMS[name])
    data = body_of(name)
    first_delta = data.index(b"text_delta")
    first_delta_event = data[:data.index(b"\n\n", first_delta) + 2]
    assert b"message_stop" not in first_delta_event
    assert [e.text for e in dec.feed(first_delta_event) if e.type == "text"]


def test_error_event_raises_from_feed(adapter):
    dec = adapter.stream_decoder(ChatRequest("claude-sonnet-4-5", [Message.user("Hello")], stream=True))
    body = body_of(SYN + "stream_error_overloaded.yaml")
    head, _, tail = body.partition(b"event: error")
    events = dec.feed(head)
    assert "".join(e.text or "" for e in events if e.type == "text") == "Hello!"
    with pytest.raises(OverloadedError) as info:
        dec.feed(b"event: error" + tail)
    assert info.value.retryable and info.value.status == 529 and info.value.code == "overloaded_error"


def test_cut_off_stream_raises_from_close(adapter):
    name = REC + "test_request_stream_fallback_for_high_max_tokens.yaml"
    body = body_of(name)
    dec = adapter.stream_decoder(STREAMS[name])
    dec.feed(body[: body.index(b"event: message_stop")])
    with pytest.raises(MalformedResponseError, match="message_stop"):
        dec.close()


def test_invalid_json_is_malformed(adapter):
    dec = adapter.stream_decoder(ChatRequest("m", [], stream=True))
    with pytest.raises(MalformedResponseError):
        dec.feed(b"event: message_start\ndata: {not json\n\n")


def test_ping_and_unknown_events_are_ignored(adapter):
    dec = adapter.stream_decoder(ChatRequest("m", [], stream=True))
    assert dec.feed(b'event: ping\ndata: {"type": "ping"}\n\nevent: future\ndata: {"type": "future"}\n\n') == []


# --------------------------------------------------------------------------- any split


@pytest.mark.parametrize("name", list(STREAMS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_split_gives_the_same_result(adapter, name, data):
    body = body_of(name)
    req = STREAMS[name]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=25)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    whole_events, whole = decode(adapter, req, [body])
    split_events, split = decode(adapter, req, pieces)
    assert merged(split_events) == merged(whole_events)
    assert split.parts == whole.parts
    assert (split.usage, split.finish_reason, split.model) == (whole.usage, whole.finish_reason, whole.model)


def test_nothing_after_message_stop_makes_a_second_done(adapter):
    name = REC + "test_request_stream_fallback_for_high_max_tokens.yaml"
    body = body_of(name)
    tail = body[body.index(b"event: message_stop"):]
    events, resp = decode(adapter, STREAMS[name], [body, b'event: content_block_delta\ndata: {"type": '
                                                         b'"content_block_delta", "index": 0, "delta": '
                                                         b'{"type": "text_delta", "text": "late"}}\n\n', tail])
    assert [e.type for e in events].count("done") == 1 and events[-1].type == "done"
    assert resp.text == "2"


def test_compaction_usage_counts_every_iteration(adapter):
    # message_start reports the compaction step (55096 cache reads); message_delta's top level only the
    # final step, with every billed step listed under usage.iterations.
    name = REC + "test_anthropic_compaction_usage_with_cache_streaming.yaml"
    req = ChatRequest("claude-sonnet-4-6", [Message.user("Now say hello.")], stream=True)
    events, resp = decode(adapter, req, [body_of(name)])
    u = resp.usage
    assert (u.input_tokens, u.output_tokens, u.cached_tokens, u.cache_write_tokens) == (100 + 55096 + 181, 83 + 8, 55096, 0)
    assert u.cached_tokens <= u.input_tokens and [e.type for e in events].count("done") == 1


def test_compaction_usage_non_stream(adapter):
    name = REC + "test_anthropic_compaction_end_to_end.yaml"
    resp = adapter.parse_chat(cassette(name)[0].response, ChatRequest("claude-sonnet-4-6", [Message.user("hi")]))
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (55196 + 220, 125 + 8)
    later = adapter.parse_chat(cassette(name)[1].response, ChatRequest("claude-sonnet-4-6", [Message.user("hi")]))
    assert (later.usage.input_tokens, later.usage.output_tokens) == (239, 10)  # one iteration: the top level
