"""Calls that end abnormally — cancelled, closed early, failing before any I/O — give back
exactly what they took: rate-limit tickets, budget reservations and half-open probe slots,
and still leave a call record."""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

import pytest

from cloverleaf._errors import CircuitOpen, ServerError, UnsupportedCapability
from cloverleaf._types import StreamEvent
from cloverleaf.gateway import Gateway, ManualClock

from .conftest import Harness, chat_request, upstream

PROMPT = "one two three four five six seven eight"
REPLY_USAGE = {"input_tokens": 1, "output_tokens": 1000}
CALL_COST = 0.002001          # fake/echo: $1/M input, $2/M output


async def _until(condition: Any, what: str, ticks: int = 2000) -> None:
    """Let the loop run until ``condition()`` holds (bounded; no timing involved)."""
    for _ in range(ticks):
        if condition():
            return
        await asyncio.sleep(0.001 if _ > 100 else 0)
    raise AssertionError(f"never happened: {what}")


def _hang_engine(gw: Gateway) -> asyncio.Event:
    """Make the next engine chat hang until cancelled; returns an event set once it is in flight."""
    entered = asyncio.Event()

    async def hanging(target: Any, req: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()

    gw.engine.achat = hanging  # type: ignore[method-assign]
    return entered


async def _open_then_cool(gw: Gateway, clock: ManualClock, cooldown: float) -> None:
    upstream(gw).script.fail(500)
    with pytest.raises(ServerError):
        await gw.achat("fake/echo", chat_request())
    assert gw.breakers["fake/echo"].state == "open"
    clock.advance(cooldown)


async def test_cancel_while_waiting_for_a_rate_limit_frees_the_probe_and_the_ticket(harness: Harness) -> None:
    clock = ManualClock()
    gw = harness.gateway(clock=clock, breaker={"failure_threshold": 1, "cooldown_seconds": 10},
                         limits={"target:fake/echo": {"rpm": 1, "tpm": 0, "max_wait": 120}})
    await _open_then_cool(gw, clock, 10)          # the failed call used the one request of this minute
    task = asyncio.ensure_future(gw.achat("fake/echo", chat_request()))
    await _until(lambda: clock.sleepers() == 1, "the probe waits for the rate limit")
    assert gw.breakers["fake/echo"].probe_started_at == 10
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    snap = gw.breakers["fake/echo"]
    assert snap.state == "half_open" and snap.probe_started_at is None   # the next call may probe
    assert await gw.state.usage("target:fake/echo:rpm", clock.now() + 60) == 0   # its slot was given back
    gw.store.flush()
    [call, _] = gw.store.recent_calls(2)
    assert call.status == "cancelled"


async def test_a_probe_that_fails_before_any_io_does_not_close_the_circuit(harness: Harness) -> None:
    clock = ManualClock()
    gw = harness.gateway(clock=clock, breaker={"failure_threshold": 1, "cooldown_seconds": 10})
    await _open_then_cool(gw, clock, 10)
    original = gw.engine.achat

    async def refuse(target: Any, req: Any) -> Any:
        raise UnsupportedCapability("fake", "audio input")

    gw.engine.achat = refuse  # type: ignore[method-assign]
    with pytest.raises(UnsupportedCapability):
        await gw.achat("fake/echo", chat_request())
    snap = gw.breakers["fake/echo"]
    assert snap.state == "half_open" and snap.probe_started_at is None  # nothing proved the target is back
    assert len(upstream(gw).requests) == 1
    gw.engine.achat = original  # type: ignore[method-assign]
    upstream(gw).script.fail(500)
    with pytest.raises(ServerError):                                   # the real probe goes out ...
        await gw.achat("fake/echo", chat_request())
    with pytest.raises(CircuitOpen):                                   # ... and its failure reopens
        await gw.achat("fake/echo", chat_request())


async def test_cancelled_call_in_flight_is_charged_its_reservation(harness: Harness) -> None:
    """The request reached the provider, which may bill it: a caller must not be able to
    dodge a budget by cancelling every call just before it returns."""
    clock = ManualClock()
    gw = harness.gateway(clock=clock, routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 1.0}},
                         limits={"fake": {"rpm": 0, "tpm": 100_000, "max_wait": 0}},
                         breaker={"failure_threshold": 1, "cooldown_seconds": 10})
    await _open_then_cool(gw, clock, 10)
    entered = _hang_engine(gw)
    task = asyncio.ensure_future(gw.achat("r", chat_request(max_tokens=1000)))
    await entered.wait()
    assert gw.breakers["fake/echo"].probe_started_at == 10     # this call is the half-open probe
    _, reserved = await gw.state.budget_usage("route:r|total")
    assert reserved > 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    spent, left = await gw.state.budget_usage("route:r|total")
    assert left == 0 and spent == pytest.approx(reserved)
    gw.store.flush()
    assert gw.store.budget_usage("route:r", "total")[0] == pytest.approx(reserved)  # and the ledger has it
    # the provider-side token estimate stays booked too, and the probe slot is free again
    assert await gw.state.usage("provider:fake:tpm", clock.now()) > 1000
    assert gw.breakers["fake/echo"].probe_started_at is None
    gw.store.flush()
    [call, _] = gw.store.recent_calls(2)
    assert call.status == "cancelled" and [a.error_type for a in call.attempts] == ["CancelledError"]


