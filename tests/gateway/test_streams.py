"""Streams fall back only before their first output, and never repeat text."""

from __future__ import annotations

import pytest

from cloverleaf._errors import AllTargetsFailed, StreamInterrupted
from cloverleaf._types import StreamEvent

from .conftest import Harness, chat_request, upstream

PROMPT = "one two three four five six seven eight"


def _text(events: list[StreamEvent]) -> str:
    return "".join(e.text or "" for e in events if e.type == "text")


async def _collect(agen: object, sink: list[StreamEvent]) -> None:
    async for event in agen:  # type: ignore[attr-defined]
        sink.append(event)


async def test_error_status_before_streaming_falls_back(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/fail-503", "fake/echo"]}})
    events: list[StreamEvent] = []
    await _collect(gw.astream("r", chat_request(PROMPT)), events)
    assert _text(events) == PROMPT
    done = events[-1]
    assert done.type == "done" and done.response is not None
    assert done.response.metadata.target == "fake/echo"
    assert [a.target for a in done.response.metadata.attempts] == ["fake/fail-503", "fake/echo"]
    assert sum(1 for e in events if e.type == "done") == 1


async def test_connection_reset_before_first_token_falls_back_transparently(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo", "fake/other"]}})
    upstream(gw).script.reset_after(0)
    events: list[StreamEvent] = []
    await _collect(gw.astream("r", chat_request(PROMPT)), events)
    assert events[-1].response.metadata.target == "fake/other"
    assert len(upstream(gw).requests) == 2
    assert _text(events)  # the second target's full answer, once


async def test_garbage_before_first_token_falls_back(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo", "fake/other"]}})
    upstream(gw).script.garbage()
    events: list[StreamEvent] = []
    await _collect(gw.astream("r", chat_request(PROMPT)), events)
    assert events[-1].type == "done"
    assert type(events[-1].response.metadata.attempts[0].error).__name__ == "MalformedResponseError"


async def test_reset_after_output_raises_stream_interrupted_without_repeating(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo", "fake/other"]}})
    upstream(gw).script.reset_after(4)
    events: list[StreamEvent] = []
    with pytest.raises(StreamInterrupted) as info:
        await _collect(gw.astream("r", chat_request(PROMPT)), events)
    got = _text(events)
    assert got and PROMPT.startswith(got) and got != PROMPT  # a prefix, never repeated
    assert info.value.cause is not None
    assert len(upstream(gw).requests) == 1  # no second target after output
    gw.store.flush()
    [call] = gw.store.recent_calls(1)
    assert call.status == "interrupted" and call.error_type == "StreamInterrupted"
    assert call.ttft_ms is not None


async def test_truncated_stream_after_output_is_interrupted(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo", "fake/other"]}})
    upstream(gw).script.truncate()
    events: list[StreamEvent] = []
    with pytest.raises(StreamInterrupted):
        await _collect(gw.astream("r", chat_request(PROMPT)), events)
    assert _text(events) == PROMPT  # everything before the cut arrived exactly once


async def test_every_target_failing_before_output_raises_all_targets_failed(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/fail-500", "fake/hang"]}},
                         providers={})
    upstream(gw).script.fail(500).fail(502)
    with pytest.raises(AllTargetsFailed) as info:
        await _collect(gw.astream("r", chat_request()), [])
    assert [a.status for a in info.value.attempts] == [500, 502]


async def test_consumer_stopping_early_records_a_cancelled_call(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}})
    agen = gw.astream("r", chat_request(PROMPT))
    first = await agen.__anext__()
    assert first.type == "text"
    await agen.aclose()  # type: ignore[attr-defined]
    gw.store.flush()
    [call] = gw.store.recent_calls(1)
    assert call.status == "cancelled"


async def test_a_stream_interrupted_after_output_keeps_its_token_estimate(harness: Harness) -> None:
    """The provider produced (and bills) output before the cut: its tokens stay booked."""
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}},
                         limits={"fake": {"rpm": 0, "tpm": 100_000, "max_wait": 0}})
    upstream(gw).script.reset_after(4)
    with pytest.raises(StreamInterrupted):
        await _collect(gw.astream("r", chat_request(PROMPT, max_tokens=500)), [])
    assert await gw.state.usage("provider:fake:tpm", gw.clock.now()) >= 500
