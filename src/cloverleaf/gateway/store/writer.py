"""Batched writes off the request path: a queue drained by one thread, one transaction per batch.

A call record is handed to :meth:`BatchWriter.put` (a non-blocking queue append) and the
caller moves on. The writer thread commits what has queued up every ``flush_ms`` or every
``batch_size`` records, whichever comes first, as ONE transaction — so a ``kill -9`` loses at
most the batch in flight and never leaves half a batch behind (SQLite in WAL mode, and
PostgreSQL, both guarantee a committed transaction survives the process dying). A thread
rather than an asyncio task, so sync callers, async callers on any loop, and the sync
client's private loop all share one writer.

A batch that fails to commit is retried once, then dropped with a logged error: the
request path must never fail because bookkeeping did.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

log = logging.getLogger("cloverleaf.gateway.store")

#: An operation run inside the batch's transaction.
Op = Callable[[sa.Connection], None]


@dataclass(slots=True)
class _Insert:
    table: sa.Table
    row: dict[str, Any]


@dataclass(slots=True)
class _Flush:
    done: threading.Event


_STOP = object()


class BatchWriter:
    def __init__(self, engine: sa.Engine, *, batch_size: int = 100, flush_ms: int = 200) -> None:
        self._engine = engine
        self._batch_size = batch_size
        self._interval = flush_ms / 1000.0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self.dropped = 0
        self.committed_batches = 0
        self._thread = threading.Thread(target=self._run, name="cloverleaf-store-writer", daemon=True)
        self._thread.start()

    # -- producer side (any thread) ---------------------------------------------------
    def insert(self, table: sa.Table, row: dict[str, Any]) -> None:
        self._put(_Insert(table, row))

    def run(self, op: Op) -> None:
        """Run ``op(conn)`` in the next batch's transaction (updates, deletes)."""
        self._put(op)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until everything queued before this call is committed (or dropped)."""
        if self._closed or not self._thread.is_alive():
            return True
        done = threading.Event()
        self._queue.put(_Flush(done))
        return done.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _put(self, item: Any) -> None:
        if self._closed:
            raise RuntimeError("the store is closed")
        self._queue.put(item)

    # -- the writer thread ------------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch, flushes, stop = self._collect(first)
            if batch:
                self._commit(batch)
            for f in flushes:
                f.done.set()
            if stop:
                return

    def _collect(self, first: Any) -> tuple[list[Any], list[_Flush], bool]:
        batch: list[Any] = []
        flushes: list[_Flush] = []
        item = first
        deadline = time.monotonic() + self._interval
        while True:
            if item is _STOP:
                return batch, flushes, True
            if isinstance(item, _Flush):
                flushes.append(item)
                return batch, flushes, False
            batch.append(item)
            if len(batch) >= self._batch_size:
                return batch, flushes, False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return batch, flushes, False
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                return batch, flushes, False

    def _commit(self, batch: list[Any]) -> None:
        for attempt in (1, 2):
            try:
                with self._engine.begin() as conn:
                    _execute(conn, batch)
                self.committed_batches += 1
                return
            except Exception as exc:
                if attempt == 2:
                    self.dropped += len(batch)
                    log.error("dropping %d store record(s) after a failed write: %s", len(batch),
                              type(exc).__name__)
                else:
                    time.sleep(0.05)


def _execute(conn: sa.Connection, batch: list[Any]) -> None:
    """Consecutive inserts into one table go in one executemany; ops run in order."""
    i = 0
    while i < len(batch):
        item = batch[i]
        if isinstance(item, _Insert):
            rows = [item.row]
            j = i + 1
            while j < len(batch) and isinstance(batch[j], _Insert) and batch[j].table is item.table:
                rows.append(batch[j].row)
                j += 1
            conn.execute(item.table.insert(), rows)
            i = j
        else:
            item(conn)
            i += 1
