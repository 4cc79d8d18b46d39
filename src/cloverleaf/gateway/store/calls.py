"""Call records, attempts and traces: written in batches, read by ``cloverleaf traces``/``spend``.

Query functions for the CLI (each returns plain rows; the CLI renders them as tables):

- ``recent_calls(limit=20, *, trace_id=None, model=None, status=None, targets=(), after=None) -> list[CallRecord]``
- ``call_targets() -> list[str]`` (every target calls were answered by)
- ``spend(by="model"|"provider"|"route"|"day"|"key"|"project", *, since=None, until=None) -> list[SpendRow]``
- ``get_trace(trace_id) -> TraceRecord | None`` (with its calls and their attempts)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import schema
from .keyset import MAX_RANGES, Place, newest_of, past
from .postgres import unbounded
from .records import AttemptRecord, CallRecord, SpendRow, TraceRecord

if TYPE_CHECKING:
    from .writer import BatchWriter

SPEND_GROUPS = ("model", "provider", "route", "day", "key", "project")


class CallLog:
    engine: sa.Engine
    writer: BatchWriter
    wall: Callable[[], float]

    # -- writes (batched, non-blocking) ----------------------------------------------
    def record_call(self, call: CallRecord) -> None:
        self.writer.insert(functools.partial(_call_rows, call))

    def record_trace(self, trace: TraceRecord) -> None:
        values = (trace.id, trace.created_at, trace.completed_at, _json(trace.metadata))
        self.writer.insert(lambda: [(schema.traces, values)])

    def insert_trace(self, trace: TraceRecord) -> bool:
        """Write ``trace`` now, not with the next batch, unless its id is taken: False when a
        trace of that id exists (created, or only sent with calls; :meth:`flush` first to see
        calls still queued). The insert itself decides (the primary key refuses a second row),
        so of several callers creating one id at once exactly one gets True."""
        t = schema.traces
        c = schema.calls.c
        try:
            with self.engine.begin() as conn:
                if conn.execute(sa.select(c.id).where(c.trace_id == trace.id).limit(1)).first() is not None:
                    return False
                conn.execute(t.insert().values(id=trace.id, created_at=trace.created_at,
                                               completed_at=trace.completed_at, metadata=trace.metadata))
        except sa.exc.IntegrityError:
            with self.engine.connect() as conn:
                if conn.execute(sa.select(t.c.id).where(t.c.id == trace.id)).first() is None:
                    raise        # not the id: some other constraint, a bug to hear about
            return False
        return True

    def complete_trace(self, trace_id: str, at: float) -> None:
        """Mark a trace completed; a trace known only from its calls (see :meth:`get_trace`)
        gets its row here, starting at its first call."""
        def op(conn: sa.Connection) -> None:
            t = schema.traces
            if conn.execute(t.update().where(t.c.id == trace_id).values(completed_at=at)).rowcount:
                return
            c = schema.calls.c
            first = conn.execute(sa.select(sa.func.min(c.created_at)).where(c.trace_id == trace_id)).scalar()
            if first is not None:
                conn.execute(t.insert().values(id=trace_id, created_at=first, completed_at=at, metadata={}))

        self.writer.run(op)

    # -- reads --------------------------------------------------------------------------
    def get_trace(self, trace_id: str) -> TraceRecord | None:
        """The trace with its calls. A trace id that was only ever sent with calls (the
        server's ``x-cloverleaf-trace-id`` header, ``trace_id=`` without ``traces.create``)
        is a trace too: it starts with its first call, has no metadata, and is open."""
        t = schema.traces
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == trace_id)).mappings().first()
        calls = self.recent_calls(limit=10_000, trace_id=trace_id, oldest_first=True)
        if row is None:
            return TraceRecord(trace_id, calls[0].created_at, None, {}, calls) if calls else None
        return TraceRecord(row["id"], row["created_at"], row["completed_at"], dict(row["metadata"] or {}), calls)

    def recent_calls(self, limit: int = 20, *, trace_id: str | None = None, model: str | None = None,
                     status: str | None = None, oldest_first: bool = False, targets: Sequence[str] = (),
                     after: Place | None = None) -> list[CallRecord]:
        """The newest calls (with their attempts), optionally of one trace, route/model or status.

        ``model`` matches a call that asked for that name or was answered by it, or by one of
        ``targets``: the other names of the model it means, as ``/admin/spend?by=model`` groups
        them (:func:`..model_budgets.targets_meaning`). ``after`` continues past that call (a
        :mod:`.keyset` place), in the listing's order."""
        c = schema.calls.c
        where = [condition for condition in (
            c.trace_id == trace_id if trace_id is not None else None,
            c.status == status if status is not None else None,
            past(c.created_at, c.id, after, newest_first=not oldest_first) if after is not None else None,
        ) if condition is not None]
        with self.engine.connect() as conn:
            if model is not None and not oldest_first:
                rows = _newest_of_model(conn, where, model, targets, limit)
            else:
                if model is not None:
                    where.append(sa.or_(c.requested_model == model, c.target.in_(sorted({model, *targets}))))
                order = (c.created_at.asc(), c.id.asc()) if oldest_first else (c.created_at.desc(), c.id.desc())
                query = sa.select(schema.calls).where(*where).order_by(*order).limit(limit)
                rows = list(conn.execute(query).mappings().all())
            return [call_record(r, attempts) for r, attempts in zip(rows, _attempts_of(conn, rows), strict=True)]

    def call_targets(self, cap: int = 10_000) -> list[str]:
        """Every target the calls were answered by (at most ``cap``), read as a skip along the
        ``(target, created_at)`` index — one seek per name, not a scan of the calls: what
        :func:`..model_budgets.targets_meaning` looks through for the names of one model."""
        sql = sa.text(
            "WITH RECURSIVE names(v) AS ("
            " SELECT (SELECT MIN(target) FROM calls WHERE target IS NOT NULL)"
            " UNION ALL"
            " SELECT (SELECT MIN(target) FROM calls WHERE target > names.v) FROM names WHERE names.v IS NOT NULL)"
            " SELECT v FROM names WHERE v IS NOT NULL LIMIT :cap")
        with self.engine.connect() as conn:
            return [str(r.v) for r in conn.execute(sql, {"cap": cap})]

    def spend(self, by: str = "model", *, since: float | None = None, until: float | None = None) -> list[SpendRow]:
        """Calls, tokens and cost grouped by model (target), provider, route, day (UTC), key or project.

        A call whose cost is unknown adds what its budgets were charged (``charged``), so the
        report agrees with the budget ledger, and is counted in ``unknown_cost``: an answered
        call, one charged, or a stream cut after its output started (``ttft_ms`` set: the
        provider bills what it generated), with no cost. A failure that billed nothing is not
        unknown."""
        if by not in SPEND_GROUPS:
            raise ValueError(f"spend --by must be one of {', '.join(SPEND_GROUPS)}, not {by!r}")
        c = schema.calls.c
        group = {
            "model": c.target, "provider": c.provider, "route": c.requested_model, "key": c.key_id,
            "project": c.project, "day": _day(self.engine.dialect.name, c.created_at),
        }[by]
        query = sa.select(group.label("g"), sa.func.count().label("n"),
                          sa.func.coalesce(sa.func.sum(c.input_tokens), 0).label("i"),
                          sa.func.coalesce(sa.func.sum(c.output_tokens), 0).label("o"),
                          sa.func.coalesce(sa.func.sum(sa.func.coalesce(c.cost, c.charged)), 0.0).label("cost"),
                          sa.func.count().filter(sa.and_(c.cost.is_(None), unknown_cost(c))).label("unknown")
                          ).group_by(group)
        if since is not None:
            query = query.where(c.created_at >= since)
        if until is not None:
            query = query.where(c.created_at < until)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = [SpendRow(str(r.g) if r.g is not None else "-", int(r.n), int(r.i), int(r.o), float(r.cost),
                        int(r.unknown)) for r in rows]
        return sorted(out, key=lambda s: s.group) if by == "day" else sorted(out, key=lambda s: -s.cost)

    # -- retention ---------------------------------------------------------------------
    def cleanup(self, now: float, default_days: int | None, per_model: Mapping[str, int | None] | None = None) -> int:
        """Delete calls (and their attempts) older than their retention; returns how many.

        ``per_model`` maps a model entry name to its ``data_retention_days``; it applies to
        calls that asked for that name or were served by it. Other calls use ``default_days``
        (None: kept forever). Runs synchronously, a bounded batch of calls per transaction
        (``retention.py``: the store's writer is never locked out for long). Also drops rollup rows
        past their own retention (``rollups.prune``) and stored Responses past their
        ``expires_at`` (:meth:`purge_responses`). Without the store's statement deadline
        (``postgres.py``): the first cleanup over a large backlog may rightly take minutes.
        """
        with unbounded():
            self.purge_responses(now)
            return self._cleanup(now, default_days, per_model)

    def purge_responses(self, now: float) -> int:
        """Delete stored Responses (``/v1/responses``) past their retention; returns how many.
        Here, on the cleanup thread, never in a client's request: a slow or failing purge (a
        large backlog, a row another transaction holds) must not fail a save that committed."""
        r = schema.responses
        with unbounded(), self.engine.begin() as conn:
            deleted = conn.execute(r.delete().where(r.c.expires_at.is_not(None), r.c.expires_at <= now)).rowcount
        return int(deleted or 0)

    def _cleanup(self, now: float, default_days: int | None, per_model: Mapping[str, int | None] | None) -> int:
        from .retention import delete_calls, delete_orphan_traces, expired_calls
        from .rollups import prune

        with self.engine.begin() as conn:
            prune(conn, now)
        deleted = sum(delete_calls(self.engine, condition)
                      for condition in expired_calls(now, default_days, per_model))
        if default_days:  # traces past the default period, once no call of theirs is kept
            delete_orphan_traces(self.engine, now - default_days * 86400)
        return deleted


#: The ``calls`` columns in table order (the writer takes values in that order): the record's
#: fields, then ``attempt_ms`` (an inline attempt, see :func:`_call_rows`).
_CALL_COLUMNS = tuple(c.name for c in schema.calls.columns)
_RECORD_COLUMNS = _CALL_COLUMNS[:-1]
_METADATA_AT = _CALL_COLUMNS.index("metadata")   # the one JSON column, encoded on the writer thread
#: A record's column values in one C call: a ``getattr`` per column in a comprehension cost the
#: writer thread about 12k instructions a call record more (23 columns), 1% of a whole request.
_record_values = attrgetter(*_RECORD_COLUMNS)
assert _CALL_COLUMNS[-1] == "attempt_ms"
assert tuple(c.name for c in schema.traces.columns) == ("id", "created_at", "completed_at", "metadata")
assert tuple(c.name for c in schema.attempts.columns) == (
    "call_id", "idx", "target", "provider", "ok", "error_type", "error_message", "http_status", "latency_ms")


def _newest_of_model(conn: sa.Connection, where: list[Any], model: str, targets: Sequence[str],
                     limit: int) -> list[Any]:
    """The newest ``limit`` calls meeting ``where`` that asked for ``model`` or were answered by
    it or one of ``targets``: one index range per name, merged (:func:`.keyset.newest_of`)."""
    c = schema.calls.c
    names = sorted({model, *targets})
    ids = sa.select(c.id, c.created_at).where(*where)
    if len(names) < MAX_RANGES:
        arms = [ids.where(c.requested_model == model), *(ids.where(c.target == name) for name in names)]
    else:
        arms = [ids.where(sa.or_(c.requested_model == model, c.target.in_(names)))]
    found = [r.id for r in conn.execute(newest_of(arms, "created_at", "id", limit))]
    if not found:
        return []
    by_id = {r["id"]: r for r in conn.execute(sa.select(schema.calls).where(c.id.in_(found))).mappings()}
    return [by_id[i] for i in found if i in by_id]


def _attempts_of(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> list[list[AttemptRecord]]:
    """The ``attempts`` rows of each of ``rows`` (calls), in their order."""
    a = schema.attempts
    by_call: dict[str, list[AttemptRecord]] = {}
    ids = [r["id"] for r in rows]
    if ids:
        attempts = sa.select(a).where(a.c.call_id.in_(ids)).order_by(a.c.call_id, a.c.idx)
        for r in conn.execute(attempts).mappings():
            by_call.setdefault(r["call_id"], []).append(AttemptRecord(
                r["target"], r["provider"], bool(r["ok"]), r["error_type"], r["error_message"],
                r["http_status"], r["latency_ms"]))
    return [by_call.get(i, []) for i in ids]


def _call_rows(call: CallRecord) -> list[tuple[sa.Table, tuple[Any, ...]]]:
    """The ``calls`` row and its ``attempts`` rows as value tuples (built on the writer thread).

    A call's only attempt, when it succeeded on the call's own target and provider with nothing
    else to say, is its latency in the call row (``attempt_ms``) instead of an ``attempts`` row:
    that is nearly every call, and the second insertion was a fifth of what recording one cost
    the writer. :func:`call_record` gives it back as the same :class:`AttemptRecord`."""
    values = list(_record_values(call))
    values[_METADATA_AT] = _json(call.metadata)
    attempts = call.attempts
    if len(attempts) == 1 and _inline(call, attempts[0]):
        values.append(attempts[0].latency_ms)
        return [(schema.calls, tuple(values))]
    values.append(None)
    rows: list[tuple[sa.Table, tuple[Any, ...]]] = [(schema.calls, tuple(values))]
    for i, a in enumerate(attempts):
        rows.append((schema.attempts, (call.id, i, a.target, a.provider, a.ok, a.error_type, a.error_message,
                                       a.http_status, a.latency_ms)))
    return rows


def _inline(call: CallRecord, a: AttemptRecord) -> bool:
    """Whether ``a`` says nothing the call row with its latency does not (see :func:`_call_rows`)."""
    return (a.ok and a.latency_ms is not None and a.target == call.target and a.provider == call.provider
            and a.error_type is None and a.error_message is None and a.http_status is None)


def call_record(row: Mapping[Any, Any], attempts: list[AttemptRecord]) -> CallRecord:
    """A ``calls`` row (a mapping of every column) and its ``attempts`` rows as a record; an
    attempt stored inline (``attempt_ms``) comes back as the one it was."""
    data = dict(row)
    inline = data.pop("attempt_ms", None)
    if inline is not None and not attempts:
        attempts = [AttemptRecord(data["target"], data["provider"], True, latency_ms=inline)]
    data["metadata"] = dict(data.get("metadata") or {})
    return CallRecord(**data, attempts=attempts)


def _json(value: Mapping[str, Any] | None) -> str:
    """A JSON column's text, as SQLAlchemy's JSON type would have written it."""
    return json.dumps(value) if value else "{}"


def _day(dialect: str, column: Any) -> Any:
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", sa.func.to_timestamp(column)), "YYYY-MM-DD")
    return sa.func.date(column, "unixepoch")


def unknown_cost(c: Any) -> Any:
    """Whether a call without a cost was billed all the same, for an unknown amount: answered,
    charged by its budgets, or cut off (cancelled, interrupted) after output had started."""
    cut_after_output = sa.and_(c.status.in_(("cancelled", "interrupted")), c.ttft_ms.is_not(None))
    return sa.or_(c.status == "ok", c.charged.is_not(None), cut_after_output)
