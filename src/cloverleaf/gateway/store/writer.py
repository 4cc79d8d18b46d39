"""Batched writes off the request path: a queue drained by one thread, one transaction per batch.

A call record is handed to :meth:`BatchWriter.insert` (an append to a deque, waking nobody)
and the caller moves on. The writer thread wakes every ``flush_ms`` — or at once when
``WAKE_BATCHES × batch_size`` items are waiting or someone calls :meth:`flush` — and commits
what is queued as ONE transaction per ``batch_size`` items, building the rows there, off the
request path. So a ``kill -9`` loses at most the batch in flight and never leaves half a batch behind
(SQLite in WAL mode, and PostgreSQL, both guarantee a committed transaction survives the
process dying), and an interpreter that exits without ``close()`` still writes what it
queued (an ``atexit`` flush). A thread rather than an asyncio task, so sync callers, async
callers on any loop, and the sync client's private loop all share one writer.

A batch that fails to commit is retried once; if it fails because of its content (a
duplicate key, a value the column refuses, a string the driver cannot encode — anything that
is not the database's own error, :func:`_is_content_error`) each item is written on its own
at once, so only the bad one is dropped: one client's unencodable record once took every
other call record (and its spend) of the batch with it. A record the database refuses for a
value (``DataError``: PostgreSQL takes no NUL in text) is tried once more with each NUL as
U+FFFD before it is given up. The request path never fails because
bookkeeping did. A batch that fails because the database is away (down, restarting, not
answering) is not dropped: it goes back to the head of the queue, and the writer tries again
after a backoff (0.1 s doubling to 5 s), so a database restart loses no call record — a
short PostgreSQL restart under load once lost half the calls it served while the ledger kept
their spend. Meanwhile the queue keeps growing, capped at ``MAX_PENDING`` (beyond it new
records are dropped and counted); a writer closed while the database is still away drops
what is left, and says how much.
An op that takes its work out of memory (the spend sums) hears each transaction's outcome
(:meth:`BatchWriter.after_transaction`), so a rolled-back batch never takes it with it.

A process forked from one with a writer (multiprocessing's ``fork``, gunicorn ``--preload``,
celery's prefork pool) gets a copy of it without its thread: the child's records were queued
and never written, while its ``flush()`` said True. So in the child, right after the fork
(:meth:`BatchWriter.forked`), the writer forgets what it inherited: the parent's queued
records and ops (the parent writes those: never twice), its database connections (never used,
never closed, nothing sent on them: closing a PostgreSQL one would end the parent's session on
the socket both hold, and SQLAlchemy's reset of a collected one is a ROLLBACK sent on it; they
are let go quietly as the child exits) and the engine's pool, replaced by an empty one
(``dispose(close=False)``); the hooks of :meth:`BatchWriter.after_fork` drop what their owners
queued (the pending spend sums, the handovers). The child's first record starts a writer
thread of its own.

Cheap on purpose, because on a one-core server this thread takes its CPU (and the GIL)
from the request loop: each table's INSERT is rendered once as plain SQL for the
dialect, rows arrive as ready value tuples (JSON already encoded), and a batch goes to
the driver's own ``executemany`` through one connection the thread keeps — no statement
compilation, no per-row parameter processing, no pool checkout per batch. SQLite's
``executemany`` runs in C and lets go of the GIL for every row it steps, so the loop
never waits long for it. And it does not wake at every ``batch_size``: each wake-up takes
the core from the request loop for a moment, and a few longer pauses a second delay fewer
requests than many short ones (at 1,000 requests/s, waking per 100 records made 10 pauses a
second: exactly the slowest 1% of requests).
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

log = logging.getLogger("cloverleaf.gateway.store")

#: Rows to insert, built on the writer thread: (table, values in the table's column order).
Rows = Callable[[], Iterable[tuple[sa.Table, tuple[Any, ...]]]]
#: An operation run inside the batch's transaction (updates, deletes).
Op = Callable[[sa.Connection], None]
#: Work derived from one table's inserted rows, in the same transaction (the call rollups).
AfterInsert = Callable[[sa.Connection, list[tuple[Any, ...]]], None]
#: Told after every transaction whether it committed (True) or was rolled back (False).
Outcome = Callable[[bool], None]
#: Beyond this many waiting items new records are dropped (the database is gone).
MAX_PENDING = 100_000
#: Wake the writer before ``flush_ms`` only once this many batches are waiting.
WAKE_BATCHES = 10
#: While the database is away, the writer tries again after this, doubling up to the maximum.
FIRST_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 5.0
#: How often a waiting flush() looks whether the writer found the database away.
FLUSH_POLL_SECONDS = 0.05
#: What a forked child inherited from its parent's writer (pools, connections): never used, let
#: go only as the child exits (:func:`_keep_inherited`).
_INHERITED: list[Any] = []
_let_go_registered_in = 0   # the process whose exit lets go of _INHERITED


@dataclass(slots=True)
class _Insert:
    rows: Rows


@dataclass(slots=True)
class _Flush:
    done: threading.Event


_STOP = object()


class BatchWriter:
    def __init__(self, engine: sa.Engine, *, batch_size: int = 100, flush_ms: int = 200) -> None:
        self._engine = engine
        self._batch_size = batch_size
        self._wake_at = batch_size * WAKE_BATCHES
        self._interval = flush_ms / 1000.0
        self._items: deque[Any] = deque()        # append/popleft are atomic: no lock needed
        self._wake = threading.Event()
        self._closed = False
        #: records lost for good: refused by the database, or beyond ``MAX_PENDING``, or
        #: queued when the writer closed while the database was away (``/metrics`` shows it)
        self.dropped = 0
        self.committed_batches = 0
        #: the last batch failed because the database is away; it waits at the queue's head
        self.waiting_for_database = False
        self._given_up = False    # closing while the database is away: drop what is left
        self._away_failures = 0   # batches the database could not take (flush() watches it)
        self._conn: sa.Connection | None = None      # used by the writer thread only
        self._sql: dict[tuple[sa.Table, tuple[int, ...]], str] = {}
        self._after: dict[sa.Table, AfterInsert] = {}
        self._outcomes: list[Outcome] = []
        self._forks: list[Callable[[], None]] = []
        self._thread: threading.Thread | None = None    # started again on first use in a forked child
        self._starting = threading.Lock()
        self._start()
        atexit.register(self._at_exit)
        if hasattr(os, "register_at_fork"):   # not on Windows, which has no fork
            me = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _after_fork(me))

    def _start(self) -> None:
        with self._starting:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="cloverleaf-store-writer", daemon=True)
                thread.start()
                self._thread = thread

    def after_insert(self, table: sa.Table, hook: AfterInsert) -> None:
        """Run ``hook(conn, rows)`` after each batch's inserts into ``table``, in its transaction
        (so derived rows, like the call rollups, are committed or lost with the rows themselves)."""
        self._after[table] = hook

    def after_transaction(self, hook: Outcome) -> None:
        """Call ``hook(committed)`` on the writer thread after every transaction. An op that
        takes work out of memory to write it (the spend sums) learns here whether the work is
        written, or must be put back: a failed batch is retried, or dropped, with the same ops."""
        self._outcomes.append(hook)

    def after_fork(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` in a forked child right after the writer forgot the parent's queue
        (:meth:`forked`): an owner of work queued here drops its share (it is the parent's)."""
        self._forks.append(hook)

    def forked(self) -> None:
        """In a forked child: what the parent queued is the parent's to write (it does, once);
        its thread did not come along, and its connections are the parent's. Start afresh."""
        if not _is_static(self._engine.pool):   # an in-memory SQLite's one connection is this process's copy
            _keep_inherited(self._engine.pool, self._conn)
            self._engine.dispose(close=False)
            self._conn = None
        self._items = deque()
        self._wake = threading.Event()
        self._starting = threading.Lock()   # a parent's thread may have held the copied one
        self._thread = None
        self.waiting_for_database = self._given_up = False
        self._away_failures = self.dropped = self.committed_batches = 0
        for hook in self._forks:
            hook()

    @property
    def pending(self) -> int:
        """Items waiting to be written (records, ops, flush marks)."""
        return len(self._items)

    # -- producer side (any thread) ---------------------------------------------------
    def insert(self, rows: Rows) -> None:
        """Queue ``rows()`` (called on the writer thread) for the next batch."""
        self._put(_Insert(rows))

    def run(self, op: Op) -> bool:
        """Run ``op(conn)`` in the next batch's transaction (updates, deletes). False: the
        queue is full and the op was dropped."""
        return self._put(op)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until everything queued before this call is committed (or dropped): True.
        False when ``timeout`` passes first, or as soon as the writer, woken to try at once,
        finds the database still away: nothing can be committed then (the records stay queued
        for when it is back), and waiting longer would only hold up the caller — a request
        that flushes before it reads (it then meets the outage itself: a 503), a server
        stopping (an orchestrator kills one that takes its whole grace period)."""
        if self._closed or (self._thread is not None and not self._thread.is_alive()):
            return True
        if self._thread is None:
            if not self._items:
                return True
            self._start()
        failures = self._away_failures
        done = threading.Event()
        self._items.append(_Flush(done))
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done.wait(FLUSH_POLL_SECONDS):
            if self._away_failures != failures:
                return False
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True

    def close(self, timeout: float | None = 30.0) -> None:
        if self._closed:
            return
        atexit.unregister(self._at_exit)
        self.flush(timeout)
        self._closed = True
        if self._thread is None:   # a forked child that wrote nothing
            return
        self._items.append(_STOP)
        self._wake.set()
        self._thread.join(timeout)

    def _at_exit(self) -> None:
        self.close(timeout=10.0)

    def _put(self, item: Any) -> bool:
        if self._closed:
            raise RuntimeError("the store is closed")
        if len(self._items) >= MAX_PENDING:
            self.dropped += 1
            if self.dropped % 10_000 == 1:
                log.error("the store is not keeping up; dropping call records (%d so far)", self.dropped)
            return False
        self._items.append(item)
        if self._thread is None:   # a forked child's first record
            self._start()
        if len(self._items) >= self._wake_at and not self._wake.is_set():
            self._wake.set()
        return True

    # -- the writer thread ------------------------------------------------------------
    def _run(self) -> None:
        items = self._items
        backoff = 0.0       # while the database is away: the wait before the next try
        while True:
            self._wake.wait(backoff or self._interval)
            self._wake.clear()     # before draining: a wake-up set from here on is not lost
            if self._drain(items):
                return
            if self.waiting_for_database:
                backoff = min(MAX_BACKOFF_SECONDS, max(FIRST_BACKOFF_SECONDS, backoff * 2))
            else:
                backoff = 0.0

    def _drain(self, items: deque[Any]) -> bool:
        """Commit what is queued, batch by batch; True when the writer is to stop. A batch the
        database could not take because it is away goes back to the head of the queue, with
        everything after it, to be tried again after a backoff (:attr:`waiting_for_database`)."""
        batch: list[Any] = []
        for _ in range(len(items)):
            item = items.popleft()
            if item is _STOP:
                self._commit(batch)
                self._disconnect()
                return True
            if isinstance(item, _Flush):
                if not self._commit(batch):
                    items.appendleft(item)
                    items.extendleft(reversed(batch))
                    return False
                batch = []
                item.done.set()
                continue
            batch.append(item)
            if len(batch) >= self._batch_size:
                if not self._commit(batch):
                    items.extendleft(reversed(batch))
                    return False
                batch = []
        if not self._commit(batch):
            items.extendleft(reversed(batch))
        return False

    def _commit(self, batch: list[Any]) -> bool:
        """Write ``batch``: True when it is done with (committed, or its bad items dropped);
        False when the database is away and the batch must wait for it (never once the
        writer is closing: then it is dropped, and so is everything after it)."""
        if not batch:
            return True
        if self._given_up or (self._closed and self.waiting_for_database):
            if not self._given_up:
                self._given_up = True
                log.error("the store's database is away as the writer closes: dropping the %d store record(s) "
                          "still queued", len(batch) + len(self._items))
            self._drop(len(batch))
            return True
        for attempt in (1, 2):
            try:
                self._write(batch)
            except Exception as exc:  # noqa: BLE001 - bookkeeping never takes the writer down
                if _is_content_error(exc):
                    break                # a bad item: find it below
                if attempt == 1:
                    time.sleep(0.05)
                    continue
                return self._database_away(batch, exc)
            self.committed_batches += 1
            if self.waiting_for_database:
                self.waiting_for_database = False
                log.warning("the store's database is back: %d queued record(s) being written", len(self._items))
            return True
        for item in batch:               # one transaction each, so only the bad item is lost
            try:
                self._write([item])
            except Exception as exc:  # noqa: BLE001 - only this item is lost
                if isinstance(exc, sa.exc.DataError) and isinstance(item, _Insert) and self._write_nul_free(item):
                    continue
                self._drop(1)
                log.error("dropping a store record that could not be written: %s", type(exc).__name__)
        return True

    def _write_nul_free(self, item: _Insert) -> bool:
        """Write ``item`` once more with each NUL character in its text as U+FFFD: PostgreSQL
        refuses NUL in text (SQLite keeps it), and a client's string holding one (a name, a
        provider's error quoting the request) once cost the whole call record — its tokens and
        cost — although everything else in it was fine. True when that was written."""
        rows = item.rows

        def nul_free() -> list[tuple[sa.Table, tuple[Any, ...]]]:
            return [(table, tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in values))
                    for table, values in rows()]
        try:
            self._write([_Insert(nul_free)])
        except Exception:  # noqa: BLE001 - not NUL after all: dropped as before
            return False
        log.warning("a store record held NUL characters, which the database refuses: written with U+FFFD in "
                    "their place")
        return True

    def _database_away(self, batch: list[Any], exc: Exception) -> bool:
        """The database could not take ``batch`` twice: keep it (and everything queued after it)
        until it can, or, when the writer is closing, drop it all."""
        if self._closed:
            self._given_up = True
            self._drop(len(batch))
            log.error("the store's database is away as the writer closes: dropping %d store record(s) and "
                      "every one still queued (%s)", len(batch), type(exc).__name__)
            return True
        self._away_failures += 1
        if not self.waiting_for_database:
            self.waiting_for_database = True
            log.error("the store's database is away (%s): keeping call records and spend queued (%d now, at most "
                      "%d) and trying again", type(exc).__name__, len(self._items) + len(batch), MAX_PENDING)
        return False

    def _drop(self, count: int) -> None:
        self.dropped += count

    def _write(self, batch: list[Any]) -> None:
        """One transaction: the inserts between two ops go in one executemany per table."""
        try:
            conn = self._connection()     # inside: a database that cannot be reached is a failed transaction too
            with conn.begin():
                pending: dict[sa.Table, list[tuple[Any, ...]]] = {}
                for item in batch:
                    if isinstance(item, _Insert):
                        for table, values in item.rows():
                            rows = pending.get(table)
                            if rows is None:
                                pending[table] = [values]
                            else:
                                rows.append(values)
                    else:
                        self._insert_all(conn, pending)
                        item(conn)
                self._insert_all(conn, pending)
        except BaseException as exc:
            if not _is_content_error(exc):
                self._disconnect()       # a broken connection is not reused (a bad item leaves it fine)
            self._ended(False)
            raise
        self._ended(True)

    def _ended(self, committed: bool) -> None:
        for hook in self._outcomes:
            try:
                hook(committed)
            except Exception as exc:  # noqa: BLE001 - bookkeeping never takes the writer down
                log.error("a store transaction hook failed: %s", type(exc).__name__)

    def _insert_all(self, conn: sa.Connection, pending: dict[sa.Table, list[tuple[Any, ...]]]) -> None:
        for table, rows in pending.items():
            for nulls, values in _by_nulls(rows).items():
                sql = self._sql.get((table, nulls))
                if sql is None:
                    sql = self._sql[(table, nulls)] = insert_sql(table, self._engine.dialect, nulls)
                conn.exec_driver_sql(sql, values)
            hook = self._after.get(table)
            if hook is not None:
                hook(conn, rows)
        pending.clear()

    def _connection(self) -> sa.Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass


def _after_fork(ref: weakref.ref[BatchWriter]) -> None:
    writer = ref()
    if writer is not None and not writer._closed:
        try:
            writer.forked()
        except Exception as exc:  # noqa: BLE001 - a fork must never fail because of the store
            log.error("the store's writer could not start afresh in a forked process: %s", type(exc).__name__)


def _keep_inherited(pool: sa.pool.Pool, conn: sa.Connection | None) -> None:
    """Keep a forked child's inherited ``pool`` and the writer's connection ``conn`` (checked out
    of it) from ever acting on the parent's connections. SQLAlchemy resets (a ROLLBACK) and returns
    a checked-out connection to its pool once it is collected, on the socket the parent is using:
    its pool record forgets the driver's connection and the connection (SQLAlchemy's own recipe
    for connections across a fork). The driver's connections are kept until the child exits, then
    let go quietly: psycopg sends nothing on a connection another process opened, but warns
    (``ResourceWarning``) that it was not closed, which would be all a ``-W error`` worker's
    stderr shows at its end."""
    global _let_go_registered_in
    _INHERITED.append(pool)
    if conn is not None:
        _INHERITED.append(conn)
        proxy = getattr(conn, "_dbapi_connection", None)        # the pool's proxy, while checked out
        record = getattr(proxy, "_connection_record", None)
        if record is not None:
            _INHERITED.append(record.dbapi_connection)
            record.fairy_ref = None            # not checked out: nothing to return, nothing to reset
            record.dbapi_connection = None
    if _let_go_registered_in != os.getpid():
        _let_go_registered_in = os.getpid()
        atexit.register(_let_go_of_inherited)


def _let_go_of_inherited() -> None:
    """At a forked child's exit: collect what it inherited, with no ``ResourceWarning`` (see above)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        _INHERITED.clear()
        gc.collect()


