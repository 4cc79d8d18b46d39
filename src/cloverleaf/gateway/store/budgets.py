"""Budget ledger: exact, concurrent-safe spend per scope and period.

``budget_reserve`` is a single conditional UPDATE (``spent + reserved + amount <= limit``):
PostgreSQL re-checks the condition on the locked row and SQLite runs one writer at a time,
so two concurrent reservations can never both squeeze into the last dollar. Every
transaction here starts with a write, so SQLite takes its write lock up front (no
read-then-upgrade deadlocks under WAL).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import sqlalchemy as sa

from . import schema

_EPSILON = 1e-12


class BudgetLedger:
    engine: sa.Engine
    wall: Callable[[], float]

    def budget_reserve(self, scope: str, period: str, limit: float, amount: float,
                       now: float | None = None) -> tuple[bool, str | None, float, float]:
        """Reserve ``amount`` if it fits: (ok, reservation id, spent, reserved before this call)."""
        now = self.wall() if now is None else now
        b = schema.budgets
        where = sa.and_(b.c.scope == scope, b.c.period == period)
        with self.engine.begin() as conn:
            _insert_ignore(conn, b, {"scope": scope, "period": period, "spent": 0.0, "reserved": 0.0,
                                     "updated_at": now})
            result = conn.execute(
                b.update()
                .where(where, b.c.spent + b.c.reserved + amount <= limit + _EPSILON)
                .values(reserved=b.c.reserved + amount, updated_at=now))
            if result.rowcount == 1:
                rid = uuid.uuid4().hex
                conn.execute(schema.budget_reservations.insert().values(
                    id=rid, scope=scope, period=period, amount=amount, created_at=now))
                row = conn.execute(sa.select(b.c.spent, b.c.reserved).where(where)).one()
                return True, rid, float(row.spent), float(row.reserved) - amount
            row = conn.execute(sa.select(b.c.spent, b.c.reserved).where(where)).one()
            return False, None, float(row.spent), float(row.reserved)

    def budget_settle(self, reservation_id: str, cost: float) -> None:
        """Turn a reservation into real spend (``cost``; 0 releases it). Idempotent."""
        r, b = schema.budget_reservations, schema.budgets
        with self.engine.begin() as conn:
            row = conn.execute(r.delete().where(r.c.id == reservation_id)
                               .returning(r.c.scope, r.c.period, r.c.amount)).first()
            if row is None:
                return
            conn.execute(b.update().where(b.c.scope == row.scope, b.c.period == row.period)
                         .values(reserved=sa.func.max(b.c.reserved - row.amount, 0.0) if conn.dialect.name == "sqlite"
                                 else sa.func.greatest(b.c.reserved - row.amount, 0.0),
                                 spent=b.c.spent + cost, updated_at=self.wall()))
            if row.scope.startswith("key:") and cost:
                k = schema.virtual_keys
                conn.execute(k.update().where(k.c.id == row.scope[4:]).values(spent=k.c.spent + cost))

    def budget_usage(self, scope: str, period: str) -> tuple[float, float]:
        """(spent, reserved) for one scope and period."""
        b = schema.budgets
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(b.c.spent, b.c.reserved)
                               .where(b.c.scope == scope, b.c.period == period)).first()
        return (float(row.spent), float(row.reserved)) if row else (0.0, 0.0)

    def expire_reservations(self, older_than: float) -> int:
        """Release reservations left behind by processes that died mid-call."""
        r = schema.budget_reservations
        with self.engine.connect() as conn:
            ids = [row.id for row in conn.execute(sa.select(r.c.id).where(r.c.created_at < older_than))]
        for rid in ids:
            self.budget_settle(rid, 0.0)
        return len(ids)


def _insert_ignore(conn: sa.Connection, table: sa.Table, values: dict[str, object]) -> None:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).values(**values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing())
