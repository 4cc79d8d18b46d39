"""One watchdog for every request body's deadline, instead of a timer per request.

Every body read must finish within ``[server] body_timeout_seconds`` (a client that sends
half a body and stalls gets a 408, see :mod:`.http_io`). ``asyncio.timeout`` per request
does it, but arms and disarms a loop timer each time (about 10 µs under uvloop, on a path
whose whole server share is a few tens of µs), although almost every body has already
arrived when the route starts reading. :class:`BodyDeadlines` keeps the readers in a dict
(task → due time) and one repeating sweep, every ``tick`` seconds while any reader is
waiting, cancels the tasks past due; a read that was cancelled that way becomes the 408.
A deadline can thus be overrun by up to one ``tick``.

The cancellation is accounted for as ``asyncio.timeout`` does it: only a cancellation this
watchdog made is turned into the 408 (``Task.uncancel`` back to the count seen when the
read started); any other one (server shutdown) propagates unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class BodyDeadlineExceeded(Exception):
    """The awaited read did not finish within its deadline."""


class BodyDeadlines:
    def __init__(self, tick: float = 0.1) -> None:
        self._tick = tick
        self._due: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeping = False

    async def run(self, read: Awaitable[T], seconds: float) -> T:
        """``await read``, or :class:`BodyDeadlineExceeded` once ``seconds`` have passed."""
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - always inside a task under an ASGI server
            async with asyncio.timeout(seconds):
                return await read
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or the app was moved to another loop (tests)
            self._loop, self._sweeping = loop, False
            self._due.clear()
            self._expired.clear()
        cancelling = task.cancelling()
        self._due[task] = loop.time() + seconds
        if not self._sweeping:
            self._sweeping = True
            loop.call_later(self._tick, self._sweep, loop)
        try:
            return await read
        except asyncio.CancelledError:
            if task in self._expired and task.uncancel() <= cancelling:
                raise BodyDeadlineExceeded() from None
            raise
        finally:
            self._due.pop(task, None)
            self._expired.discard(task)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            return
        now = loop.time()
        late = [task for task, due in self._due.items() if due <= now]
        for task in late:
            del self._due[task]
            self._expired.add(task)
            task.cancel()
        if self._due:
            loop.call_later(self._tick, self._sweep, loop)
        else:
            self._sweeping = False
