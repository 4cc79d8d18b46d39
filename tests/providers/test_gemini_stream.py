"""Gemini streaming: recorded SSE bodies decoded, for any split of the bytes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloverleaf._errors import ContentFilterError, MalformedResponseError, RateLimitError
from cloverleaf._types import ChatRequest, Message, Reasoning, StreamEvent, Text
from tests.providers.test_gemini_support import GOOGLE, GOOGLE_NEW, adapter, decode
from tests.wire import cassette

REQ = ChatRequest("m", [Message.user("x")], stream=True)

STREAMS = [
    (GOOGLE + "test_google_model_stream.yaml", 0),
    (GOOGLE + "test_google_model_iter_stream.yaml", 0),
    (GOOGLE + "test_google_model_iter_stream.yaml", 2),
    (GOOGLE + "test_google_model_thinking_part_iter.yaml", 0),
    (GOOGLE + "test_google_streaming_tool_call_thought_signature.yaml", 0),
    (GOOGLE_NEW + "test_structured_output/test_native_output_with_function_tools_stream.yaml", 1),
    (GOOGLE + "test_google_vertex_service_tier_flex_stream.yaml", 0),
]


def body(name: str, index: int) -> bytes:
    return cassette(name)[index].response.body


def test_text_stream():
    events, r = decode(REQ, [body(GOOGLE + "test_google_model_stream.yaml", 0)])
    assert [e.text for e in events if e.type == "text"] == ["The", " capital of France", " is Paris.\n"]
    assert r.content == "The capital of France is Paris.\n"
    assert [e.type for e in events][-2:] == ["usage", "done"]
    assert sum(e.type == "done" for e in events) == 1
    done = events[-1]
    assert (done.finish_reason, done.raw_finish_reason, done.model, done.id) == (
        "stop", "STOP", "gemini-2.0-flash-exp", "w1peaMz6INOvnvgPgYfPiQY")
    # usage comes from the last chunk (its promptTokenCount is 13, earlier chunks said 15)
    assert (r.usage.input_tokens, r.usage.output_tokens) == (13, 8)


def test_tool_call_arrives_whole():
    events, r = decode(REQ, [body(GOOGLE + "test_google_model_iter_stream.yaml", 0)])
    [delta] = [e for e in events if e.type == "tool_call_delta"]
    assert (delta.index, delta.name, json.loads(delta.arguments or "")) == (0, "get_capital", {"country": "France"})
    assert r.tool_calls[0].arguments == {"country": "France"}
    assert r.finish_reason == "tool_calls" and r.metadata.raw_finish_reason == "STOP"


def test_tool_call_signature_is_kept_in_stream():
    events, r = decode(REQ, [body(GOOGLE + "test_google_streaming_tool_call_thought_signature.yaml", 0)])
    [call] = r.tool_calls
    raw = json.loads(body(GOOGLE + "test_google_streaming_tool_call_thought_signature.yaml", 0)
                     .split(b"\r\n\r\n")[0].removeprefix(b"data: "))
    assert call.name == "get_country" and call.arguments == {}
    assert call.extra == {"thoughtSignature": raw["candidates"][0]["content"]["parts"][0]["thoughtSignature"]}
    assert (r.usage.output_tokens, r.usage.reasoning_tokens) == (212, 202)


def test_thinking_stream():
    events, r = decode(REQ, [body(GOOGLE + "test_google_model_thinking_part_iter.yaml", 0)])
    assert [type(p) for p in r.parts] == [Reasoning, Text]
    assert r.parts[0].text.startswith("**Clarifying User Goals**")
    assert r.parts[0].signature  # arrived on the first answer chunk
    assert r.content.startswith("This is a great question!")
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.reasoning_tokens) == (34, 469 + 787, 787)


def test_structured_stream_with_trailing_signature():
    events, r = decode(REQ, [body(GOOGLE_NEW + "test_structured_output/test_native_output_with_function_tools_stream.yaml",
                                  1)])
    assert json.loads(r.content) == {"city": "Mexico City", "country": "Mexico"}
    assert isinstance(r.parts[-1], Reasoning) and r.parts[-1].signature and not r.parts[-1].text
    assert r.finish_reason == "stop"


def test_cut_off_stream_raises_on_close():
    raw = body(GOOGLE + "test_google_model_stream.yaml", 0)
    without_last = raw[: raw.rstrip(b"\r\n").rfind(b"\r\n\r\n") + 4]
    with pytest.raises(MalformedResponseError, match="finishReason"):
        decode(REQ, [without_last])


def test_error_inside_stream_raises_mapped_error():
    error = {"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}
    raw = body(GOOGLE + "test_google_model_stream.yaml", 0).split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    with pytest.raises(RateLimitError):
        decode(REQ, [raw + b"data: " + json.dumps(error).encode() + b"\r\n\r\n"])


def test_blocked_prompt_in_stream():
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 5}}
    with pytest.raises(ContentFilterError, match="PROHIBITED_CONTENT"):
        decode(REQ, [b"data: " + json.dumps(blocked).encode() + b"\r\n\r\n"])


def test_invalid_json_is_malformed():
    with pytest.raises(MalformedResponseError):
        decode(REQ, [b"data: {not json\r\n\r\n"])


# --------------------------------------------------------------------------- any split


def merged(events: list[StreamEvent]) -> list[StreamEvent]:
    """Events with adjacent text deltas joined: what must not depend on where the bytes were split."""
    out: list[StreamEvent] = []
    for e in events:
        if e.type == "text" and out and out[-1].type == "text":
            out[-1] = replace(out[-1], text=(out[-1].text or "") + (e.text or ""))
        else:
            out.append(e)
    return out


@pytest.mark.parametrize(("name", "index"), STREAMS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_split_gives_the_same_result(name: str, index: int, data: st.DataObject):
    raw = body(name, index)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12), label="cuts"))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    whole_events, whole = decode(REQ, [raw])
    split_events, split = decode(REQ, chunks)
    assert merged(split_events) == merged(whole_events)
    assert split == whole


@pytest.mark.parametrize(("name", "index"), STREAMS)
def test_byte_by_byte(name: str, index: int):
    raw = body(name, index)
    assert decode(REQ, [raw[i:i + 1] for i in range(len(raw))])[1] == decode(REQ, [raw])[1]


def test_the_finish_message_is_kept_streamed_as_whole() -> None:
    """Gemini says in words why it stopped (a malformed function call, a block); a whole answer
    kept it on ``metadata.extra`` and a streamed one dropped it."""
    from cloverleaf._http import HttpResponse
    from tests.providers.test_gemini_support import adapter

    chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]},
                             "finishReason": "MALFORMED_FUNCTION_CALL",
                             "finishMessage": "Malformed function call: print(default_api.x(y=)"}],
             "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 0, "totalTokenCount": 5}}
    req = ChatRequest("gemini-2.5-flash", [Message.user("x")], stream=True)
    _, streamed = decode(req, [b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"])
    whole = adapter().parse_chat(HttpResponse(200, {}, json.dumps(chunk).encode()), replace(req, stream=False))
    for out in (streamed, whole):
        assert out.metadata.extra["finish_message"].startswith("Malformed function call")
        assert out.finish_reason == "error"


def _chunk(text: str, finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    candidate: dict[str, object] = {"content": {"role": "model", "parts": [{"text": text}]}}
    if finish:
        candidate["finishReason"] = finish
    data: dict[str, object] = {"candidates": [candidate]}
    if usage:
        data["usageMetadata"] = usage
    return b"data: " + json.dumps(data).encode() + b"\r\n\r\n"


def test_the_chunk_with_finish_reason_and_usage_ends_the_stream() -> None:
    """Gemini's last chunk is its end (there is no terminal event): done comes with it, before
    the body ends, so a connection dropped right after it loses nothing; nothing after it counts."""
    decoder = adapter().stream_decoder(REQ)
    usage = {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6}
    events = decoder.feed(_chunk("Hello") + _chunk(" there", "STOP", usage))
    assert [e.type for e in events] == ["text", "text", "usage", "done"]
    assert decoder.feed(_chunk(" more", "STOP", usage)) == [] and decoder.close() == []


def test_a_finish_reason_without_usage_ends_nothing() -> None:
    """A proxy that sends finishReason early, then the usage: read on, to the usage."""
    usage = {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7}
    events, r = decode(REQ, [_chunk("Hello", "STOP") + _chunk(" there"), _chunk("", None, usage)])
    assert r.content == "Hello there" and (r.usage.input_tokens, r.usage.output_tokens) == (4, 3)
    assert [e.type for e in events][-2:] == ["usage", "done"]


def _sse(*chunks: dict[str, object]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)


def _candidate(index: int, text: str, finish: str | None = None) -> dict[str, object]:
    out: dict[str, object] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": index}
    return {**out, "finishReason": finish} if finish else out


def test_other_candidates_are_not_spliced_into_the_answer() -> None:
    """``candidateCount`` 2 (through extra_body): a chunk may hold only candidate 1's parts. The
    answer is candidate 0, whole and unmixed, its usage the last running total, counted once."""
    usage = {"promptTokenCount": 3, "candidatesTokenCount": 8, "totalTokenCount": 11}
    events, r = decode(REQ, [_sse(
        {"candidates": [_candidate(0, "Red "), _candidate(1, "Blue ")], "responseId": "r1"},
        {"candidates": [_candidate(1, "sky")], "responseId": "r1"},
        {"candidates": [_candidate(1, ".", "STOP")], "responseId": "r1"},
        {"candidates": [_candidate(0, "apple", "STOP")], "usageMetadata": usage, "responseId": "r1"},
    )])
    assert r.content == "Red apple" and r.finish_reason == "stop"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (3, 8)
    assert sum(e.type == "done" for e in events) == 1


def test_a_streamed_answers_cached_audio_is_kept():
    """The cached audio count comes in the last chunk's usageMetadata, and survives assembly."""
    from tests.providers.test_gemini import cached_audio_answer

    events, r = decode(REQ, [b"data: " + json.dumps(cached_audio_answer()).encode() + b"\r\n\r\n"])
    assert (r.usage.cached_tokens, r.usage.audio_input_tokens, r.usage.cached_audio_tokens) == (3512, 3512, 3512)
