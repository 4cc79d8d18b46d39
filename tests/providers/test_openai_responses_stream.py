"""The Responses stream decoder on recorded streams, split every way, checked against the
complete response object each stream ends with (``response.completed``)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloverleaf._errors import ContextWindowExceededError, MalformedResponseError, ServerError
from cloverleaf._http import HttpResponse
from cloverleaf._types import ChatRequest, Message, Reasoning, StreamEvent, Text
from tests.providers._openai_replay import (
    PA,
    accumulate,
    adapter,
    decode_stream,
    interaction,
    recorded_chunks,
    replay_stream,
)

RESP = f"{PA}/test_openai_responses"
ROW = "openai-responses"
REQ = ChatRequest("gpt-4o", [Message.user("What is the capital of France?")], stream=True)

TOOLS_THEN_TEXT = f"{RESP}/test_openai_responses_stream.yaml"
REASONING = f"{RESP}/test_openai_responses_thinking_part_iter.yaml"
GPT5_TOOL = f"{RESP}/test_openai_responses_streaming_usage.yaml"
PHASES = f"{RESP}/test_openai_responses_phase_streamed_on_part_start.yaml"
OPENROUTER_RAW_COT = f"{RESP}/test_openai_responses_raw_cot_stream_openrouter.yaml"

STREAMS = [(TOOLS_THEN_TEXT, 0), (TOOLS_THEN_TEXT, 1), (REASONING, 0), (GPT5_TOOL, 0), (PHASES, 0), (PHASES, 1),
           (OPENROUTER_RAW_COT, 0)]


def terminal(path: str, index: int = -1) -> dict[str, Any]:
    """The complete response object carried by the stream's terminal event (read without our decoder)."""
    last = recorded_chunks(path, index)[-1]
    assert last["type"] in ("response.completed", "response.incomplete")
    return last["response"]


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def without_redacted(parts: list[Any]) -> list[Any]:
    """``encrypted_content`` is re-encrypted for every event that carries it, so streams and the
    terminal response object legitimately differ there and only there."""
    return [replace(p, redacted=bool(p.redacted)) if isinstance(p, Reasoning) else p for p in parts]


def without_ids(parts: list[Any]) -> list[Any]:
    return [replace(p, signature=None) if isinstance(p, Reasoning) else replace(p, extra=None) for p in parts]


@pytest.mark.parametrize("path, index", STREAMS, ids=lambda v: str(v).rsplit("/", 1)[-1])
def test_stream_assembles_to_the_terminal_response(path: str, index: int) -> None:
    events, streamed = replay_stream(ROW, path, REQ, index)
    whole = adapter(ROW).parse_chat(HttpResponse(200, {}, json.dumps(terminal(path, index)).encode()), REQ)
    assert [e.type for e in events].count("done") == 1 and events[-1].type == "done"
    if path == OPENROUTER_RAW_COT:  # OpenRouter mints new temporary item ids for its terminal object
        streamed.parts, whole.parts = without_ids(streamed.parts), without_ids(whole.parts)
    assert without_redacted(streamed.parts) == without_redacted(whole.parts)
    assert (streamed.usage, streamed.finish_reason, streamed.model, streamed.metadata.response_id) == (
        whole.usage, whole.finish_reason, whole.model, whole.metadata.response_id)
    assert streamed.text or streamed.tool_calls


def test_streamed_tool_call() -> None:
    events, resp = replay_stream(ROW, TOOLS_THEN_TEXT, REQ, 0)
    deltas = [e for e in events if e.type == "tool_call_delta"]
    assert (deltas[0].id, deltas[0].name, deltas[0].index) == ("call_kL0PCQV7M2WMoVX8V8OtYSAL", "get_capital", 0)
    assert deltas[0].extra == {"item_id": "fc_67e554a1de488191af0831d35cbe082e0794405d35281ae2"}
    assert "".join(d.arguments or "" for d in deltas) == '{"country":"France"}'
    [call] = resp.tool_calls
    assert (call.name, call.arguments) == ("get_capital", {"country": "France"})
    assert resp.finish_reason == "tool_calls" and resp.metadata.raw_finish_reason == "completed"
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (
        terminal(TOOLS_THEN_TEXT, 0)["usage"]["input_tokens"], terminal(TOOLS_THEN_TEXT, 0)["usage"]["output_tokens"])


