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
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from . import schema


class SpendBatch:
    def __init__(self, queue: Callable[[Callable[[sa.Connection], None]], None],
                 wall: Callable[[], float]) -> None:
        self._queue = queue
        self._wall = wall
        self._lock = threading.Lock()
        self._sums: dict[str, float] = {}     # "<scope>|<period>" → dollars
        self._sql: tuple[str, str, str] | None = None   # (dialect, counter upsert, key update)

    def add(self, scope: str, period: str, cost: float) -> None:
        """Book ``cost`` dollars of spend to ``scope`` in ``period`` with the next batch."""
        self.add_many([f"{scope}|{period}"], cost)

    def add_many(self, counters: list[str], cost: float) -> None:
        """Book ``cost`` to every ``"<scope>|<period>"`` counter (one call's budgets)."""
        if not cost:
            return
        with self._lock:
            sums = self._sums
            first = not sums
            for key in counters:
                sums[key] = sums.get(key, 0.0) + cost
        if first:
            self._queue(self._apply)

    def pending(self) -> dict[tuple[str, str], float]:
        """What is summed but not yet handed to the writer, by (scope, period)."""
        with self._lock:
            return {tuple(key.split("|", 1)): amount for key, amount in self._sums.items()}  # type: ignore[misc]

    def _apply(self, conn: sa.Connection) -> None:
        """On the writer thread, inside the batch's transaction: one upsert per counter and one
        update per key, each statement rendered once and sent with the driver's ``executemany``
        (the batch's calls share a few counters, but this runs for every batch)."""
        with self._lock:
            sums, self._sums = self._sums, {}
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
