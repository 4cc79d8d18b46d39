"""Budget ledger: exact, concurrent-safe spend per scope and period.

``budget_reserve`` is a single conditional UPDATE (``spent + reserved + amount <= limit``):
PostgreSQL re-checks the condition on the locked row and SQLite runs one writer at a time,
so two concurrent reservations can never both squeeze into the last dollar. Every
transaction here starts with a write, so SQLite takes its write lock up front (no
read-then-upgrade deadlocks under WAL).

A budget can start to apply to a scope that has spent already: a virtual key given a budget
(or another period, or one again after it was removed), a route or project budget added to
cloverleaf.toml mid-period. Only calls that held a reservation reach the ledger, so its row
would start from $0 and the budget would be overrun by what was spent before. The call
records know that spend (``calls.cost``, or ``charged`` when the cost is unknown, as
``cloverleaf spend`` sums it), so a row that does not exist yet is made from them
(:meth:`BudgetLedger.budget_open`, and ``budget_reserve``), and one whose budget starts to
apply again is raised to them (:meth:`BudgetLedger.budget_recount`: a key's budget set again,
and a configured route or project budget the first time each process uses it, since it may
have been removed from cloverleaf.toml and added back while its row stood still). Both read a
scope's calls of one period through an index (``ix_calls_key_created``, ``ix_calls_project_created``,
``ix_calls_route_created``, a model's budget ``ix_calls_target_created``: the scope's value, then
the period's time range), and only then: never per call. That sum is read on its own, before
the transaction that writes the row: SQLite's write lock would be held while it runs. Only a
recount that finds the row behind the records sums them again inside its write, after locking
the row, so that spend the writer commits meanwhile (a call's record and its spend together)
is not dropped by the raise (:meth:`BudgetLedger.budget_recount`).
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from . import schema
from .spend import dialect_insert

_EPSILON = 1e-12
#: Scopes read per statement by :meth:`BudgetLedger.budget_usages` (inside every database's
#: limit on bound parameters, SQLite's 999 of old builds included).
_SCOPES_PER_READ = 500


class BudgetLedger:
    engine: sa.Engine
    wall: Callable[[], float]

    def budget_reserve(self, scope: str, period: str, limit: float, amount: float,
                       now: float | None = None, covers: Sequence[str] = ()) -> tuple[bool, str | None, float, float]:
        """Reserve ``amount`` if it fits: (ok, reservation id, spent, reserved before this call).
        ``covers``: see :func:`calls_spent`."""
        now = self.wall() if now is None else now
        with self.engine.begin() as conn:
            done = _reserve(conn, scope, period, limit, amount, now, None)
        if done is None:   # the scope's first reservation in this period: its row starts from the call records
            opening = self._opening_row(scope, period, now, covers)   # read before the write lock is taken
            with self.engine.begin() as conn:
                done = _reserve(conn, scope, period, limit, amount, now, opening)
        assert done is not None
        return done

    def budget_settle(self, reservation_id: str, cost: float) -> None:
        """Turn a reservation into real spend (``cost``; 0 releases it). Idempotent."""
        r, b = schema.budget_reservations, schema.budgets
        with self.engine.begin() as conn:
            row = conn.execute(r.delete().where(r.c.id == reservation_id)
                               .returning(r.c.scope, r.c.period, r.c.amount)).first()
            if row is None:
                return
            conn.execute(b.update().where(b.c.scope == row.scope, b.c.period == row.period)
                         .values(reserved=_greatest(conn, b.c.reserved - row.amount, 0.0),
                                 spent=b.c.spent + cost, updated_at=self.wall()))
            if row.scope.startswith("key:") and cost:
                k = schema.virtual_keys
                conn.execute(k.update().where(k.c.id == row.scope[4:]).values(spent=k.c.spent + cost))

    def budget_usage(self, scope: str, period: str) -> tuple[float, float]:
        """(spent, reserved) for one scope and period (none yet: nothing)."""
        return self._budget_row(scope, period) or (0.0, 0.0)

    def budget_usages(self, wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[float, float]]:
        """(spent, reserved) for many (scope, period) pairs at once, in a few reads however many
        there are: ``GET /admin/keys`` shows every key's spend, and a read per key (with a writer
        flush before each) made the listing of a few thousand keys take seconds under traffic.
        A pair without a row spent nothing yet: it is answered (0.0, 0.0), as by :meth:`budget_usage`."""
        found = self.budget_rows(wanted)
        return {pair: found.get(pair, (0.0, 0.0)) for pair in wanted}

    def budget_rows(self, wanted: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[float, float]]:
        """(spent, reserved) of those of the (scope, period) pairs the ledger has a row for, in a
        few reads (``_SCOPES_PER_READ`` scopes each); a pair without one is left out."""
        b = schema.budgets
        found: dict[tuple[str, str], tuple[float, float]] = {}
        pairs = sorted(set(wanted))
        periods = sorted({period for _, period in pairs})   # at most three: total, this day, this month
        with self.engine.connect() as conn:
            for start in range(0, len(pairs), _SCOPES_PER_READ):
                scopes = sorted({scope for scope, _ in pairs[start:start + _SCOPES_PER_READ]})
                query = sa.select(b.c.scope, b.c.period, b.c.spent, b.c.reserved).where(
                    b.c.scope.in_(scopes), b.c.period.in_(periods))
                for row in conn.execute(query):
                    found[(row.scope, row.period)] = (float(row.spent), float(row.reserved))
        return {pair: found[pair] for pair in pairs if pair in found}

    def budget_open(self, scope: str, period: str, covers: Sequence[str] = ()) -> tuple[float, float]:
        """(spent, reserved) to start a budget counter from: the ledger row's, made first from
        the call records when the scope has none for this period yet (see the module
        docstring). Where the row exists, one read, as :meth:`budget_usage`."""
        found = self._budget_row(scope, period)
        if found is not None:
            return found
        opening = self._opening_row(scope, period, self.wall(), covers)
        with self.engine.begin() as conn:
            _insert_ignore(conn, schema.budgets, opening)
        return self._budget_row(scope, period) or (0.0, 0.0)

    def budget_recount(self, scope: str, period: str, covers: Sequence[str] = ()) -> tuple[float, float]:
        """A budget starts to apply to ``scope`` again (a key given a budget or another period):
        raise its ledger row for ``period`` to what the call records show it spent in that
        period, creating the row if need be, and a key's ``virtual_keys.spent`` to what its
        calls cost in all; returns the row's (spent, reserved). Never lowers either: spend the
        ledger holds and the records lack (``[store] record`` keeps only errors, say) stays.

        First one read, no lock: the records' sums and the ledger's figures, from one snapshot.
        Where the ledger already holds what the records show — every process's start with a
        configured budget, as a rule — nothing is written. Only a row (or key total) behind
        the records is raised, and then the records are summed again in the write, after it
        has locked the row: the store's writer commits a call's record and its spend together,
        so spend it commits between a sum read apart and the write is in the row and not in
        that sum, and ``max(row, sum)`` dropped it."""
        b, k = schema.budgets, schema.virtual_keys
        now = self.wall()
        spent = calls_spent(scope, period, covers)
        key_total = calls_spent(scope, "total") if scope.startswith("key:") else None
        if self._ledger_covers(scope, period, spent, key_total):
            return self._budget_row(scope, period) or (0.0, 0.0)
        with self.engine.begin() as conn:   # a write first: SQLite's write lock, PostgreSQL's row lock
            insert = dialect_insert(conn.dialect.name)(b).values(scope=scope, period=period, spent=0.0,
                                                                 reserved=0.0, updated_at=now)
            conn.execute(insert.on_conflict_do_update(index_elements=[b.c.scope, b.c.period],
                                                      set_={"updated_at": now}))
            conn.execute(b.update().where(b.c.scope == scope, b.c.period == period)
                         .values(spent=_greatest(conn, b.c.spent, spent)))
            if key_total is not None:
                conn.execute(k.update().where(k.c.id == scope[4:]).values(spent=_greatest(conn, k.c.spent, key_total)))
        return self._budget_row(scope, period) or (0.0, 0.0)

    def _ledger_covers(self, scope: str, period: str, spent: Any, key_total: Any) -> bool:
        """Whether the ledger row exists and holds at least the records' ``spent``, and a key's
        total at least its records' ``key_total``: one statement, so one snapshot of both."""
        b, k = schema.budgets, schema.virtual_keys
        row = sa.select(b.c.spent).where(b.c.scope == scope, b.c.period == period).scalar_subquery()
        columns = [spent, row]
        if key_total is not None:
            columns += [key_total, sa.select(k.c.spent).where(k.c.id == scope[4:]).scalar_subquery()]
        with self.engine.connect() as conn:
            figures = conn.execute(sa.select(*columns)).one()
        held = figures[1]
        if held is None or float(figures[0] or 0.0) > float(held) + _EPSILON:
            return False
        return key_total is None or figures[3] is None or float(figures[2] or 0.0) <= float(figures[3]) + _EPSILON

    def _opening_row(self, scope: str, period: str, now: float, covers: Sequence[str] = ()) -> dict[str, object]:
        """A ledger row's values when it is made: what the call records show the scope spent in
        the period. Summed in a read of its own, before any write: inside the write transaction
        the sum held SQLite's write lock as long as it ran — a route budget over all time read
        the route's every call, 2.7 s for 83,000 of them, and the store's writer (every call
        record and its spend) waited behind it, at each process's first call after a start."""
        return {"scope": scope, "period": period, "spent": self._summed(calls_spent(scope, period, covers)),
                "reserved": 0.0, "updated_at": now}

    def _summed(self, spent: Any) -> float:
        """The value of a :func:`calls_spent` subquery, read on its own."""
        with self.engine.connect() as conn:
            return float(conn.execute(sa.select(spent)).scalar() or 0.0)

    def _budget_row(self, scope: str, period: str) -> tuple[float, float] | None:
        b = schema.budgets
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(b.c.spent, b.c.reserved)
                               .where(b.c.scope == scope, b.c.period == period)).first()
        return (float(row.spent), float(row.reserved)) if row else None

    def expire_reservations(self, older_than: float) -> int:
        """Release reservations left behind by processes that died mid-call."""
        r = schema.budget_reservations
        with self.engine.connect() as conn:
            ids = [row.id for row in conn.execute(sa.select(r.c.id).where(r.c.created_at < older_than))]
        for rid in ids:
            self.budget_settle(rid, 0.0)
        return len(ids)