async def test_cancel_while_seeding_a_budget_counter_leaks_nothing(harness: Harness) -> None:
    """The one ledger read a counter ever needs (a configured budget's: raised to the call
    records once per process) runs on a thread: cancelling the call meanwhile takes nothing, and
    the next call finds the counter seeded."""
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 1.0}})
    store = gw.store
    inside, proceed = threading.Event(), threading.Event()
    read = store.budget_recount

    def slow_read(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        proceed.wait(10)
        return read(*args, **kwargs)

    store.budget_recount = slow_read  # type: ignore[method-assign]
    task = asyncio.ensure_future(gw.achat("r", chat_request(max_tokens=1000)))
    await asyncio.to_thread(inside.wait, 10)
    task.cancel()
    proceed.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gw.state.budget_usage("route:r|total") in (None, (0.0, 0.0))
    assert upstream(gw).requests == []
    store.budget_recount = read  # type: ignore[method-assign]
    upstream(gw).script.reply(text="paid", usage=REPLY_USAGE)
    assert (await gw.achat("r", chat_request(max_tokens=1000))).text == "paid"
    assert await gw.state.budget_usage("route:r|total") == (pytest.approx(CALL_COST), 0.0)


STORE_BUDGETS = {"budgets": "store"}   # [state] budgets = "store": a database transaction per call


async def test_cancel_while_reserving_a_budget_leaks_no_reservation(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 1.0}},
                         state=STORE_BUDGETS)
    store = gw.store
    inside, proceed, reserved = threading.Event(), threading.Event(), threading.Event()
    reserve = store.budget_reserve

    def slow_reserve(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        proceed.wait(10)
        try:
            return reserve(*args, **kwargs)
        finally:
            reserved.set()

    store.budget_reserve = slow_reserve  # type: ignore[method-assign]
    task = asyncio.ensure_future(gw.achat("r", chat_request(max_tokens=1000)))
    await asyncio.to_thread(inside.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    proceed.set()
    await asyncio.to_thread(reserved.wait, 10)
    # the reservation the thread went on to make is given back once it lands
    await _until(lambda: store.budget_usage("route:r", "total") == (0.0, 0.0)
                 and not _reservations(store), "the late reservation is released")
    assert upstream(gw).requests == []


async def test_cancel_while_settling_still_writes_the_record(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 1.0}},
                         state=STORE_BUDGETS)
    upstream(gw).script.reply(text="paid", usage=REPLY_USAGE)
    store = gw.store
    inside, proceed = threading.Event(), threading.Event()
    settle = store.budget_settle

    def slow_settle(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        proceed.wait(10)
        return settle(*args, **kwargs)

    store.budget_settle = slow_settle  # type: ignore[method-assign]
    task = asyncio.ensure_future(gw.achat("r", chat_request(max_tokens=1000)))
    await asyncio.to_thread(inside.wait, 10)
    task.cancel()
    proceed.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _until(lambda: store.budget_usage("route:r", "total")[1] == 0, "the settle lands")
    assert store.budget_usage("route:r", "total")[0] == pytest.approx(CALL_COST)
    store.flush()
    [call] = store.recent_calls(1)
    assert call.status == "ok" and call.cost == pytest.approx(CALL_COST)


async def test_stream_closed_early_releases_everything(harness: Harness) -> None:
    clock = ManualClock()
    gw = harness.gateway(clock=clock, routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 1.0}},
                         limits={"fake": {"rpm": 10, "tpm": 100_000, "max_wait": 0}})
    agen = gw.astream("r", chat_request(PROMPT, max_tokens=1000))
    first: StreamEvent = await agen.__anext__()
    assert first.type == "text"
    await agen.aclose()  # type: ignore[attr-defined]
    spent, reserved = await gw.state.budget_usage("route:r|total")
    assert reserved == 0 and spent > 0                            # output was sent: charged, not leaked
    assert await gw.state.usage("provider:fake:tpm", clock.now()) > 1000  # the estimate stays booked
    gw.store.flush()
    call = gw.store.recent_calls(1)[0]
    assert call.status == "cancelled" and call.ttft_ms is not None


