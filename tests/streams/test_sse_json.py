"""The shared SSE-over-JSON loop: one parse per event, [DONE], blank data, bad JSON, any split."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloverleaf._errors import MalformedResponseError
from cloverleaf._types import StreamEvent
from cloverleaf.streams.sse import SSEDecoder
from cloverleaf.streams.sse_json import JSONEventDecoder


class Recorder(JSONEventDecoder):
    __slots__ = ("seen", "ended")

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []
        self.ended = False

    def _payload(self, event: str | None, payload: Any, out: list[StreamEvent]) -> None:
        self.seen.append((event, payload))
        out.append(StreamEvent("text", text=str(payload.get("t"))))

    def _sentinel(self, out: list[StreamEvent]) -> None:
        self.seen.append("[DONE]")

    def _end(self, out: list[StreamEvent]) -> None:
        self.ended = True
        out.append(StreamEvent("done"))

    def _malformed(self, what: str, data: str | None = None) -> MalformedResponseError:
        return MalformedResponseError(what, provider="test", body=data)


BODY = (b': keep-alive\n\ndata: {"t": "a"}\n\nevent: delta\r\ndata: {"t": "\xc3\xa9"}\r\n\r\n'
        b"data:   \n\ndata: [DONE]\n\n")


def test_payloads_sentinel_and_end() -> None:
    dec = Recorder()
    events = dec.feed(BODY) + dec.close()
    assert dec.seen == [(None, {"t": "a"}), ("delta", {"t": "é"}), "[DONE]"]
    assert [(e.type, e.text) for e in events] == [("text", "a"), ("text", "é"), ("done", None)] and dec.ended


@given(st.lists(st.integers(0, len(BODY)), max_size=12))
def test_any_split_same_payloads(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    dec = Recorder()
    for a, b in zip([0, *points], [*points, len(BODY)], strict=True):
        dec.feed(BODY[a:b])
    dec.close()
    assert dec.seen == [(None, {"t": "a"}), ("delta", {"t": "é"}), "[DONE]"]


def test_invalid_json_is_the_subclass_error_with_the_data() -> None:
    with pytest.raises(MalformedResponseError, match="not JSON") as info:
        Recorder().feed(b'data: {"t": \n\n')
    assert info.value.body == '{"t": '


#: chunks (each fed as these pieces) whose events the per-chunk path parses from their bytes, or
#: must not: invalid UTF-8, a lone surrogate escape, a 19-digit integer, blank data, [DONE], other
#: fields, a UTF-8 sequence split between two reads
CHUNKS = [(b'data: {"t": "a"}\n\n',), (b'data:{"t":"\xc3\xa9"}\n\n',), (b'data: {"t": "\xff\xfe"}\n\n',),
          (b'data: {"t": "a\\ud800b"}\n\n',), (b'data: {"t": 12345678901234567890123}\n\n',), (b"data:   \n\n",),
          (b'data: {"t": [1, 2]}\n\ndata: {"t": null}\n\n',), (b": keep-alive\n\n",), (b'event: e\ndata: {"t": 1}\n\n',),
          (b'data: {"t": "\xe2\x82', b'\xac"}\n\n'), (b"data: [DONE]\n\n",)]


@given(st.lists(st.sampled_from(CHUNKS), max_size=10))
def test_whole_event_chunks_parse_to_what_a_byte_at_a_time_gives(chunks: list[tuple[bytes, ...]]) -> None:
    """Chunks of whole ``data:`` events are parsed from their bytes (no text decode, no event
    objects): the payloads are exactly those of the same bytes fed one at a time, whatever
    comes before (a split UTF-8 sequence, other fields) and whatever the bytes hold."""
    whole, by_byte = Recorder(), Recorder()
    for piece in (p for chunk in chunks for p in chunk):
        whole.feed(piece)
        for b in piece:
            by_byte.feed(bytes([b]))
    whole.close()
    by_byte.close()
    assert repr(whole.seen) == repr(by_byte.seen)   # (repr: 1.2345678901234568e+22 == the int)


def test_a_chunk_of_whole_events_skips_the_text_decode() -> None:
    dec = SSEDecoder()
    assert dec.whole_data_payloads(b"data: {}\n\n") is None   # the first chunk: its byte order mark check
    dec.feed(b"data: {}\n\n")
    assert dec.whole_data_payloads(b'data: {"a":1}\n\ndata:[DONE]\n\n') == [b'{"a":1}', b"[DONE]"]
    for other in (b"data: {}\n", b"data: {}\r\n\r\n", b"event: x\ndata: {}\n\n", b": ping\n\n"):
        assert dec.whole_data_payloads(other) is None
    dec.feed(b"data: {\xe2\x82")   # pending: a partial line and a partial UTF-8 sequence
    assert dec.whole_data_payloads(b"data: {}\n\n") is None
