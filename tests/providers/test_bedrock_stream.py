"""Bedrock ConverseStream decoding on recorded event-stream bodies (any chunking)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloverleaf._errors import ContextWindowExceededError, MalformedResponseError, RateLimitError, ServerError
from cloverleaf._http import HttpResponse
from cloverleaf._types import ChatRequest, ChatResponse, Message, Reasoning, ResponseFormat, StreamEvent, Text
from cloverleaf.providers.bedrock.adapter import BedrockAdapter
from cloverleaf.providers.registry import get_spec
from cloverleaf.streams.accumulate import StreamAccumulator
from cloverleaf.streams.eventstream import encode_frame
from tests.wire import cassette

ADAPTER = BedrockAdapter(get_spec("bedrock"))
REC = "pydantic-ai/tests/models/cassettes/test_bedrock/"
STREAMS = {
    "test_bedrock_model_stream": 0,
    "test_bedrock_model_iter_stream": 0,
    "test_bedrock_model_stream_empty_text_delta": 0,
    "test_bedrock_model_thinking_part_stream": 0,
    "test_bedrock_model_thinking_part_redacted_stream": 0,
    "test_bedrock_model_code_execution_tool_stream": 0,
}
FINAL = ResponseFormat(schema={"properties": {"result": {"type": "number"}}}, name="final_result")


def body(name: str, i: int = 0) -> bytes:
    return cassette(REC + name + ".yaml")[i].response.body


def request(model: str = "m", **kw: Any) -> ChatRequest:
    return ChatRequest(model, [Message.user("x")], stream=True, **kw)


def decode(data: bytes, req: ChatRequest, cuts: list[int] | None = None) -> list[StreamEvent]:
    dec = ADAPTER.stream_decoder(req)
    events: list[StreamEvent] = []
    pos = 0
    for cut in sorted(cuts or []):
        events += dec.feed(data[pos:cut])
        pos = cut
    events += dec.feed(data[pos:])
    events += dec.close()
    return events


def assemble(events: list[StreamEvent], req: ChatRequest) -> ChatResponse:
    acc = StreamAccumulator(req.model, "bedrock")
    for ev in events:
        acc.add(ev)
    return acc.response()


def merged(events: list[StreamEvent]) -> list[tuple[Any, ...]]:
    """Events with adjacent text (and reasoning-text) deltas joined, for split-invariance checks."""
    out: list[tuple[Any, ...]] = []
    for ev in events:
        key = (ev.type, ev.index, ev.id, ev.name, ev.signature, ev.redacted, ev.finish_reason, ev.raw_finish_reason,
               ev.usage)
        if out and ev.type in ("text", "reasoning") and out[-1][0] == key and not ev.signature and not ev.redacted:
            out[-1] = (key, out[-1][1] + (ev.text or ""))
        else:
            out.append((key, ev.text or "" if ev.arguments is None else ev.arguments))
    return out


def test_text_stream() -> None:
    req = request("us.amazon.nova-micro-v1:0")
    events = decode(body("test_bedrock_model_stream"), req)
    assert [e.type for e in events].count("done") == 1 and events[-1].type == "done"
    out = assemble(events, req)
    assert out.text.startswith("The capital of France is Paris. Paris is not only")
    assert out.text.endswith('or "The City of Love."')
    assert out.finish_reason == "stop" and out.metadata.raw_finish_reason == "end_turn"
    assert (out.usage.input_tokens, out.usage.output_tokens) == (13, 82)


def test_tool_stream() -> None:
    req = request("us.amazon.nova-micro-v1:0")
    out = assemble(decode(body("test_bedrock_model_iter_stream"), req), req)
    assert out.text.startswith("<thinking> To find the temperature")
    [call] = out.tool_calls
    assert (call.id, call.name, call.arguments) == ("tooluse_lAG_zP8QRHmSYOwZzzaCqA", "get_temperature", {"city": "Paris"})
    assert out.finish_reason == "tool_calls" and (out.usage.input_tokens, out.usage.output_tokens) == (471, 91)
    follow = assemble(decode(body("test_bedrock_model_iter_stream", 1), req), req)
    assert follow.text == "The current temperature in Paris, the capital of France, is 30°C."


def test_reasoning_stream_with_signature() -> None:
    req = request("us.anthropic.claude-sonnet-4-20250514-v1:0")
    out = assemble(decode(body("test_bedrock_model_thinking_part_stream"), req), req)
    assert isinstance(out.parts[0], Reasoning) and isinstance(out.parts[1], Text)
    assert out.parts[0].text.startswith('The user has greeted me with a simple "Hello".')
    assert out.parts[0].signature and out.parts[0].signature.startswith("Eu0CCkgIBxABGAIqQJDccbDQ")
    assert out.text == "Hello! It's nice to meet you. How can I help you today?"
    assert (out.usage.input_tokens, out.usage.output_tokens) == (36, 73)


def test_redacted_reasoning_stream() -> None:
    req = request("us.anthropic.claude-3-7-sonnet-20250219-v1:0")
    out = assemble(decode(body("test_bedrock_model_thinking_part_redacted_stream"), req), req)
    redacted = [p for p in out.parts if isinstance(p, Reasoning)]
    assert len(redacted) == 2 and all(p.redacted and not p.text for p in redacted)
    assert redacted[0].redacted != redacted[1].redacted
    assert out.text.startswith("I notice you've sent what appears to be some kind of command")


def test_empty_text_delta_and_unsigned_reasoning() -> None:
    req = request("openai.gpt-oss-120b-1:0")
    events = decode(body("test_bedrock_model_stream_empty_text_delta"), req)
    assert all(e.text for e in events if e.type == "text")
    out = assemble(events, req)
    assert out.reasoning and out.reasoning.startswith('The user just says "Hi".')
    assert out.text == "Hello! How can I help you today?"


def test_structured_stream_matches_the_non_streamed_answer() -> None:
    req = request("us.amazon.nova-2-lite-v1:0", response_format=FINAL)
    streamed = assemble(decode(body("test_bedrock_model_code_execution_tool_stream"), req), req)
    whole = ADAPTER.parse_chat(cassette(REC + "test_bedrock_model_with_code_execution_tool.yaml")[0].response, req)
    assert json.loads(streamed.text) == json.loads(whole.text) == {"result": 7006652.0}
    assert streamed.tool_calls == whole.tool_calls == []  # the server-side code interpreter is not a call for us
    assert streamed.finish_reason == whole.finish_reason == "stop"
    assert streamed.metadata.raw_finish_reason == "tool_use"
    # without a response format the same stream is a plain tool call
    plain = assemble(decode(body("test_bedrock_model_code_execution_tool_stream"), request()), request())
    assert [(c.name, c.arguments) for c in plain.tool_calls] == [("final_result", {"result": 7006652.0})]


@pytest.mark.parametrize("name", list(STREAMS))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_any_split_gives_the_same_events(name: str, data: st.DataObject) -> None:
    raw = body(name, STREAMS[name])
    req = request(response_format=FINAL if "code_execution" in name else None)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(raw)), max_size=30))
    whole = decode(raw, req)
    split = decode(raw, req, cuts)
    assert merged(split) == merged(whole)
    assert assemble(split, req) == assemble(whole, req)


# --------------------------------------------------------------------------- endings and errors


def frame(event: str, payload: dict[str, Any]) -> bytes:
    return encode_frame({":event-type": event, ":content-type": "application/json", ":message-type": "event"},
                        json.dumps(payload).encode())


def test_cut_off_before_message_stop_is_malformed() -> None:
    raw = frame("messageStart", {"role": "assistant"}) + frame("contentBlockDelta", {"contentBlockIndex": 0,
                                                                                     "delta": {"text": "hi"}})
    dec = ADAPTER.stream_decoder(request())
    assert [e.text for e in dec.feed(raw)] == ["hi"]
    with pytest.raises(MalformedResponseError, match="messageStop"):
        dec.close()


def test_message_stop_without_metadata_finishes_at_close() -> None:
    raw = frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}) + frame(
        "messageStop", {"stopReason": "guardrail_intervened"})
    dec = ADAPTER.stream_decoder(request())
    assert [e.type for e in dec.feed(raw)] == ["text"]
    [done] = dec.close()
    assert done.type == "done" and done.finish_reason == "content_filter"


def test_invalid_json_payload_is_malformed() -> None:
    raw = encode_frame({":event-type": "contentBlockDelta", ":message-type": "event"}, b"{nope")
    with pytest.raises(MalformedResponseError, match="not JSON"):
        ADAPTER.stream_decoder(request()).feed(raw)


@pytest.mark.parametrize("exc_type,payload,cls", [
    ("throttlingException", {"message": "Too many tokens, please wait before trying again."}, RateLimitError),
    ("validationException", {"message": "Input is too long for requested model."}, ContextWindowExceededError),
    ("modelStreamErrorException", {"message": "boom", "originalStatusCode": 500}, ServerError),
    ("serviceUnavailableException", {"message": "busy"}, ServerError),
])
def test_exception_frames_raise_mapped_errors(exc_type: str, payload: dict[str, Any], cls: type) -> None:
    raw = frame("messageStart", {"role": "assistant"}) + encode_frame(
        {":exception-type": exc_type, ":content-type": "application/json", ":message-type": "exception"},
        json.dumps(payload).encode())
    with pytest.raises(cls) as info:
        ADAPTER.stream_decoder(request("m1")).feed(raw)
    assert info.value.message == payload["message"] and info.value.model == "m1" and info.value.provider == "bedrock"
    assert info.value.code == exc_type[0].upper() + exc_type[1:]


def test_structured_stream_drops_text_around_the_answer() -> None:
    fmt = ResponseFormat(schema={"type": "object"}, name="answer")
    tool_start = {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t", "name": "answer"}}}
    raw = b"".join([
        frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "<thinking>hmm</thinking>"}}),
        frame("contentBlockStart", tool_start),
        frame("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"a":'}}}),
        frame("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "1}"}}}),
        frame("messageStop", {"stopReason": "tool_use"}),
        frame("metadata", {"usage": {"inputTokens": 5, "outputTokens": 2}}),
    ])
    events = decode(raw, request(response_format=fmt))
    assert "".join(e.text or "" for e in events if e.type == "text") == '{"a":1}'
    assert events[-1].finish_reason == "stop"
    # asked for structured output, answered in plain text: the text is released at the end
    plain = frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": '{"a": 2}'}}) + frame(
        "messageStop", {"stopReason": "end_turn"}) + frame("metadata", {"usage": {}})
    events = decode(plain, request(response_format=fmt))
    assert [(e.type, e.text) for e in events[:-1]] == [("usage", None), ("text", '{"a": 2}')]


@pytest.mark.parametrize("stop", ["malformed_tool_use", "malformed_model_output"])
def test_malformed_output_stop_reasons_are_errors(stop: str) -> None:
    # Converse's documented StopReason values for output Bedrock could not parse: not a clean "other"
    raw = frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}) + frame(
        "messageStop", {"stopReason": stop}) + frame("metadata", {"usage": {"inputTokens": 3, "outputTokens": 1}})
    events = decode(raw, request())
    assert events[-1].type == "done" and events[-1].finish_reason == "error" and events[-1].raw_finish_reason == stop
    whole = {"output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}}, "stopReason": stop,
             "usage": {"inputTokens": 3, "outputTokens": 1}}
    resp = ADAPTER.parse_chat(HttpResponse(200, {}, json.dumps(whole).encode()), request())
    assert resp.finish_reason == "error" and resp.metadata.raw_finish_reason == stop


@pytest.mark.parametrize("stopped", [True, False], ids=["contentBlockStop", "no-contentBlockStop"])
def test_tool_with_no_arguments_streams_as_an_empty_object(stopped: bool) -> None:
    """Claude on Bedrock calling a no-argument tool sends no input text (or an empty one): the
    arguments a client reads are ``{}``, as the non-streamed answer has, never ``""``."""
    req = request("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    start = {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_time"}}}
    raw = b"".join([
        frame("messageStart", {"role": "assistant"}),
        frame("contentBlockStart", start),
        frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": ""}}}),
        frame("contentBlockStop", {"contentBlockIndex": 0}) if stopped else b"",
        frame("messageStop", {"stopReason": "tool_use"}),
        frame("metadata", {"usage": {"inputTokens": 5, "outputTokens": 2}}),
    ])
    events = decode(raw, req)
    assert json.loads("".join(e.arguments or "" for e in events if e.type == "tool_call_delta")) == {}
    [call] = assemble(events, req).tool_calls
    whole = {"output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "tooluse_1", "name": "get_time", "input": {}}}]}}, "stopReason": "tool_use"}
    [whole_call] = ADAPTER.parse_chat(HttpResponse(200, {}, json.dumps(whole).encode()), request()).tool_calls
    assert (call.name, call.arguments, call.arguments_json) == ("get_time", {}, whole_call.arguments_json) == (
        "get_time", {}, "{}")
    # the forced structured-output tool called with no input is the JSON text {}
    fmt = ResponseFormat(schema={"type": "object"}, name="get_time")
    text = "".join(e.text or "" for e in decode(raw, request(response_format=fmt)) if e.type == "text")
    assert text == "{}"


# --------------------------------------------------------------------------- server tool blocks


def _without_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The blocks with their call ids blanked: two recordings of one exchange differ only there."""
    return [{kind: {**inner, "toolUseId": "-"} for kind, inner in block.items()} for block in blocks]