def test_streamed_text_carries_the_message_id_once() -> None:
    events, resp = replay_stream(ROW, TOOLS_THEN_TEXT, REQ, 1)
    texts = [e for e in events if e.type == "text"]
    assert texts[0].extra == {"item_id": "msg_67e554a28bec8191b56d3e2331eff88006c52f0e511c76ed"}
    assert all(e.extra is None for e in texts[1:])
    assert resp.text == "The capital of France is Paris." and resp.finish_reason == "stop"
    assert [e.type for e in events][-2:] == ["usage", "done"]


def test_streamed_reasoning_summaries_and_encrypted_content() -> None:
    events, resp = replay_stream(ROW, REASONING, REQ)
    reasoning_text = "".join(e.text or "" for e in events if e.type == "reasoning")
    summaries = [c["text"] for c in recorded_chunks(REASONING) if c["type"] == "response.reasoning_summary_text.done"]
    assert reasoning_text == "".join(summaries) == resp.reasoning
    parts = [p for p in resp.parts if isinstance(p, Reasoning)]
    assert [p.text for p in parts] == summaries
    final_item = next(c["item"] for c in recorded_chunks(REASONING)
                      if c["type"] == "response.output_item.done" and c["item"]["type"] == "reasoning")
    assert {p.signature for p in parts} == {final_item["id"]}
    assert parts[-1].redacted == final_item["encrypted_content"]  # the done copy, not the added one
    assert resp.usage.reasoning_tokens == terminal(REASONING)["usage"]["output_tokens_details"]["reasoning_tokens"]
    assert resp.text.startswith("I'm not a road safety professional")


def test_openrouter_raw_chain_of_thought_with_keepalive_comments() -> None:
    _, resp = replay_stream(ROW, OPENROUTER_RAW_COT, REQ)
    assert resp.reasoning and resp.reasoning.startswith('The user asks: "What is 2+2?"')
    assert resp.text.strip().startswith("4") and resp.finish_reason == "stop"
    assert resp.usage.reasoning_tokens == 22


def test_in_stream_error_event_raises_mapped_error() -> None:
    body = sse({"type": "response.created", "response": {"id": "resp_1", "model": "o3", "status": "in_progress"}},
               {"type": "error", "code": "context_length_exceeded", "message": "Input too long", "param": "input",
                "sequence_number": 1})
    with pytest.raises(ContextWindowExceededError) as err:
        decode_stream(ROW, body, REQ)
    assert err.value.provider == ROW and "Input too long" in str(err.value)


def test_response_failed_raises_server_error() -> None:
    body = sse({"type": "response.created", "response": {"id": "resp_1", "model": "o3", "status": "in_progress"}},
               {"type": "response.failed", "sequence_number": 1, "response": {
                   "id": "resp_1", "model": "o3", "status": "failed", "output": [],
                   "error": {"code": "server_error", "message": "The model failed to generate a response."}}})
    with pytest.raises(ServerError) as err:
        decode_stream(ROW, body, REQ)
    assert err.value.retryable and err.value.model == "o3"


def test_response_incomplete_is_length_with_usage() -> None:
    body = sse(
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"type": "message", "id": "msg_1", "role": "assistant", "status": "in_progress", "content": []}},
        {"type": "response.output_text.delta", "output_index": 0, "item_id": "msg_1", "delta": "Part"},
        {"type": "response.incomplete", "response": {
            "id": "resp_1", "model": "o3-2025", "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
            "usage": {"input_tokens": 3, "output_tokens": 50, "output_tokens_details": {"reasoning_tokens": 49}}}})
    events = decode_stream(ROW, body, REQ)
    resp = accumulate(ROW, events, REQ)
    assert resp.finish_reason == "length" and resp.metadata.raw_finish_reason == "max_output_tokens"
    assert (resp.text, resp.usage.output_tokens, resp.usage.reasoning_tokens, resp.model) == ("Part", 50, 49, "o3-2025")


