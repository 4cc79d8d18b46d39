"""In-memory rate-limit windows group admissions into slots (``state/window.py``): memory stays
bounded however busy a limit is, a slot's tokens come back one window after its newest
admission (late by at most one slot, never early), and each call still settles its own share."""

from __future__ import annotations

import pytest

from cloverleaf.gateway.state import Bucket
from cloverleaf.gateway.state.memory import MemoryState
from cloverleaf.gateway.state.window import SLOTS

WIDTH = 60.0 / SLOTS   # 0.1 s of a one-minute window


async def test_a_busy_minute_holds_at_most_one_entry_per_slot() -> None:
    state = MemoryState()
    buckets = [Bucket("k:rpm", 1e9, 1.0), Bucket("k:tpm", 1e12, 250.0)]
    calls = 30_000
    for i in range(calls):                                 # 500 calls a second for a minute
        assert (await state.take(buckets, i * 0.002, 0.0)).granted
    for key in ("k:rpm", "k:tpm"):
        log = state._logs[key]
        assert len(log.entries) <= SLOTS + 1
        assert log.total == sum(e.amount for e in log.entries)
    assert await state.usage("k:rpm", (calls - 1) * 0.002) == calls
    assert await state.usage("k:tpm", (calls - 1) * 0.002) == calls * 250.0


async def test_exact_mode_logs_every_admission() -> None:
    state = MemoryState(slots=0)
    for i in range(50):
        await state.take([Bucket("k:rpm", 100.0, 1.0)], i * 0.001, 0.0)
    assert len(state._logs["k:rpm"].entries) == 50


async def test_a_slot_returns_its_tokens_one_window_after_its_newest_admission() -> None:
    state = MemoryState()
    for now in (0.0, 0.05, 0.09):                         # one slot: its newest admission is 0.09
        assert (await state.take([Bucket("k:rpm", 3.0, 1.0)], now, 0.0)).granted
    waiting = await state.take([Bucket("k:rpm", 3.0, 1.0)], 1.0, 120.0)
    assert waiting.granted and waiting.at == pytest.approx(60.09)
    # late by less than one slot against the exact log (which would free the first at 60.0)
    exact = MemoryState(slots=0)
    for now in (0.0, 0.05, 0.09):
        await exact.take([Bucket("k:rpm", 3.0, 1.0)], now, 0.0)
    precise = await exact.take([Bucket("k:rpm", 3.0, 1.0)], 1.0, 120.0)
    assert precise.at == 60.0 and 0.0 <= (waiting.at or 0.0) - precise.at < WIDTH
    assert not (await state.take([Bucket("k:rpm", 3.0, 1.0)], 60.05, 0.0)).granted   # never early


async def test_each_call_settles_its_own_share_of_a_slot() -> None:
    state = MemoryState()
    await state.budget_seed("key:k|total", 0.0)
    first = await state.take([Bucket("k:tpm", 1000.0, 500.0)], 0.0, 0.0)
    second = await state.admit([Bucket("k:tpm", 1000.0, 400.0)], [], 0.01, 0.0)
    assert len(state._logs["k:tpm"].entries) == 1 and await state.usage("k:tpm", 0.01) == 900.0
    assert first.ticket is not None
    await state.settle(first.ticket, {"k:tpm": 100.0})      # 500 estimated, 100 used
    await state.settle(first.ticket, {"k:tpm": 1.0})        # settled once only
    assert await state.usage("k:tpm", 0.01) == 500.0
    await state.close(second.ticket, None, 0.0)             # never reached the upstream
    assert await state.usage("k:tpm", 0.01) == 100.0
    assert (await state.take([Bucket("k:tpm", 1000.0, 900.0)], 0.02, 0.0)).granted


async def test_memory_finish_settles_everything_in_one_step() -> None:
    """MemoryState.finish (one lock) leaves what the base class's four steps leave."""
    from cloverleaf.gateway.breaker import BreakerPolicy
    from cloverleaf.gateway.state import Hold, StateBackend

    policy = BreakerPolicy(failure_threshold=1)
    results = []
    for finish in (MemoryState.finish, StateBackend.finish):
        state = MemoryState()
        await state.budget_seed("route:r|total", 0.0)
        await state.breaker_record("t", False, 0.0, policy, "ServerError")          # open
        adm = await state.admit([Bucket("r:tpm", 1000.0, 500.0)], [Hold("route:r|total", 1.0, 0.4)], 0.0, 0.0)
        grant = await state.take([Bucket("t:tpm", 1000.0, 300.0)], 0.0, 0.0)
        await finish(state, adm.ticket, {"r:tpm": 50.0}, 0.1, grant.ticket, {"t:tpm": 20.0}, "t", 1.0, policy, 12.0)
        await finish(state, adm.ticket, {"r:tpm": 50.0}, 0.1, None, {}, "t", 2.0, policy, 12.0)   # twice: no more spend
        results.append((await state.usage("r:tpm", 1.0), await state.usage("t:tpm", 1.0),
                        await state.budget_usage("route:r|total"), await state.breaker_snapshots(),
                        await state.latencies(["t"])))
    assert results[0] == results[1]
    assert results[0][:3] == (50.0, 20.0, (pytest.approx(0.1), 0.0))