def test_server_tool_blocks_are_kept_streamed_as_whole() -> None:
    """The code interpreter's ``toolUse`` and ``toolResult`` blocks: Bedrock runs them, so they are no
    part of the answer, but the whole answer keeps them in metadata.extra; the stream of the same
    exchange lost them (its blocks were skipped)."""
    for fmt in (FINAL, None):
        req = request("us.amazon.nova-2-lite-v1:0", response_format=fmt)
        streamed = assemble(decode(body("test_bedrock_model_code_execution_tool_stream"), req), req)
        whole = ADAPTER.parse_chat(cassette(REC + "test_bedrock_model_with_code_execution_tool.yaml")[0].response, req)
        assert [list(b) for b in streamed.metadata.extra["server_tool_blocks"]] == [["toolUse"], ["toolResult"]]
        assert _without_ids(streamed.metadata.extra["server_tool_blocks"]) == _without_ids(
            whole.metadata.extra["server_tool_blocks"])


def _streamed_as(whole: dict[str, Any]) -> bytes:
    """A Converse answer as ConverseStream sends it: each block's start, its content in small pieces
    (input JSON text in fragments, a text result in fragments, a json result whole), its stop."""
    out = frame("messageStart", {"role": "assistant"})
    for i, block in enumerate(whole["output"]["message"]["content"]):
        if "text" in block:
            out += frame("contentBlockDelta", {"contentBlockIndex": i, "delta": {"text": block["text"]}})
        elif "toolUse" in block:
            use = block["toolUse"]
            out += frame("contentBlockStart", {"contentBlockIndex": i, "start": {"toolUse": {
                k: v for k, v in use.items() if k != "input"}}, "p": "abc"})
            text = json.dumps(use["input"], separators=(",", ":"))   # as Bedrock writes it
            for at in range(0, len(text), 7):
                out += frame("contentBlockDelta", {"contentBlockIndex": i, "delta": {"toolUse": {"input": text[at:at + 7]}}})
        else:
            result = block["toolResult"]
            out += frame("contentBlockStart", {"contentBlockIndex": i, "start": {"toolResult": {
                k: v for k, v in result.items() if k != "content"}}})
            for item in result["content"]:
                pieces = [{"text": item["text"][at:at + 5]} for at in range(0, len(item["text"]), 5)] \
                    if "text" in item else [item]
                for piece in pieces:
                    out += frame("contentBlockDelta", {"contentBlockIndex": i, "delta": {"toolResult": [piece]}})
        out += frame("contentBlockStop", {"contentBlockIndex": i})
    return (out + frame("messageStop", {"stopReason": whole["stopReason"]})
            + frame("metadata", {"usage": whole["usage"], "metrics": {"latencyMs": 1}}))


