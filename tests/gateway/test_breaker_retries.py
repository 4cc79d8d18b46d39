"""A call whose own failures open its target's breaker reports the upstream's error, on memory
and Redis state alike: no retry into the circuit it just opened (after a backoff, only to be
refused), no "circuit open, not calling it" for a target it did call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from cloverleaf._engine import Engine
from cloverleaf._errors import AllTargetsFailed, CircuitOpen, RateLimitError, ServerError
from cloverleaf.gateway import Gateway, ManualClock
from cloverleaf.gateway.state import StateBackend
from cloverleaf.gateway.state.memory import MemoryState

from .conftest import Harness, chat_request, upstream
from .redis_support import redis_state


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def state(request: pytest.FixtureRequest) -> AsyncIterator[StateBackend]:
    if request.param == "memory":
        yield MemoryState()
        return
    async with redis_state() as backend:
        yield backend


def _gateway(harness: Harness, state: StateBackend, clock: ManualClock, **options: Any) -> Gateway:
    settings = harness.settings(max_retries=3, **options)
    engine = Engine(settings)
    gw = Gateway(settings, engine, clock=clock, state=state)
    harness.made.append((gw, engine))
    return gw


async def test_the_call_that_opens_the_breaker_gets_the_upstreams_error(harness: Harness,
                                                                        state: StateBackend) -> None:
    gw = _gateway(harness, state, ManualClock(autojump=True), breaker={"failure_threshold": 2})
    upstream(gw).script.fail(500, times=5)
    with pytest.raises(ServerError):                       # a plain model id: the target's own error
        await gw.achat("fake/echo", chat_request())
    assert len(upstream(gw).requests) == 2                 # one retry, then the circuit opened: no more
    assert (await state.breaker_snapshots())["fake/echo"].state == "open"


async def test_a_route_whose_retries_open_the_breaker_lists_only_upstream_errors(harness: Harness,
                                                                                 state: StateBackend) -> None:
    gw = _gateway(harness, state, ManualClock(autojump=True), breaker={"failure_threshold": 2},
                  routes={"r": {"targets": ["fake/echo"], "retries": 3}})
    upstream(gw).script.fail(500, times=5)
    with pytest.raises(AllTargetsFailed) as info:
        await gw.achat("r", chat_request())
    assert [type(a.error) for a in info.value.attempts] == [ServerError, ServerError]
    assert isinstance(info.value.last_error, ServerError)


async def test_a_failed_half_open_probe_is_not_retried_into_the_reopened_circuit(harness: Harness,
                                                                                 state: StateBackend) -> None:
    clock = ManualClock(autojump=True)
    gw = _gateway(harness, state, clock, breaker={"failure_threshold": 1, "cooldown_seconds": 10})
    upstream(gw).script.fail(500, times=5)
    with pytest.raises(ServerError):
        await gw.achat("fake/echo", chat_request())
    clock.advance(10)
    with pytest.raises(ServerError):                       # the probe went out and failed
        await gw.achat("fake/echo", chat_request())
    assert len(upstream(gw).requests) == 2
    with pytest.raises(CircuitOpen):                       # the next call is refused without a call
        await gw.achat("fake/echo", chat_request())
    assert len(upstream(gw).requests) == 2


async def test_breakers_are_reported_in_epoch_seconds_and_a_cooled_down_one_as_half_open(
        harness: Harness, state: StateBackend) -> None:
    """Memory keeps a breaker's times on the monotonic clock, Redis in epoch seconds: reported
    (``/admin/breakers``, the Health page), both are epoch seconds; an open circuit whose
    cooldown has passed is shown as half-open, for the next call probes it."""
    clock = ManualClock(start=500.0, epoch=1_700_000_500.0)
    gw = _gateway(harness, state, clock, breaker={"failure_threshold": 1, "cooldown_seconds": 10})
    upstream(gw).script.fail(500)
    with pytest.raises(ServerError):
        await gw.achat("fake/echo", chat_request())
    opened = (await gw.breaker_report())["fake/echo"]
    assert opened.state == "open" and opened.opened_at == pytest.approx(1_700_000_500.0)
    clock.advance(9)
    assert (await gw.breaker_report())["fake/echo"].state == "open"
    clock.advance(1)
    cooled = (await gw.breaker_report())["fake/echo"]
    assert cooled.state == "half_open" and cooled.opened_at == pytest.approx(1_700_000_500.0)
    assert (await state.breaker_snapshots())["fake/echo"].state == "open"   # the record itself is unchanged


async def test_a_circuit_opened_by_throttling_reopens_when_the_upstream_said(harness: Harness,
                                                                             state: StateBackend) -> None:
    """Five 429s saying ``Retry-After: 2`` open the circuit for 2 s, not the policy's 60: a
    provider throttling for two seconds is not shut out (its calls sent to dearer fallbacks) for
    a minute. A wait longer than the policy's cooldown does not lengthen it."""
    clock = ManualClock(autojump=True)
    gw = _gateway(harness, state, clock, breaker={"failure_threshold": 2, "cooldown_seconds": 60})
    upstream(gw).script.fail(429, headers={"retry-after-ms": "2000"}, times=2)
    with pytest.raises(RateLimitError):                   # retried once, after 2 s; that opened it
        await gw.achat("fake/echo", chat_request())
    assert len(upstream(gw).requests) == 2
    opened = (await state.breaker_snapshots())["fake/echo"]
    assert opened.state == "open" and opened.cooldown_seconds == 2.0
    with pytest.raises(CircuitOpen) as refused:
        await gw.achat("fake/echo", chat_request())
    assert refused.value.retry_after == pytest.approx(2.0, abs=0.5)
    clock.advance(2.5)
    assert (await gw.achat("fake/echo", chat_request())).text      # the probe went out and answered
    assert (await state.breaker_snapshots())["fake/echo"].state == "closed"

    upstream(gw).script.fail(429, headers={"retry-after-ms": "600000"}, times=2)
    for _ in range(2):                                   # too long a wait to retry within the call
        with pytest.raises(RateLimitError):
            await gw.achat("fake/echo", chat_request())
    reopened = (await state.breaker_snapshots())["fake/echo"]
    assert reopened.state == "open" and reopened.cooldown_seconds is None   # the policy's 60 s
    clock.advance(59)
    with pytest.raises(CircuitOpen):
        await gw.achat("fake/echo", chat_request())