def _insert_ignore(conn: sa.Connection, table: sa.Table, values: dict[str, object]) -> None:
    conn.execute(dialect_insert(conn.dialect.name)(table).values(**values).on_conflict_do_nothing())


def _reserve(conn: sa.Connection, scope: str, period: str, limit: float, amount: float, now: float,
             opening: dict[str, object] | None) -> tuple[bool, str | None, float, float] | None:
    """:meth:`BudgetLedger.budget_reserve` in ``conn``'s transaction; None when the scope has
    no row for the period yet and no ``opening`` row was given to make it from."""
    b = schema.budgets
    where = sa.and_(b.c.scope == scope, b.c.period == period)
    reserve = (b.update().where(where, b.c.spent + b.c.reserved + amount <= limit + _EPSILON)
               .values(reserved=b.c.reserved + amount, updated_at=now))
    result = conn.execute(reserve)
    if result.rowcount == 0 and conn.execute(sa.select(b.c.spent).where(where)).first() is None:
        if opening is None:
            return None
        _insert_ignore(conn, b, opening)
        result = conn.execute(reserve)
    if result.rowcount == 1:
        rid = uuid.uuid4().hex
        conn.execute(schema.budget_reservations.insert().values(
            id=rid, scope=scope, period=period, amount=amount, created_at=now))
        row = conn.execute(sa.select(b.c.spent, b.c.reserved).where(where)).one()
        return True, rid, float(row.spent), float(row.reserved) - amount
    row = conn.execute(sa.select(b.c.spent, b.c.reserved).where(where)).one()
    return False, None, float(row.spent), float(row.reserved)


