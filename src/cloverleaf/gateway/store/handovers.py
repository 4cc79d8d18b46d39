"""Bookkeeping in flight that will still hand records to the store: what a flush waits for.

Why: the server settles a call (budgets, the record for the store's writer, the cache write)
after its client has the answer, to keep that work off the request's critical path
(``CallContext.after_response``). A reader that flushes the store right after an answer —
``/admin/spend``, ``/admin/keys/{id}``, ``/admin/traces``, a budget read from the ledger, a
test — would otherwise find that call missing for a moment. So the server opens a handover
here *before* the answer goes out and closes it once that call's bookkeeping has run (failed
or not), and :meth:`Store.flush <cloverleaf.gateway.store.Store.flush>` first waits for every
handover open when it was called. Handovers opened later are not waited for: a reader under a
steady stream of calls is never starved.

Per process and per store: a reader in one ``--workers`` process cannot see another's
handovers (README, "Reading spend").

The waits are bounded (:data:`HANDOVER_WAIT_SECONDS`; a hung state backend delays a reader,
never hangs it), and a flush called on a thread that is running an event loop does not wait
at all: the bookkeeping it would wait for may need that very loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time

log = logging.getLogger("cloverleaf.gateway")

#: The longest a flush waits for bookkeeping in flight before it reads without it (logged).
HANDOVER_WAIT_SECONDS = 10.0


class Handovers:
    """The open handovers of one store. ``open``/``close`` run on the server's event loop (a
    dict insert and delete: no lock on the request's path); :meth:`wait` on any other thread."""

    __slots__ = ("_ids", "_open", "_waiters", "_changed")

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._open: dict[int, None] = {}
        self._waiters = 0
        self._changed = threading.Condition(threading.Lock())

    def forked(self) -> None:
        """In a forked child: the parent's bookkeeping in flight runs in the parent, never here; a
        flush in the child that waited for it would wait its whole bound for nothing."""
        self._open = {}
        self._waiters = 0
        self._changed = threading.Condition(threading.Lock())

    def open(self) -> int:
        """A call's bookkeeping is about to run after its answer: call this before the answer goes out."""
        handover = next(self._ids)
        self._open[handover] = None
        return handover

    def close(self, handover: int) -> None:
        """That bookkeeping has run (or failed: it was logged where it ran)."""
        self._open.pop(handover, None)
        if self._waiters:
            with self._changed:
                self._changed.notify_all()

    @property
    def in_flight(self) -> int:
        return len(self._open)

    def wait(self, timeout: float | None = HANDOVER_WAIT_SECONDS) -> bool:
        """Block until every handover open now is closed: True. False when ``timeout`` passed
        first (logged), or when called on a thread running an event loop (it cannot wait there)."""
        if not self._open:
            return True
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            return False
        pending = set(self._open.copy())
        bound = HANDOVER_WAIT_SECONDS if timeout is None else min(timeout, HANDOVER_WAIT_SECONDS)
        deadline = time.monotonic() + bound
        with self._changed:
            self._waiters += 1
            try:
                while pending := {h for h in pending if h in self._open}:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        log.warning("the bookkeeping of %d answered call(s) was still running after %.0f s; "
                                    "reading the store without it", len(pending), bound)
                        return False
                    self._changed.wait(left)
            finally:
                self._waiters -= 1
        return True
