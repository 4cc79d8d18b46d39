"""The Chat Completions stream decoder on recorded OpenAI streams, split every way."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloverleaf._errors import InvalidRequestError, MalformedResponseError, RateLimitError
from cloverleaf._types import ChatRequest, Message
from tests.providers._openai_replay import (
    PA,
    accumulate,
    adapter,
    decode_stream,
    interaction,
    merged,
    recorded_chunks,
    replay_stream,
)

OA = f"{PA}/test_openai"
TOOL_STREAM = f"{OA}/test_run_stream_sync_streams_real_model.yaml"
REQ = ChatRequest("gpt-4o-mini", [Message.user("What is the capital of the UK?")], stream=True)


def test_streamed_tool_call() -> None:
    events, resp = replay_stream("openai", TOOL_STREAM, REQ, 0)
    deltas = [e for e in events if e.type == "tool_call_delta"]
    assert deltas[0].id == "call_ZR5UUuTt3pf61kjwAJIYdVMj" and deltas[0].name == "get_capital"
    assert all(d.index == 0 for d in deltas)
    assert "".join(d.arguments or "" for d in deltas) == '{"country":"UK"}'
    [call] = resp.tool_calls
    assert (call.name, call.arguments) == ("get_capital", {"country": "UK"})
    assert resp.finish_reason == "tool_calls" and resp.metadata.raw_finish_reason == "tool_calls"
    final = recorded_chunks(TOOL_STREAM, 0)[-1]["usage"]
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (final["prompt_tokens"], final["completion_tokens"])
    assert resp.model == "gpt-4o-mini-2024-07-18"
    assert resp.metadata.response_id == "chatcmpl-Dx0XpqH8w09uBXwq1zFGYdETjtnEl"


def test_streamed_text_has_one_done_after_usage() -> None:
    events, resp = replay_stream("openai", TOOL_STREAM, REQ, 1)
    assert resp.text == "The capital of the UK is London."
    assert [e.type for e in events].count("done") == 1
    assert events[-1].type == "done" and events[-2].type == "usage"
    assert events[-1].finish_reason == "stop"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (78, 9)


def test_gpt5_stream_with_moderation_chunks() -> None:
    path = f"{OA}/test_openai_moderation_stream.yaml"
    _, resp = replay_stream("openai", path, ChatRequest("gpt-5", [Message.user("capital of France?")]))
    assert resp.text == "Paris."
    usage = next(c["usage"] for c in recorded_chunks(path) if c.get("usage"))
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])


def test_parallel_tool_calls_interleaved_by_index() -> None:
    body = b"".join(
        b"data: " + json.dumps(c).encode() + b"\n\n" for c in [
            {"id": "x", "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": ""}},
                {"index": 1, "id": "b", "type": "function", "function": {"name": "g", "arguments": '{"y"'}}]}}]},
            {"id": "x", "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": '{"x": 1}'}}]}}]},
            {"id": "x", "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 1, "function": {"arguments": ": 2}"}}]}, "finish_reason": "tool_calls"}]},
        ]) + b"data: [DONE]\n\n"
    events = decode_stream("openai", body, REQ)
    resp = accumulate("openai", events, REQ)
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == [("a", "f", {"x": 1}), ("b", "g", {"y": 2})]


def test_tool_calls_without_index_start_a_new_call_per_id() -> None:
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in [
        {"choices": [{"delta": {"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{}"}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": "{"}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"function": {"arguments": "}"}}]}, "finish_reason": "tool_calls"}]},
    ])
    resp = accumulate("openai", decode_stream("openai", body, REQ), REQ)  # no [DONE]: finish_reason suffices
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == [("a", "f", {}), ("b", "g", {})]


def _tool_chunks(*deltas: list[dict[str, object]]) -> bytes:
    chunks = [{"id": "c", "model": "qwen", "choices": [{"index": 0, "delta": {"tool_calls": d}}]} for d in deltas]
    chunks.append({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def test_parallel_calls_at_one_index_with_their_own_ids_stay_apart() -> None:
    """SGLang and some vLLM builds send each parallel call whole at index 0 with its own id; a
    call's later fragments without an id follow it, wherever it was moved to."""
    body = _tool_chunks(
        [{"index": 0, "id": "call_aaa", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": '}}],
        [{"index": 0, "function": {"arguments": '"Paris"}'}}],
        [{"index": 0, "id": "call_bbb", "type": "function", "function": {"name": "get_time", "arguments": '{"tz": '}}],
        [{"index": 0, "function": {"arguments": '"CET"}'}}],
        [{"index": 0, "id": "call_ccc", "type": "function", "function": {"name": "get_date", "arguments": "{}"}}])
    resp = accumulate("vllm", decode_stream("vllm", body, REQ), REQ)
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == [
        ("call_aaa", "get_weather", {"city": "Paris"}), ("call_bbb", "get_time", {"tz": "CET"}),
        ("call_ccc", "get_date", {})]
    assert resp.finish_reason == "tool_calls"


def test_an_id_repeated_on_every_fragment_is_still_one_call() -> None:
    body = _tool_chunks(
        [{"index": 0, "id": "call_aaa", "type": "function", "function": {"name": "f", "arguments": '{"x"'}}],
        [{"index": 0, "id": "call_aaa", "function": {"arguments": ": 1}"}}],
        [{"index": 1, "id": "call_bbb", "type": "function", "function": {"name": "g", "arguments": "{}"}}],
        [{"index": 1, "id": "call_bbb", "function": {"arguments": ""}}])
    resp = accumulate("vllm", decode_stream("vllm", body, REQ), REQ)
    assert [(c.id, c.name, c.arguments) for c in resp.tool_calls] == [("call_aaa", "f", {"x": 1}), ("call_bbb", "g", {})]


def test_arguments_sent_as_a_json_object_stream_as_json_text_as_the_whole_answer_reads_them() -> None:
    """Some OpenAI-compatible servers send ``arguments`` as the object, not its JSON text; the
    stream gives its JSON text (what every client joins and relays), as the whole answer does."""
    from cloverleaf._http import HttpResponse

    body = _tool_chunks([{"index": 0, "id": "call_1", "type": "function",
                          "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
                        [{"index": 1, "id": "call_2", "type": "function", "function": {"name": "f", "arguments": [1]}}])
    events = decode_stream("vllm", body, REQ)
    assert [e.arguments for e in events if e.type == "tool_call_delta"] == ['{"city":"Paris"}', "[1]"]
    streamed = accumulate("vllm", events, REQ)
    calls = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
             {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": [1]}}]
    whole = adapter("vllm").parse_chat(HttpResponse(200, {}, json.dumps({"id": "c", "model": "qwen", "choices": [
        {"index": 0, "message": {"role": "assistant", "tool_calls": calls}, "finish_reason": "tool_calls"}]}).encode()),
        REQ)
    for resp in (streamed, whole):
        assert [(c.raw_arguments, c.arguments) for c in resp.tool_calls] == [
            ('{"city":"Paris"}', {"city": "Paris"}), ("[1]", {"_value": [1]})]


# --------------------------------------------------------------------------- end of stream rules


def _cut(body: bytes, marker: bytes) -> bytes:
    return body[: body.index(marker)]


def test_close_without_done_after_finish_reason_is_accepted() -> None:
    body = interaction(TOOL_STREAM, 1).response.body
    events = decode_stream("openai", _cut(body, b"data: [DONE]"), REQ)
    assert events[-1].type == "done" and events[-1].finish_reason == "stop"


def test_stream_cut_before_finish_reason_raises() -> None:
    body = interaction(TOOL_STREAM, 1).response.body
    cut = _cut(body, b'"finish_reason":"stop"')
    cut = cut[: cut.rindex(b"data:")]
    with pytest.raises(MalformedResponseError, match="ended before"):
        decode_stream("openai", cut, REQ)


def test_empty_stream_raises() -> None:
    with pytest.raises(MalformedResponseError, match="empty"):
        decode_stream("openai", b"", REQ)


def test_invalid_json_raises_malformed_not_value_error() -> None:
    with pytest.raises(MalformedResponseError):
        decode_stream("openai", b'data: {"choices": [\n\n', REQ)


def test_in_stream_error_object_raises_mapped_error() -> None:
    body = b'data: {"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded"}}\n\n'
    with pytest.raises(RateLimitError, match="slow down"):
        decode_stream("openai", body, REQ)
    body = b'event: error\ndata: {"error": {"message": "bad", "type": "invalid_request_error", "status_code": 400}}\n\n'
    with pytest.raises(InvalidRequestError) as info:
        decode_stream("openai", body, REQ)
    assert info.value.status == 400


def test_events_after_done_are_ignored() -> None:
    body = interaction(TOOL_STREAM, 1).response.body + b'data: {"choices":[{"delta":{"content":"late"}}]}\n\n'
    events = decode_stream("openai", body, REQ)
    assert [e.type for e in events].count("done") == 1
    assert "late" not in "".join(e.text or "" for e in events)


# --------------------------------------------------------------------------- any split, same answer


SPLIT_CASES = [
    ("openai", TOOL_STREAM, 0), ("openai", TOOL_STREAM, 1),
    ("openrouter", f"{PA}/test_openrouter/test_openrouter_streaming_reasoning.yaml", -1),
    ("mistral", f"{PA}/test_mistral/test_mistral_model_thinking_part_iter.yaml", -1),
    ("azure", "crewAI/lib/crewai/tests/cassettes/llms/TestAzureToolCallStreaming."
              "test_azure_streaming_emits_tool_call_events.yaml", -1),
]


@pytest.mark.parametrize(("row", "path", "index"), SPLIT_CASES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_split_gives_same_events_and_response(row: str, path: str, index: int, data: st.DataObject) -> None:
    body = interaction(path, index).response.body
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=40)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    whole = decode_stream(row, body, REQ)
    dec = adapter(row).stream_decoder(REQ)
    split = [ev for piece in pieces for ev in dec.feed(piece)] + dec.close()
    assert merged(split) == merged(whole)
    a, b = accumulate(row, whole, REQ), accumulate(row, split, REQ)
    assert (a.text, a.reasoning, [(c.id, c.name, c.arguments) for c in a.tool_calls], a.usage, a.finish_reason,
            a.metadata.extra) == \
        (b.text, b.reasoning, [(c.id, c.name, c.arguments) for c in b.tool_calls], b.usage, b.finish_reason,
         b.metadata.extra)
    assert a.text or a.tool_calls  # the recording really decoded to something


def test_streamed_refusal_matches_the_non_stream_rule() -> None:
    body = (b'data: {"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"refusal":"I can\'t"}}]}\n\n'
            b'data: {"id":"c","choices":[{"index":0,"delta":{"refusal":" help."},"finish_reason":"stop"}]}\n\n'
            b"data: [DONE]\n\n")
    resp = accumulate("openai", decode_stream("openai", body, REQ), REQ)
    assert resp.text == "I can't help." and resp.finish_reason == "content_filter"
    assert resp.metadata.extra["refusal"] == "I can't help."


def test_a_stream_without_usage_has_unknown_usage_not_zero() -> None:
    """A compatible server that ignores ``include_usage``: the recorded stream without its usage chunk."""
    kept = [c for c in recorded_chunks(TOOL_STREAM, 1) if not c.get("usage")]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in kept).encode() + b"data: [DONE]\n\n"
    resp = accumulate("openai", decode_stream("openai", body, REQ), REQ)
    assert resp.text == "The capital of the UK is London." and resp.finish_reason == "stop"
    assert resp.usage.reported is False and resp.usage.total_tokens == 0
    _, counted = replay_stream("openai", TOOL_STREAM, REQ, 1)
    assert counted.usage.reported is True


def _delta_chunks(*deltas: dict[str, object]) -> bytes:
    chunks = [{"id": "c", "model": "m", "choices": [{"index": 0, "delta": d}]} for d in deltas]
    chunks.append({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def test_a_text_only_delta_skips_the_lookups_for_everything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per streamed chunk the usual delta is text alone (the first with ``role`` and a null
    ``refusal``): it becomes its text event without the reasoning, audio, refusal and tool-call
    lookups (a quarter of the decoder's work per chunk); any other key takes the full path."""
    from cloverleaf.providers.openai import stream

    looked: list[object] = []
    real = stream.reasoning_text
    monkeypatch.setattr(stream, "reasoning_text", lambda delta: looked.append(delta) or real(delta))
    plain = _delta_chunks({"role": "assistant", "content": "", "refusal": None}, {"content": "Hel"}, {"content": "lo"})
    events = decode_stream("openai", plain, REQ)
    assert [(e.type, e.text) for e in events if e.type == "text"] == [("text", "Hel"), ("text", "lo")]
    assert looked == [{}]   # only the finish chunk's empty delta, which has no content
    looked.clear()
    mixed = _delta_chunks({"content": "a", "reasoning_content": "r"}, {"content": "b", "refusal": "no"},
                          {"content": None, "role": "assistant"})
    events = decode_stream("openai", mixed, REQ)
    assert [(e.type, e.text) for e in events if e.type in ("text", "reasoning")] == [
        ("reasoning", "r"), ("text", "a"), ("text", "b"), ("text", "no")]
    assert len(looked) == 4 and events[-1].finish_reason == "content_filter"   # the refusal, as before