#: The calls column that says which calls a budget scope's kind covers ("key:<id>" → key_id).
_SCOPE_COLUMNS = {"key": "key_id", "project": "project", "route": "requested_model"}


def calls_spent(scope: str, period: str, covers: Sequence[str] = ()) -> Any:
    """What the calls of ``scope`` in ``period`` cost, as a scalar subquery: their cost, or what
    their budgets were charged when it is unknown (``charged``), as the ledger counts them. A
    scope of a kind no call column names spent nothing the records know of. ``covers``: for a
    budget on a model id, the targets that reach the model (``gateway/model_budgets.py``): its
    calls are those charged to one of them (``calls.target``: the answer's, or the last
    attempt's of a call the provider may bill anyway) — not those requested by a name that
    could reach it, which counted a fallback route's other answers too."""
    kind, _, name = scope.partition(":")
    column = _SCOPE_COLUMNS.get(kind)
    if column is None:
        return sa.literal(0.0, sa.Float)
    c = schema.calls.c
    query = sa.select(sa.func.coalesce(sa.func.sum(sa.func.coalesce(c.cost, c.charged)), 0.0))
    query = query.where(c.target.in_(covers) if covers and kind == "route" else c[column] == name)
    bounds = period_bounds(period)
    if bounds is not None:
        query = query.where(c.created_at >= bounds[0], c.created_at < bounds[1])
    return query.scalar_subquery()


def period_bounds(period: str) -> tuple[float, float] | None:
    """The UTC times ``[start, end)`` a budget period key covers ("2025-01-31" a day, "2025-01"
    a month); None for ``total`` (all time)."""
    if period == "total":
        return None
    try:
        parts = [int(p) for p in period.split("-")]
    except ValueError:
        parts = []
    if len(parts) == 3:
        start = calendar.timegm((parts[0], parts[1], parts[2], 0, 0, 0))
        return float(start), float(start + 86_400)
    if len(parts) == 2:
        year, month = parts
        later = (year + 1, 1) if month == 12 else (year, month + 1)
        return float(calendar.timegm((year, month, 1, 0, 0, 0))), float(calendar.timegm((*later, 1, 0, 0, 0)))
    raise ValueError(f"not a budget period key: {period!r} (total, YYYY-MM-DD or YYYY-MM)")


def _greatest(conn: sa.Connection, a: Any, b: Any) -> Any:
    """The larger of two values, in the dialect's spelling (SQLite's two-argument ``max``)."""
    return sa.func.max(a, b) if conn.dialect.name == "sqlite" else sa.func.greatest(a, b)