def test_streamed_refusal() -> None:
    body = sse(
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"type": "message", "id": "msg_1", "role": "assistant", "content": []}},
        {"type": "response.refusal.delta", "output_index": 0, "item_id": "msg_1", "delta": "I can't"},
        {"type": "response.refusal.delta", "output_index": 0, "item_id": "msg_1", "delta": " help."},
        {"type": "response.completed", "response": {"id": "resp_1", "model": "gpt-4o", "status": "completed"}})
    resp = accumulate(ROW, decode_stream(ROW, body, REQ), REQ)
    assert resp.text == "I can't help." and resp.finish_reason == "content_filter"
    assert resp.metadata.extra == {"refusal": "I can't help."}
    assert [(p.text, p.extra) for p in resp.parts] == [("I can't help.", {"item_id": "msg_1", "refusal": True})]


def test_streamed_answer_then_refusal_are_two_parts_only_the_refusal_marked() -> None:
    body = sse(
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"type": "message", "id": "msg_1", "role": "assistant", "content": []}},
        {"type": "response.output_text.delta", "output_index": 0, "item_id": "msg_1", "delta": "Well"},
        {"type": "response.output_text.delta", "output_index": 0, "item_id": "msg_1", "delta": ". "},
        {"type": "response.refusal.delta", "output_index": 0, "item_id": "msg_1", "delta": "I can't"},
        {"type": "response.refusal.delta", "output_index": 0, "item_id": "msg_1", "delta": " help."},
        {"type": "response.completed", "response": {"id": "resp_1", "model": "gpt-4o", "status": "completed"}})
    resp = accumulate(ROW, decode_stream(ROW, body, REQ), REQ)
    assert [(p.text, p.extra) for p in resp.parts] == [("Well. ", {"item_id": "msg_1"}),
                                                       ("I can't help.", {"item_id": "msg_1", "refusal": True})]
    assert resp.refusal == "I can't help." and resp.finish_reason == "content_filter"


def test_a_refusal_delivered_whole_in_output_item_done_is_marked() -> None:
    item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
            "content": [{"type": "refusal", "refusal": "No."}]}
    body = sse({"type": "response.output_item.done", "output_index": 0, "item": item},
               {"type": "response.completed", "response": {"id": "r", "status": "completed", "output": [item]}})
    resp = accumulate(ROW, decode_stream(ROW, body, REQ), REQ)
    assert [(p.text, p.extra) for p in resp.parts] == [("No.", {"item_id": "msg_1", "refusal": True})]
    assert resp.refusal == "No."


def test_message_delivered_only_in_output_item_done_is_not_lost() -> None:
    item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": "whole", "annotations": []}]}
    body = sse({"type": "response.output_item.done", "output_index": 0, "item": item},
               {"type": "response.completed", "response": {"id": "r", "status": "completed", "output": [item]}})
    resp = accumulate(ROW, decode_stream(ROW, body, REQ), REQ)
    assert resp.text == "whole" and resp.parts[0].extra == {"item_id": "msg_1"}


def test_cut_off_stream_raises_at_close() -> None:
    body = interaction(TOOLS_THEN_TEXT, 1).response.body
    cut = body[: body.index(b"event: response.completed")]
    dec = adapter(ROW).stream_decoder(REQ)
    events = dec.feed(cut)
    assert any(e.type == "text" for e in events)
    with pytest.raises(MalformedResponseError, match="ended before the response completed"):
        dec.close()
    with pytest.raises(MalformedResponseError, match="empty"):
        adapter(ROW).stream_decoder(REQ).close()


def test_invalid_json_is_malformed_not_value_error() -> None:
    with pytest.raises(MalformedResponseError):
        adapter(ROW).stream_decoder(REQ).feed(b"event: response.created\ndata: {not json\n\n")