def test_server_tool_blocks_of_a_stream_equal_the_whole_answer() -> None:
    """One answer, whole and streamed: the same server_tool_blocks, exactly (a text result joined from
    its fragments, a json result as it came, a tool use's input parsed from its JSON text)."""
    whole_body = json.loads(cassette(REC + "test_bedrock_model_with_code_execution_tool.yaml")[0].response.body)
    content = whole_body["output"]["message"]["content"]
    content.insert(2, {"toolResult": {"toolUseId": "tooluse_2", "type": "nova_grounding_result", "status": "success",
                                      "content": [{"text": "Paris is the capital of France."}, {"json": {"n": 1}}]}})
    content.insert(0, {"text": "Let me compute that."})
    req = request("us.amazon.nova-2-lite-v1:0", response_format=FINAL)
    whole = ADAPTER.parse_chat(HttpResponse(200, {}, json.dumps(whole_body).encode()), req)
    streamed = assemble(decode(_streamed_as(whole_body), req), req)
    assert len(whole.metadata.extra["server_tool_blocks"]) == 3
    assert streamed.metadata.extra == whole.metadata.extra
    assert streamed.parts == whole.parts


def test_a_lone_surrogate_in_a_streamed_server_tool_input_is_read_as_the_whole_answer_reads_it() -> None:
    """A server tool's input JSON with a lone surrogate escape (``"\\ud800"``, which JSON allows): the
    whole answer reads it as U+FFFD, as every upstream decode does; the stream's joined input was read
    with a plain ``json.loads`` and kept the lone surrogate, which no UTF-8 text can carry (the answer's
    metadata then failed wherever it was written out)."""
    whole_body = json.loads(cassette(REC + "test_bedrock_model_with_code_execution_tool.yaml")[0].response.body)
    use = next(b["toolUse"] for b in whole_body["output"]["message"]["content"] if "toolUse" in b)
    use["input"] = {"code": "print('a\ud800b')"}
    req = request("us.amazon.nova-2-lite-v1:0")
    whole = ADAPTER.parse_chat(HttpResponse(200, {}, json.dumps(whole_body).encode()), req)
    streamed = assemble(decode(_streamed_as(whole_body), req), req)
    streamed_use = streamed.metadata.extra["server_tool_blocks"][0]["toolUse"]
    assert streamed_use["input"] == {"code": "print('a\ufffdb')"}
    assert streamed.metadata.extra == whole.metadata.extra
    json.dumps(streamed.metadata.extra, ensure_ascii=False).encode()   # UTF-8 text again