async def test_sync_consumer_breaking_out_of_a_stream_closes_it(harness: Harness) -> None:
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 1.0}})

    def consume() -> str:
        stream = gw.stream("r", chat_request(PROMPT, max_tokens=1000))
        for event in stream:
            if event.type == "text":
                break
        stream.close()  # type: ignore[attr-defined]
        return "stopped"

    assert await asyncio.to_thread(consume) == "stopped"
    assert (await gw.state.budget_usage("route:r|total"))[1] == 0
    gw.store.flush()
    assert gw.store.recent_calls(1)[0].status == "cancelled"


def _reservations(store: Any) -> list[Any]:
    import sqlalchemy as sa

    from cloverleaf.gateway.store import schema

    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(schema.budget_reservations)))


async def test_a_streaming_probe_closes_the_circuit_at_its_first_output(harness: Harness) -> None:
    """A probe that streams for longer than the probe timeout must not let a second probe in."""
    clock = ManualClock()
    gw = harness.gateway(clock=clock, breaker={"failure_threshold": 1, "cooldown_seconds": 10,
                                               "probe_timeout_seconds": 30})
    await _open_then_cool(gw, clock, 10)
    agen = gw.astream("fake/echo", chat_request(PROMPT))
    assert (await agen.__anext__()).type == "text"
    assert gw.breakers["fake/echo"].state == "closed"
    clock.advance(45)                                   # the stream is still running
    assert (await gw.achat("fake/echo", chat_request("meanwhile"))).text == "meanwhile"
    rest = [event async for event in agen]
    assert rest[-1].type == "done" and gw.breakers["fake/echo"].state == "closed"


async def test_a_stream_dropped_without_closing_is_finalised(harness: Harness) -> None:
    """``async for ... : break`` without aclose(): the event loop's finaliser closes the
    generator when it is garbage collected, through the same cleanup."""
    gw = harness.gateway(routes={"r": {"targets": ["fake/echo"]}}, budgets={"r": {"limit_usd": 1.0}})
    async for event in gw.astream("r", chat_request(PROMPT, max_tokens=1000)):
        if event.type == "text":
            break
    gc.collect()

    def recorded() -> bool:
        gw.store.flush()
        return bool(gw.store.recent_calls(1))

    await _until(recorded, "the finaliser writes the call record")
    assert gw.store.recent_calls(1)[0].status == "cancelled"
    assert (await gw.state.budget_usage("route:r|total"))[1] == 0
