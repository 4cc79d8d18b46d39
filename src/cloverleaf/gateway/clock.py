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

    async def drive(self, *tasks: asyncio.Future[object], idle_ticks: int = 20) -> None:
        """Run ``tasks`` to completion, jumping time forward whenever they are all asleep."""
        pending = set(tasks)
        while pending:
            for _ in range(idle_ticks):  # let every ready callback run
                await asyncio.sleep(0)
            pending = {t for t in pending if not t.done()}
            if not pending:
                break
            deadline = self.next_deadline()
            if deadline is not None:
                self.advance(deadline - self._now)
            else:  # tasks are waiting on something other than the clock (real I/O)
                await asyncio.sleep(0.001)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
