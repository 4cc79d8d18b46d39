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
