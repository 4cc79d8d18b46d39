"""Circuit breakers on a manual clock: open after N failures, probe once after the cooldown."""

from __future__ import annotations

import asyncio

import pytest

from cloverleaf._errors import CircuitOpen, ServerError, StreamInterrupted
from cloverleaf.gateway import BreakerPolicy, ManualClock
from cloverleaf.gateway.breaker import BreakerSnapshot, on_acquire, on_result

from .conftest import Harness, chat_request, upstream


async def test_opens_after_five_failures_and_rejects_without_calling(harness: Harness) -> None:
    clock = ManualClock()
    gw = harness.gateway(clock=clock)
    upstream(gw).script.fail(500, times=5)
    for _ in range(5):
        with pytest.raises(ServerError):
            await gw.achat("fake/echo", chat_request())
    assert gw.breakers["fake/echo"].state == "open"
    with pytest.raises(CircuitOpen) as info:
        await gw.achat("fake/echo", chat_request())
    assert info.value.retry_after == pytest.approx(60.0)
    assert len(upstream(gw).requests) == 5


async def test_half_open_probe_success_closes(harness: Harness) -> None:
    clock = ManualClock()
    gw = harness.gateway(clock=clock, breaker={"failure_threshold": 2, "cooldown_seconds": 30})
    upstream(gw).script.fail(503, times=2)
    for _ in range(2):
        with pytest.raises(ServerError):
            await gw.achat("fake/echo", chat_request())
    clock.advance(29)
    with pytest.raises(CircuitOpen):
        await gw.achat("fake/echo", chat_request())
    clock.advance(1)
    assert (await gw.achat("fake/echo", chat_request("probe"))).text == "probe"
    assert gw.breakers["fake/echo"].state == "closed"
    assert gw.breakers["fake/echo"].consecutive_failures == 0


async def test_half_open_probe_failure_reopens(harness: Harness) -> None:
    clock = ManualClock()
    gw = harness.gateway(clock=clock, breaker={"failure_threshold": 1, "cooldown_seconds": 10})
    upstream(gw).script.fail(500, times=2)
    with pytest.raises(ServerError):
        await gw.achat("fake/echo", chat_request())
    clock.advance(10)
    with pytest.raises(ServerError):  # the probe went out and failed
        await gw.achat("fake/echo", chat_request())
    snap = gw.breakers["fake/echo"]
    assert snap.state == "open" and snap.opened_at == 10
    clock.advance(5)
    with pytest.raises(CircuitOpen):
        await gw.achat("fake/echo", chat_request())
    assert len(upstream(gw).requests) == 2


async def test_request_errors_do_not_trip_the_breaker(harness: Harness) -> None:
    gw = harness.gateway(breaker={"failure_threshold": 1})
    upstream(gw).script.fail(400)
    with pytest.raises(Exception):  # noqa: B017 - InvalidRequestError
        await gw.achat("fake/echo", chat_request())
    assert gw.breakers["fake/echo"].state == "closed"


def test_only_one_probe_at_a_time() -> None:
    policy = BreakerPolicy(failure_threshold=1, cooldown_seconds=60, probe_timeout_seconds=60)
    snap = on_result(BreakerSnapshot(), False, 0.0, policy)
    assert snap.state == "open"
    snap, first = on_acquire(snap, 60.0, policy)
    assert first.allowed and first.probe and snap.state == "half_open"
    snap, second = on_acquire(snap, 61.0, policy)
    assert not second.allowed and second.retry_after == pytest.approx(59.0)
    # a probe whose caller vanished frees the slot after the probe timeout
    snap, third = on_acquire(snap, 120.0, policy)
    assert third.allowed and third.probe
    assert on_result(snap, True, 121.0, policy) == BreakerSnapshot()


async def test_concurrent_calls_at_the_end_of_the_cooldown_send_exactly_one_probe(harness: Harness) -> None:
    clock = ManualClock()
    gw = harness.gateway(clock=clock, breaker={"failure_threshold": 1, "cooldown_seconds": 10})
    upstream(gw).script.fail(500)
    with pytest.raises(ServerError):
        await gw.achat("fake/echo", chat_request())
    clock.advance(10)
    release = asyncio.Event()
    original = gw.engine.achat

    async def slow(target, req):  # type: ignore[no-untyped-def]
        await release.wait()
        return await original(target, req)

    gw.engine.achat = slow  # type: ignore[method-assign]
    calls = [asyncio.ensure_future(gw.achat("fake/echo", chat_request(f"c{i}"))) for i in range(20)]
    for _ in range(20):
        await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, CircuitOpen)) == 19
    assert [r.text for r in results if not isinstance(r, BaseException)] == ["c0"]
    assert len(upstream(gw).requests) == 2 and gw.breakers["fake/echo"].state == "closed"


async def test_a_streaming_probe_that_fails_after_its_first_token_reopens_the_circuit(harness: Harness) -> None:
    """The probe's first token closes the circuit (so a long stream does not let a second
    probe in), but the probe is still the probe: breaking later reopens the circuit at once,
    instead of counting one failure of ``failure_threshold`` (3 broken streams per cooldown)."""
    clock = ManualClock()
    gw = harness.gateway(clock=clock, breaker={"failure_threshold": 3, "cooldown_seconds": 10,
                                               "probe_timeout_seconds": 30})
    upstream(gw).script.fail(500, times=3)
    for _ in range(3):
        with pytest.raises(ServerError):
            await gw.achat("fake/echo", chat_request())
    assert gw.breakers["fake/echo"].state == "open"
    clock.advance(10)
    upstream(gw).script.reset_after(2)
    seen = []
    with pytest.raises(StreamInterrupted):
        async for event in gw.astream("fake/echo", chat_request("one two three four five six seven eight")):
            seen.append(event.type)
            if len(seen) == 1:
                assert gw.breakers["fake/echo"].state == "closed"   # the first token closed it
    assert "text" in seen
    snap = gw.breakers["fake/echo"]
    assert snap.state == "open" and snap.opened_at == 10
    with pytest.raises(CircuitOpen):                                # one broken stream per cooldown
        await gw.achat("fake/echo", chat_request())
    assert len(upstream(gw).requests) == 4


async def test_a_stream_that_is_not_a_probe_breaking_late_counts_one_failure(harness: Harness) -> None:
    gw = harness.gateway(breaker={"failure_threshold": 3, "cooldown_seconds": 10})
    upstream(gw).script.reset_after(2)
    with pytest.raises(StreamInterrupted):
        async for _ in gw.astream("fake/echo", chat_request("one two three four five six seven eight")):
            pass
    snap = gw.breakers["fake/echo"]
    assert snap.state == "closed" and snap.consecutive_failures == 1