def _is_static(pool: sa.pool.Pool) -> bool:
    """Is ``pool`` one connection for good (``sqlite://``, in memory): a new pool would be a new,
    empty database, and the copy a fork made is this process's own."""
    return isinstance(pool, sa.pool.StaticPool)


def _is_content_error(exc: BaseException) -> bool:
    """Did the batch fail because of what it holds, not because the database is away?

    The database's own failures (a lost connection, a locked file, a missing table) come
    wrapped as ``DBAPIError``; of those only a refused value (``IntegrityError``,
    ``DataError``) is about content. Any other exception was raised on the way to the driver
    — a record that cannot be built, a string that cannot be encoded (``UnicodeEncodeError``
    from the driver's binding), a value a type processor refused (``StatementError``) — so
    it belongs to one item, and retrying the whole batch would fail the same way."""
    if isinstance(exc, (sa.exc.IntegrityError, sa.exc.DataError)):
        return True
    if isinstance(exc, (sa.exc.TimeoutError, OSError)):   # no connection free in time; a socket error
        return False
    return isinstance(exc, Exception) and not isinstance(exc, sa.exc.DBAPIError)


def insert_sql(table: sa.Table, dialect: sa.Dialect, nulls: tuple[int, ...] = ()) -> str:
    """``INSERT INTO t (c1, c2, ...) VALUES (?, NULL, ...)`` in the driver's own parameter
    style, taking values in the table's column order, with ``NULL`` written for the columns
    at ``nulls`` (those take no value)."""
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    names = [quote(c.name) for c in table.columns]
    return (f"INSERT INTO {quote(table.name)} ({', '.join(names)}) "
            f"VALUES ({', '.join('NULL' if i in nulls else mark for i in range(len(names)))})")


def _by_nulls(rows: list[tuple[Any, ...]]) -> dict[tuple[int, ...], list[tuple[Any, ...]]]:
    """``rows`` grouped by which of their values are None, those values left out.

    Why: the ``sqlite3`` module binds a None by asking the adapter registry, the protocol
    and the value itself for an adapter (two failed attribute lookups, each building an
    exception), which made binding a call's NULLs a fifth of the writer thread's work; a
    ``NULL`` written into the statement costs nothing. A batch's rows mostly share one
    pattern (answered calls leave the same columns empty), so few statements result, and
    the drivers cache each one."""
    groups: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        if None in row:
            nulls = tuple([i for i, v in enumerate(row) if v is None])
            row = tuple([v for v in row if v is not None])
        else:
            nulls = ()
        group = groups.get(nulls)
        if group is None:
            groups[nulls] = [row]
        else:
            group.append(row)
    return groups
