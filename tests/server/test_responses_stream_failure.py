"""A Responses stream that fails after it started says so: ``response.failed`` is sent even when
closing the item being written fails too (the fault being reported may sit in it), so the client
hears why the stream ended instead of a connection dropped with no word."""

from __future__ import annotations

import json
from typing import Any

from cloverleaf._types import StreamEvent
from cloverleaf.server.responses.stream import ResponsesStreamEncoder
from cloverleaf.server.responses.wire import parse_request
from tests.translation.harness import validate_responses_event

FAILURE = {"error": {"message": "the stream from up/x failed", "type": "api_error", "status": 502}}


def _events(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")]


def _encoder_with_a_call_that_cannot_close() -> tuple[ResponsesStreamEncoder, bytes]:
    """A finished message, then a call whose arguments are not text (what an upstream's object
    arguments once reached the encoder as): closing that call raises."""
    enc = ResponsesStreamEncoder(parse_request({"model": "m", "input": "x"}), response_id="resp_1", model="m",
                                 created_at=1)
    raw = enc.start()
    for ev in (StreamEvent("text", text="Looking it up."),
               StreamEvent("tool_call_delta", index=0, id="call_1", name="get_weather",
                           arguments={"city": "Paris"})):  # type: ignore[arg-type]
        raw += enc.encode(ev) or b""
    return enc, raw


def test_a_failure_while_closing_the_open_item_still_sends_response_failed() -> None:
    enc, raw = _encoder_with_a_call_that_cannot_close()
    said = _events(enc.error(FAILURE))
    for event in said:
        validate_responses_event(event)
    events = _events(raw) + said
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    failed = events[-1]
    assert failed["type"] == "response.failed"
    assert failed["response"]["error"]["message"] == "the stream from up/x failed"
    assert [i["type"] for i in failed["response"]["output"]] == ["message"]   # what was finished before stays



def test_response_failed_is_sent_even_when_the_output_holds_text_no_utf8_can_carry() -> None:
    """A lone surrogate in the text being written (once, one from a provider's JSON): the
    error path raised again on it, and the stream ended with no terminal event."""
    enc = ResponsesStreamEncoder(parse_request({"model": "m", "input": "x"}), response_id="resp_1", model="m",
                                 created_at=1)
    enc.start()
    try:
        enc.encode(StreamEvent("text", text="a\ud800b"))
    except UnicodeEncodeError:
        pass    # the chunk itself could not be sent; the failure is reported next
    failed = _events(enc.error(FAILURE))[-1]
    assert failed["type"] == "response.failed"
    assert failed["response"]["error"]["message"] == "the stream from up/x failed"


def test_response_failed_is_sent_even_when_the_snapshot_cannot_be_written() -> None:
    enc = ResponsesStreamEncoder(parse_request({"model": "m", "input": "x"}), response_id="resp_1", model="m",
                                 created_at=1)
    enc.start()
    enc._output.append({"type": "message", "content": {1, 2}})   # a value no JSON writer takes
    failed = _events(enc.error(FAILURE))[-1]
    assert failed["type"] == "response.failed" and failed["response"]["status"] == "failed"
    assert failed["response"]["id"] == "resp_1" and failed["response"]["error"]["code"] == "server_error"
