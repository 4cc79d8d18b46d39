"""Run the async gateway from sync code: one private event loop on one daemon thread.

Why this and not a sans-I/O planner: the attempt loop awaits in many places (state,
rate-limit waits, backoff, the engine, the budget ledger); a planner would turn each into
an explicit state-machine step and double the code the fallback rules live in. Driving
the one async core from a private loop costs a thread hop per call (microseconds next to a
network call) and gives sync callers exactly the async behaviour, including streams.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
#: How long an interrupted sync call waits for the cancelled coroutine to clean up.
CLEANUP_WAIT_SECONDS = 5.0


async def _signalling(coro: Coroutine[Any, Any, T], finished: threading.Event) -> T:
    try:
        return await coro
    finally:
        finished.set()


def _submit(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T],
            context: contextvars.Context) -> concurrent.futures.Future[T]:
    """``run_coroutine_threadsafe``, but the task runs in the *caller's* context: what the
    caller's contextvars hold (OpenTelemetry's current span, above all) is what the gateway
    sees, as it would be for an async call."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def start() -> None:
        if future.cancelled():
            coro.close()
            return
        task = loop.create_task(coro, context=context)

        def done(t: asyncio.Task[T]) -> None:
            # the future stays pending while the task runs, so the caller can still cancel it
            if not future.set_running_or_notify_cancel():
                return
            if t.cancelled():
                future.set_exception(concurrent.futures.CancelledError())
            elif t.exception() is not None:
                future.set_exception(t.exception())
            else:
                future.set_result(t.result())

        task.add_done_callback(done)
        future.add_done_callback(lambda f: f.cancelled() and loop.call_soon_threadsafe(task.cancel))

    loop.call_soon_threadsafe(start)
    return future


class LoopThread:
    """One private loop on one daemon thread, per process.

    A forked child (multiprocessing's ``fork``, gunicorn ``--preload``, celery's prefork pool)
    inherits the parent's loop object but not its thread: a call handed to that loop was never
    run, and the child's first sync gateway call waited forever. So the loop is held with the
    pid that started it, and a child starts its own on first use, leaving the parent's untouched
    (stopping or closing it would write to, or close, the selector the parent still uses). The
    lock is one per process for the same reason as :mod:`cloverleaf.transport.fork_guard`'s: a
    parent's thread may have held the copied one at the fork."""

    def __init__(self, name: str = "cloverleaf-gateway") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        #: the process whose thread runs ``_loop``
        self._pid = os.getpid()
        self._locks: dict[int, threading.Lock] = {}

    @property
    def _lock(self) -> threading.Lock:
        """This process's lock (dict.setdefault hands every thread of a process the same one)."""
        pid = os.getpid()
        lock = self._locks.get(pid)
        return lock if lock is not None else self._locks.setdefault(pid, threading.Lock())

    def _forget_parents(self) -> None:
        """In a forked child (caller holds the lock): the parent's loop and thread are not ours."""
        pid = os.getpid()
        if self._pid != pid:
            self._loop = self._thread = None
            self._pid = pid

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            self._forget_parents()
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def main() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=main, name=self._name, daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the private loop and block until it is done.

        If the waiting thread is interrupted (Ctrl-C), the coroutine is cancelled and this
        waits (briefly) for its cleanup to finish, so the caller's own cleanup — closing a
        stream — never races it.
        """
        loop = self._ensure()
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a sync gateway method was called from the gateway's own loop; use the async one")
        finished = threading.Event()
        future = _submit(loop, _signalling(coro, finished), contextvars.copy_context())
        try:
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()
                finished.wait(CLEANUP_WAIT_SECONDS)
            raise

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Pull an async iterator from sync code; closing the iterator closes ``agen``."""
        try:
            while True:
                try:
                    yield self.run(agen.__anext__())  # type: ignore[arg-type]
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None and self._loop is not None:
                self.run(aclose())

    def close(self) -> None:
        with self._lock:
            self._forget_parents()
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        if not loop.is_running():
            loop.close()
