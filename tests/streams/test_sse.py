"""The shared SSE decoder: any split of real recorded bodies (OpenAI ``data:`` lines,
Anthropic ``event:`` + ``data:``, Gemini ``\\r\\n\\r\\n``) gives the same events, plus the
WHATWG edge cases LLM APIs actually hit."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloverleaf.streams.sse import ServerSentEvent, SSEDecoder
from tests.wire import cassette

PA = "pydantic-ai/tests/models/cassettes"
RECORDED = {
    "openai": (f"{PA}/test_openai/test_run_stream_sync_streams_real_model.yaml", 1),
    "anthropic": (f"{PA}/test_anthropic/test_anthropic_model_thinking_part_redacted_stream.yaml", -1),
    "gemini": (f"{PA}/test_google/test_google_model_stream.yaml", -1),
    "openrouter": (f"{PA}/test_openrouter/test_openrouter_streaming_reasoning.yaml", -1),
}


def decode(*pieces: bytes) -> list[ServerSentEvent]:
    dec = SSEDecoder()
    out = [ev for p in pieces for ev in dec.feed(p)]
    return out + dec.close()


def body(name: str) -> bytes:
    path, index = RECORDED[name]
    return cassette(path)[index].response.body


def test_recorded_bodies_decode_to_json_events() -> None:
    openai = decode(body("openai"))
    assert openai[-1].data == "[DONE]"
    assert all(json.loads(e.data)["object"] == "chat.completion.chunk" for e in openai[:-1])
    anthropic = decode(body("anthropic"))
    assert anthropic[0].event == "message_start" and json.loads(anthropic[0].data)["type"] == "message_start"
    assert all(json.loads(e.data)["type"] == e.event for e in anthropic)
    gemini = decode(body("gemini"))
    assert b"\r\n\r\n" in body("gemini") and len(gemini) == body("gemini").count(b"\r\n\r\n")
    assert all("candidates" in json.loads(e.data) for e in gemini)
    openrouter = decode(body("openrouter"))  # ": OPENROUTER PROCESSING" comments are skipped
    assert all(e.data == "[DONE]" or json.loads(e.data)["id"] for e in openrouter)


@pytest.mark.parametrize("name", sorted(RECORDED))
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_any_split_of_a_recorded_body_gives_the_same_events(name: str, data: st.DataObject) -> None:
    raw = body(name)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=50)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert decode(*pieces) == decode(raw)


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(["a", "é", "€", "😀", " ", ":"]), min_size=1, max_size=20),
       newline=st.sampled_from(["\n", "\r\n", "\r"]), data=st.data())
def test_any_split_with_any_line_ending_and_multibyte_text(text: str, newline: str, data: st.DataObject) -> None:
    raw = f"event: e{newline}data: {text}{newline}{newline}data: two{newline}{newline}".encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=len(raw))))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert decode(*pieces) == [ServerSentEvent(text, "e"), ServerSentEvent("two")]


def test_comments_are_ignored() -> None:
    assert decode(b": keep-alive\n\n: OPENROUTER PROCESSING\n\ndata: x\n\n") == [ServerSentEvent("x")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decode(b"data: {\ndata:  \"a\": 1\ndata: }\n\n") == [ServerSentEvent('{\n "a": 1\n}')]


def test_one_space_after_colon_is_stripped_only_once_and_no_space_is_fine() -> None:
    assert decode(b"data:x\n\ndata:  y\n\n") == [ServerSentEvent("x"), ServerSentEvent(" y")]


def test_final_event_without_trailing_blank_line_is_flushed_on_close() -> None:
    assert decode(b"data: a\n\ndata: [DONE]") == [ServerSentEvent("a"), ServerSentEvent("[DONE]")]
    assert decode(b"data: [DONE]\n") == [ServerSentEvent("[DONE]")]


def test_cr_only_line_endings() -> None:
    assert decode(b"event: ping\rdata: 1\r\rdata: 2\r\r") == [ServerSentEvent("1", "ping"), ServerSentEvent("2")]


def test_crlf_split_between_cr_and_lf() -> None:
    assert decode(b"data: 1\r", b"\n\r", b"\ndata: 2\r\n\r\n") == [ServerSentEvent("1"), ServerSentEvent("2")]


def test_event_id_and_retry_fields() -> None:
    [ev] = decode(b"id: 7\nretry: 1500\nevent: message_delta\ndata: {}\n\n")
    assert (ev.id, ev.retry, ev.event, ev.data) == ("7", 1500, "message_delta", "{}")
    [bad] = decode(b"retry: soon\ndata: x\n\n")
    assert bad.retry is None


def test_event_type_resets_after_dispatch() -> None:
    events = decode(b"event: error\ndata: {}\n\ndata: {}\n\n")
    assert [e.event for e in events] == ["error", None]


def test_utf8_sequence_split_across_chunks() -> None:
    raw = "data: 日本\n\n".encode()
    assert decode(raw[:7], raw[7:8], raw[8:]) == [ServerSentEvent("日本")]


BOM = b"\xef\xbb\xbf"


def test_one_leading_byte_order_mark_is_ignored_however_the_body_is_split() -> None:
    """.NET proxies start a body with a UTF-8 BOM; read as part of the first line it hid the first
    event (the answer's first words), and the rest looked like a whole answer."""
    raw = BOM + b'data: {"a":1}\n\ndata: {"b":2}\n\n'
    expected = [ServerSentEvent('{"a":1}'), ServerSentEvent('{"b":2}')]
    for cut in range(len(raw) + 1):
        assert decode(raw[:cut], raw[cut:]) == expected, cut
    assert decode(BOM + b"event: ping\ndata: x\n\n") == [ServerSentEvent("x", "ping")]
    # only the first, only at the start: anything else is the event's own text
    assert decode(BOM + BOM + b"data: x\n\n") == []
    assert decode(b"data: " + BOM + b"x\n\n") == [ServerSentEvent("\ufeffx")]


def test_blank_lines_alone_dispatch_nothing() -> None:
    assert decode(b"\n\n\r\n\r\n") == []


def test_field_without_colon_is_a_field_with_empty_value() -> None:
    assert decode(b"data\n\n") == [ServerSentEvent("")]


@given(st.lists(st.sampled_from(["data: {\"a\":1}", "data:x", "data: ", "data:  two spaces", ": keep-alive",
                                 "event: e", "id: 7", "retry: 10", "", "data: [DONE]"]), max_size=12))
def test_whole_event_pieces_decode_as_line_by_line(lines: list[str]) -> None:
    """The fast path for pieces made of whole ``data:`` events gives exactly what feeding the
    same text a byte at a time gives, whatever fields and blank lines come around it."""
    pieces = ["\n".join(lines[i:i + 2]) + "\n\n" for i in range(0, len(lines), 2)]
    whole, by_byte = SSEDecoder(), SSEDecoder()
    fast = [e for p in pieces for e in whole.feed(p.encode())] + whole.close()
    slow = [e for p in pieces for b in p.encode() for e in by_byte.feed(bytes([b]))] + by_byte.close()
    assert fast == slow
