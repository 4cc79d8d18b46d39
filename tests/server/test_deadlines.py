"""The body-deadline watchdog: a stalled read becomes BodyDeadlineExceeded, a prompt one
returns its value, and a cancellation the watchdog did not make is never turned into a 408."""

from __future__ import annotations

import asyncio

import pytest

from cloverleaf.server.deadlines import BodyDeadlineExceeded, BodyDeadlines


async def _value(v: bytes) -> bytes:
    await asyncio.sleep(0)
    return v


async def test_a_prompt_read_returns_its_value_and_leaves_nothing_behind() -> None:
    watch = BodyDeadlines(tick=0.01)
    assert await watch.run(_value(b'{"a":1}'), 5.0) == b'{"a":1}'
    assert not watch._due and not watch._expired


async def test_a_stalled_read_is_cut_off() -> None:
    watch = BodyDeadlines(tick=0.01)
    never = asyncio.get_running_loop().create_future()
    with pytest.raises(BodyDeadlineExceeded):
        await watch.run(never, 0.02)
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    # the watchdog keeps working for the next reader
    assert await watch.run(_value(b"x"), 5.0) == b"x"


async def test_many_readers_only_the_late_ones_are_cut_off() -> None:
    watch = BodyDeadlines(tick=0.01)
    gate = asyncio.Event()

    async def slow_but_in_time() -> bytes:
        await gate.wait()
        return b"ok"

    async def stalled() -> bytes:
        await asyncio.get_running_loop().create_future()
        return b"never"

    in_time = asyncio.ensure_future(watch.run(slow_but_in_time(), 30.0))
    late = asyncio.ensure_future(watch.run(stalled(), 0.02))
    with pytest.raises(BodyDeadlineExceeded):
        await late
    gate.set()
    assert await in_time == b"ok"


async def test_an_outside_cancellation_stays_a_cancellation() -> None:
    watch = BodyDeadlines(tick=0.01)
    started = asyncio.Event()

    async def reader() -> bytes:
        started.set()
        await asyncio.get_running_loop().create_future()
        return b"never"

    task = asyncio.ensure_future(watch.run(reader(), 30.0))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not watch._due
