"""The shared SSE-over-JSON loop: one parse per event, [DONE], blank data, bad JSON, any split."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloverleaf._errors import MalformedResponseError
from cloverleaf._types import StreamEvent
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