def _signature(events: list[StreamEvent]) -> list[tuple[Any, ...]]:
    """Events as tuples, adjacent text/reasoning/argument fragments merged (splits may cut them anywhere)."""
    out: list[list[Any]] = []
    for ev in events:
        fragment = ev.text if ev.type in ("text", "reasoning") else ev.arguments
        plain = ev.type in ("text", "reasoning", "tool_call_delta") and not (
            ev.id or ev.name or ev.signature or ev.redacted or ev.extra)
        if plain and out and out[-1][0] == (ev.type, ev.index) and out[-1][-1]:
            out[-1][1] = (out[-1][1] or "") + (fragment or "")
            continue
        out.append([(ev.type, ev.index), fragment, ev.id, ev.name, ev.signature, ev.redacted, ev.extra, ev.usage,
                    ev.finish_reason, ev.raw_finish_reason, ev.model, plain])
    return [tuple(x) for x in out]


@pytest.mark.parametrize("path, index", STREAMS, ids=lambda v: str(v).rsplit("/", 1)[-1])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_any_split_gives_same_events_and_response(path: str, index: int, data: st.DataObject) -> None:
    body = interaction(path, index).response.body
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=40)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    whole = decode_stream(ROW, body, REQ)
    dec = adapter(ROW).stream_decoder(REQ)
    split = [ev for piece in pieces for ev in dec.feed(piece)] + dec.close()
    assert _signature(split) == _signature(whole)
    a, b = accumulate(ROW, whole, REQ), accumulate(ROW, split, REQ)
    assert (a.parts, a.usage, a.finish_reason, a.metadata.extra) == (b.parts, b.usage, b.finish_reason,
                                                                     b.metadata.extra)


ANNOTATIONS = f"{RESP}/test_openai_include_raw_annotations_streaming.yaml"
ANNOTATIONS_WHOLE = f"{RESP}/test_openai_include_raw_annotations_non_streaming.yaml"
BRITANNICA = ("web_search_result_location", "https://www.britannica.com/place/Mount-Columbia?utm_source=openai",
              "Mount Columbia | mountain, Alberta, Canada | Britannica")


@pytest.mark.parametrize("index", [0, 1])
def test_web_search_sources_are_citations_of_the_text_whole_and_streamed(index: int) -> None:
    """gpt-5.2 with the ``web_search`` tool (recorded): the answer's ``url_citation`` annotations
    were dropped, so a caller had the text without its sources; now they are the text's citations,
    with where they cite it, the same whole and streamed (and whatever the split)."""
    whole = adapter(ROW).parse_chat(interaction(ANNOTATIONS_WHOLE, index).response, REQ)
    _, streamed = replay_stream(ROW, ANNOTATIONS, REQ, index, size=97)
    for r in (whole, streamed):
        [text] = r.parts
        assert isinstance(text, Text) and "Mount Columbia" in text.text
        [cited] = text.citations or ()
        assert (cited.type, cited.url, cited.title) == BRITANNICA
        assert cited.extra is not None and set(cited.extra) == {"start_index", "end_index"}
    terminal_parts = adapter(ROW).parse_chat(
        HttpResponse(200, {}, json.dumps(terminal(ANNOTATIONS, index)).encode()), REQ).parts
    assert streamed.parts == terminal_parts


def test_citations_of_a_message_delivered_whole_in_output_item_done_are_kept() -> None:
    item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": "Oslo is in Norway.", "logprobs": [],
                         "annotations": [{"type": "url_citation", "url": "https://no.example/", "title": "Norway",
                                          "start_index": 0, "end_index": 4}]}]}
    body = sse({"type": "response.output_item.done", "output_index": 0, "item": item},
               {"type": "response.completed",
                "response": {"id": "resp_1", "status": "completed", "model": "gpt-5", "output": [item]}})
    [text] = accumulate(ROW, decode_stream(ROW, body, REQ), REQ).parts
    assert isinstance(text, Text) and [c.url for c in text.citations or ()] == ["https://no.example/"]
