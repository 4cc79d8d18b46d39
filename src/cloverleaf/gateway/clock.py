"""Time as a dependency, so breakers, buckets, budgets and backoff can be tested exactly.

Everything in the gateway that asks "what time is it?" or "wait this long" goes through a
:class:`Clock`. Production uses :class:`SystemClock`; tests use :class:`ManualClock`, whose
time only moves when the test says so (``advance``), or, with ``autojump=True``, whenever a
caller sleeps — which makes a sequential test that waits minutes of cooldown run instantly.
Timing assertions in tests are forbidden; a manual clock makes them unnecessary.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds (for durations, windows, cooldowns)."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch (for records and budget periods)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class EpochClock:
    """A view of a clock whose ``now()`` is epoch time. Shared state (Redis) is read and
    written by processes on different hosts, whose monotonic clocks have nothing in common;
    epoch time is the one they share."""

    def __init__(self, inner: Clock) -> None:
        self.inner = inner

    def now(self) -> float:
        return self.inner.wall()

    def wall(self) -> float:
        return self.inner.wall()

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to. Safe to use from several event loops/threads.

    ``autojump=True``: ``sleep(s)`` moves time forward to the sleeper's deadline at once —
    right for sequential tests. Concurrent tests leave it off and call :meth:`drive`, which
    lets the loop run until every task is asleep and then jumps to the earliest deadline.
    """

    def __init__(self, start: float = 0.0, *, epoch: float = 1_700_000_000.0, autojump: bool = False) -> None:
        self._now = start
        self._epoch = epoch - start
        self.autojump = autojump
        self._lock = threading.Lock()
        self._sleepers: list[tuple[float, int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._epoch + self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        if self.autojump:
            self.advance(seconds)
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), loop, fut))
        await fut

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has come."""
        with self._lock:
            self._now += max(0.0, seconds)
            due = []
            while self._sleepers and self._sleepers[0][0] <= self._now:
                due.append(heapq.heappop(self._sleepers))
        for _, _, loop, fut in due:
            loop.call_soon_threadsafe(_wake, fut)

    def next_deadline(self) -> float | None:
        with self._lock:
            live = [s for s in self._sleepers if not s[3].done()]
            return min(s[0] for s in live) if live else None

    def sleepers(self) -> int:
        with self._lock:
            return sum(1 for s in self._sleepers if not s[3].done())

    async def drive(self, *tasks: asyncio.Future[object], max_idle_ticks: int = 200) -> None:
        """Run ``tasks`` to completion, moving time to the next deadline only when every
        unfinished task is asleep on this clock (so no call is in flight while time jumps)."""
        pending = set(tasks)
        idle = 0
        while pending:
            await asyncio.sleep(0)
            pending = {t for t in pending if not t.done()}
            deadline = self.next_deadline()
            if pending and deadline is not None and self.sleepers() >= len(pending):
                self.advance(deadline - self._now)
                idle = 0
            else:
                idle += 1
                if idle >= max_idle_ticks:  # something waits on real I/O, not on the clock
                    await asyncio.sleep(0.001)
                    idle = 0


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
