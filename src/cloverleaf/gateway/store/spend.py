"""Budget spend on its way to the ledger: summed in memory, written with the next batch.

With budgets counted in the state backend (``gateway/budget.py``), the store is the durable
ledger behind the counters, and it is written the way call records are: off the request
path. :meth:`SpendBatch.add` adds a call's cost to a per-(scope, period) sum — a dict update
under a lock, nothing else — and the first addition after a write queues ONE operation on
the store's :class:`~.writer.BatchWriter`; when the writer runs it, it takes every sum
gathered so far and applies them in the batch's transaction (one UPDATE per scope and
period, however many calls). So the ledger trails the counters by at most one flush
interval, and a ``kill -9`` can leave at most that much spend unrecorded — never a
half-applied batch (the sums and the call records queued with them commit together).

Sums leave memory only when their transaction commits: what a batch took is held aside
until the writer reports its outcome (``BatchWriter.after_transaction``) and merged back
into the running sums if it rolled back — the writer retries a failed batch, or drops it,
with the same operation, which must then find the spend again. And whenever sums wait with
no operation queued to write them (the writer's queue was full and refused it, or a batch
was rolled back), the next addition or the next transaction queues one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from . import schema


class SpendBatch:
    def __init__(self, queue: Callable[[Callable[[sa.Connection], None]], bool],
                 wall: Callable[[], float]) -> None:
        self._queue = queue
        self._wall = wall
        self._lock = threading.Lock()
        self._sums: dict[str, float] = {}     # "<scope>|<period>" → dollars, not yet taken by a batch
        self._writing: dict[str, float] = {}  # taken by the transaction in progress, not committed
        self._queued = False                  # an _apply is in the writer's queue
        self._sql: tuple[str, str, str] | None = None   # (dialect, counter upsert, key update)

    def forked(self) -> None:
        """In a forked child (``BatchWriter.after_fork``): the sums are the parent's spend, which the
        parent writes; written here too, they would be counted twice. The writer's queue, where an
        :meth:`_apply` may have waited, is the parent's too."""
        self._lock = threading.Lock()   # a parent's thread may have held the copied one
        self._sums = {}
        self._writing = {}
        self._queued = False

    def add(self, scope: str, period: str, cost: float) -> None:
        """Book ``cost`` dollars of spend to ``scope`` in ``period`` with the next batch."""
        self.add_many([f"{scope}|{period}"], cost)

    def add_many(self, counters: Sequence[str], cost: float) -> None:
        """Book ``cost`` to every ``"<scope>|<period>"`` counter (one call's budgets)."""
        if not cost:
            return
        with self._lock:
            sums = self._sums
            for key in counters:
                sums[key] = sums.get(key, 0.0) + cost
            if self._queued:
                return
            self._queued = True
        self._send()

    def pending(self) -> dict[tuple[str, str], float]:
        """What is summed but not yet committed to the ledger, by (scope, period)."""
        out: dict[tuple[str, str], float] = {}
        with self._lock:
            for sums in (self._sums, self._writing):
                for key, amount in sums.items():
                    scope, _, period = key.partition("|")
                    out[(scope, period)] = out.get((scope, period), 0.0) + amount
        return out

    def transaction_ended(self, committed: bool) -> None:
        """The writer's report after each transaction (``BatchWriter.after_transaction``):
        what the transaction took is written, or goes back into the sums; and sums waiting
        with no operation queued get one."""
        with self._lock:
            writing, self._writing = self._writing, {}
            if not committed:
                _merge(self._sums, writing)
                # the batch may be dropped with the queued _apply in it: queue another (an _apply
                # that finds no sums does nothing, so one too many is harmless, one too few loses spend)
                self._queued = False
            if self._queued or not self._sums:
                return
            self._queued = True
        self._send()

    def _send(self) -> None:
        """Queue one :meth:`_apply` (the caller has set ``_queued``); if the writer's queue
        refuses it, the next addition or transaction tries again."""
        queued = False
        try:
            queued = self._queue(self._apply)
        finally:
            if not queued:
                with self._lock:
                    self._queued = False

    def _apply(self, conn: sa.Connection) -> None:
        """On the writer thread, inside the batch's transaction: one upsert per counter and one
        update per key, each statement rendered once and sent with the driver's ``executemany``
        (the batch's calls share a few counters, but this runs for every batch)."""
        with self._lock:
            sums, self._sums = self._sums, {}
            self._queued = False
            _merge(self._writing, sums)   # until the transaction's outcome is known
        if not sums:
            return
        sql = self._sql
        if sql is None or sql[0] != conn.dialect.name:
            sql = self._sql = (conn.dialect.name, *spend_sql(conn.dialect))
        now = self._wall()
        counters, keys = [], []
        for key, amount in sorted(sums.items()):   # a fixed order: concurrent writers lock rows alike
            scope, _, period = key.partition("|")
            counters.append((scope, period, amount, now))
            if scope.startswith("key:"):
                keys.append((amount, scope[4:]))
        conn.exec_driver_sql(sql[1], counters)
        if keys:
            conn.exec_driver_sql(sql[2], keys)


def _merge(into: dict[str, float], sums: dict[str, float]) -> None:
    for key, amount in sums.items():
        into[key] = into.get(key, 0.0) + amount


def spend_sql(dialect: sa.Dialect) -> tuple[str, str]:
    """The two statements :meth:`SpendBatch._apply` runs, in the driver's parameter style:
    add to a (scope, period) counter, creating it at 0 first (``INSERT ... ON CONFLICT DO
    UPDATE``, which SQLite 3.24+ and PostgreSQL share), and add to a virtual key's total."""
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    b, k = quote(schema.budgets.name), quote(schema.virtual_keys.name)
    scope, period, spent, reserved, updated = (quote(n) for n in ("scope", "period", "spent", "reserved",
                                                                  "updated_at"))
    counter = (f"INSERT INTO {b} ({scope}, {period}, {spent}, {reserved}, {updated}) "
               f"VALUES ({mark}, {mark}, {mark}, 0.0, {mark}) "
               f"ON CONFLICT ({scope}, {period}) DO UPDATE SET {spent} = {b}.{spent} + excluded.{spent}, "
               f"{updated} = excluded.{updated}")
    key = f"UPDATE {k} SET {spent} = {k}.{spent} + {mark} WHERE {quote('id')} = {mark}"
    return counter, key


def dialect_insert(dialect: str) -> Any:
    """The dialect's INSERT construct (it has ``on_conflict_do_nothing``/``_do_update``)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
