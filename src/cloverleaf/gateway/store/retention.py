"""The retention cleanup: calls past their retention deleted a bounded batch at a time.

Why batches: the cleanup once deleted every expired call in ONE transaction. On SQLite that
transaction holds the database's only write lock for as long as it runs — a store of 1,000,000
calls given ``data_retention_days = 30`` had 666,000 to drop, a minute's work — and the store's
batch writer, which records every call and its spend, waited behind it: a flush (``/admin/spend``,
``GET /admin/keys/{id}``) gave up after its 30 s, and nothing answered meanwhile reached the
store. The one transaction also wrote every page it touched to the WAL, which grew to 265 MB.

So each batch here is its own short transaction: the ids of at most ``BATCH`` expired calls
are read first (no lock held: a read in WAL mode), then their attempts and the calls are
deleted in a transaction that starts with a write (SQLite takes its write lock up front, no
read-then-upgrade), and the writer gets the lock between batches (``PAUSE_SECONDS``). Each
rule walks its calls oldest first along an index with a keyset cursor, so calls a rule skips
(another model entry keeps them longer) are read once, not once per batch. Rollups and the
budget ledger are never touched here: spend and charts outlive the calls they came from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from . import schema
from .keyset import Place, past

#: Calls deleted per transaction: tens of milliseconds of SQLite's write lock (each call is an
#: entry in seven indexes, so a batch touches pages all over them: keep it small).
BATCH = 500
#: Traces deleted per transaction (a trace's row only, its calls are gone already).
TRACE_BATCH = 2_000
#: Between two batches, the write lock is left to the store's writer for this long.
PAUSE_SECONDS = 0.02


def expired_calls(now: float, default_days: int | None, per_model: Mapping[str, int | None] | None) -> list[Any]:
    """One condition per retention rule, each a set of expired calls: a model entry's
    ``data_retention_days`` for the calls that asked for it or were answered by it, and
    ``default_days`` for every other call (None or 0: kept for ever)."""
    c = schema.calls.c
    rules = {name: days for name, days in (per_model or {}).items() if days}
    conditions = [sa.and_(sa.or_(c.requested_model == name, c.target == name), c.created_at < now - days * 86400)
                  for name, days in rules.items()]
    if default_days:
        rest = c.created_at < now - default_days * 86400
        if rules:
            named = list(rules)
            rest = sa.and_(rest, c.requested_model.not_in(named), sa.or_(c.target.is_(None), c.target.not_in(named)))
        conditions.append(rest)
    return conditions


def delete_calls(engine: sa.Engine, condition: Any, *, batch: int | None = None,
                 pause: Callable[[], None] | None = None) -> int:
    """Delete the calls meeting ``condition`` and their attempts, ``batch`` (:data:`BATCH`)
    calls a transaction, oldest first, calling ``pause`` between two; returns how many went."""
    batch = batch or BATCH
    pause = pause or _pause
    calls, attempts = schema.calls, schema.attempts
    c = calls.c
    deleted = 0
    after: Place | None = None
    while True:
        where = [condition] if after is None else [condition, past(c.created_at, c.id, after, newest_first=False)]
        with engine.connect() as conn:
            found = conn.execute(sa.select(c.id, c.created_at).where(*where)
                                 .order_by(c.created_at, c.id).limit(batch)).all()
        if not found:
            return deleted
        ids = [r.id for r in found]
        with engine.begin() as conn:
            conn.execute(attempts.delete().where(attempts.c.call_id.in_(ids)))
            deleted += int(conn.execute(calls.delete().where(c.id.in_(ids))).rowcount or 0)
        if len(found) < batch:
            return deleted
        after = (float(found[-1].created_at), str(found[-1].id))
        pause()


def delete_orphan_traces(engine: sa.Engine, before: float, *, batch: int | None = None,
                         pause: Callable[[], None] | None = None) -> int:
    """Delete traces begun before ``before`` none of whose calls is kept, ``batch``
    (:data:`TRACE_BATCH`) a transaction; returns how many."""
    batch = batch or TRACE_BATCH
    pause = pause or _pause
    t, c = schema.traces, schema.calls.c
    orphan = sa.and_(t.c.created_at < before, ~sa.exists().where(c.trace_id == t.c.id))
    deleted = 0
    after = ""
    while True:
        with engine.connect() as conn:
            ids = list(conn.execute(sa.select(t.c.id).where(orphan, t.c.id > after)
                                    .order_by(t.c.id).limit(batch)).scalars())
        if not ids:
            return deleted
        with engine.begin() as conn:   # a call may have named one meanwhile: checked again here
            deleted += int(conn.execute(t.delete().where(t.c.id.in_(ids), orphan)).rowcount or 0)
        if len(ids) < batch:
            return deleted
        after = ids[-1]
        pause()


def _pause() -> None:
    """Leave SQLite's write lock to the store's writer for a moment (its busy handler polls)."""
    time.sleep(PAUSE_SECONDS)
