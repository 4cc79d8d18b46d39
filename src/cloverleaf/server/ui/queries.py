"""The dashboard's reads: bounded queries only, so every page stays fast on a big store.

- Charts, totals, breakdowns and spend read ``call_rollups`` (see
  ``gateway/store/rollups.py``): at most a few thousand rows per query however many calls
  there are; the ``(grain, bucket, dim, value)`` primary key serves the range scans. Their
  periods are exact ("the last 24 hours" starts 24 hours ago, as the admin API's and the CLI's
  do): :mod:`.exact_period` reads the calls of the leading partial bucket.
- The traces list pages through ``calls`` newest first with a keyset cursor (never OFFSET,
  never COUNT(*)), each filter served by its ``(column, created_at)`` index from migration 0004;
  the ``model`` filter reads one range of the target index per name of the model
  (``keyset.newest_of``), found by a skip along that index (``CallLog.call_targets``).
- A call's detail and a trace's calls are primary-key and ``trace_id`` index lookups.

Every function here is synchronous and runs on a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ...gateway.store import schema
from ...gateway.store.calls import call_record
from ...gateway.store.keyset import MAX_RANGES, cursor_of, newest_of, parse_cursor, past
from ...gateway.store.records import AttemptRecord, CallRecord
from ...gateway.store.rollups import DAY, DIMENSIONS, HISTOGRAM, HOUR, MINUTE, percentile
from .exact_period import period_rows, summed


@dataclass(frozen=True, slots=True)
class Window:
    """The last ``points`` × ``step`` seconds, drawn in steps of ``step`` seconds read from
    rollups of ``grain`` (the same: a step is one rollup bucket)."""

    name: str
    label: str
    grain: int
    step: int
    points: int

    def since(self, now: float) -> float:
        """Where the window starts: exactly ``points`` steps before ``now`` (the admin API's and
        the CLI's "the last N"), not at a step boundary."""
        return now - self.step * self.points

    def steps(self, now: float) -> range:
        """The steps drawn, oldest first: from the one the window starts in (partly inside it)
        to the one ``now`` is in."""
        return range(int(self.since(now)) // self.step * self.step, (int(now) // self.step + 1) * self.step,
                     self.step)


WINDOWS = {
    "hour": Window("hour", "Last hour", MINUTE, MINUTE, 60),
    "day": Window("day", "Last 24 hours", HOUR, HOUR, 24),
    "month": Window("month", "Last 30 days", DAY, DAY, 30),
}


@dataclass(slots=True)
class Stats:
    """Sums over some rollup rows, and what follows from them."""

    label: str = ""
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latency_sum: float = 0.0
    latency_count: int = 0
    ttft_sum: float = 0.0
    ttft_count: int = 0
    histogram: list[float] = field(default_factory=lambda: [0.0] * len(HISTOGRAM))

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def p50(self) -> float | None:
        return percentile(self.histogram, 0.50)

    @property
    def p95(self) -> float | None:
        return percentile(self.histogram, 0.95)

    @property
    def avg_ttft(self) -> float | None:
        return self.ttft_sum / self.ttft_count if self.ttft_count else None


def _stats(row: Any, label: str = "") -> Stats:
    return Stats(label, int(row.requests), int(row.errors), int(row.input_tokens), int(row.output_tokens),
                 float(row.cost), float(row.latency_sum_ms), int(row.latency_count), float(row.ttft_sum_ms),
                 int(row.ttft_count), [float(getattr(row, h)) for h in HISTOGRAM])


def combine(parts: Any) -> Stats:
    """The sum of several :class:`Stats` (a window's total is the sum of its steps)."""
    out = Stats()
    for p in parts:
        out.requests += p.requests
        out.errors += p.errors
        out.input_tokens += p.input_tokens
        out.output_tokens += p.output_tokens
        out.cost += p.cost
        out.latency_sum += p.latency_sum
        out.latency_count += p.latency_count
        out.ttft_sum += p.ttft_sum
        out.ttft_count += p.ttft_count
        out.histogram = [a + b for a, b in zip(out.histogram, p.histogram)]
    return out


def series(engine: sa.Engine, window: Window, now: float) -> list[tuple[int, Stats]]:
    """One :class:`Stats` per step of the window, oldest first (empty steps included); the
    first step holds only the calls from the window's exact start on."""
    rows = period_rows("total", window.since(now), window.grain, now, step=window.step)
    query = sa.select(rows.c.step, *summed(rows)).group_by(rows.c.step)
    with engine.connect() as conn:
        found = {int(r.step): _stats(r) for r in conn.execute(query)}
    return [(t, found.get(t, Stats())) for t in window.steps(now)]


def breakdown(engine: sa.Engine, window: Window, now: float, dim: str, limit: int = 10) -> list[Stats]:
    """The busiest ``limit`` values of one dimension over exactly the window."""
    if dim not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dim!r}")
    rows = period_rows(dim, window.since(now), window.grain, now)
    query = (sa.select(rows.c.value, *summed(rows)).group_by(rows.c.value)
             .order_by(sa.func.sum(rows.c.requests).desc(), rows.c.value).limit(limit))
    with engine.connect() as conn:
        return [_stats(r, r.value) for r in conn.execute(query)]


def _grain(since: float, now: float) -> int:
    """Hour rows for a day or less, else day rows (and finer ones, or calls, at the edge)."""
    return HOUR if now - since <= DAY else DAY


#: rows of each Spend page table (the dearest; the page says so when there may be more)
SPEND_ROWS = 50


def spend_by(engine: sa.Engine, dim: str, since: float, now: float, limit: int = SPEND_ROWS) -> list[Stats]:
    """Cost, calls and tokens per value of ``dim`` from exactly ``since`` on, dearest first —
    what ``/admin/spend?since=`` and ``cloverleaf spend --days`` count."""
    rows = period_rows(dim, since, _grain(since, now), now)
    query = (sa.select(rows.c.value, *summed(rows)).group_by(rows.c.value)
             .order_by(sa.func.sum(rows.c.cost).desc(), rows.c.value).limit(limit))
    with engine.connect() as conn:
        return [_stats(r, r.value) for r in conn.execute(query)]


#: Values per ``IN (...)`` list: well under every driver's limit on bound parameters.
_IN_CHUNK = 500


def cost_of(engine: sa.Engine, dim: str, values: list[str], since: float, now: float) -> dict[str, float]:
    """Cost per value of ``dim`` for exactly ``values`` (those that spent nothing are left out).

    Why not :func:`spend_by`: a page showing some rows asks for those rows, not for the N
    dearest — the Keys page read the 1,000 dearest keys, and showed "$0" for every other key
    that had spent. The same exact period as :func:`spend_by`."""
    out: dict[str, float] = {}
    with engine.connect() as conn:
        for i in range(0, len(values), _IN_CHUNK):
            rows = period_rows(dim, since, _grain(since, now), now, values=values[i:i + _IN_CHUNK])
            query = (sa.select(rows.c.value, sa.func.coalesce(sa.func.sum(rows.c.cost), 0).label("cost"))
                     .group_by(rows.c.value))
            out.update((r.value, float(r.cost)) for r in conn.execute(query))
    return out


# --------------------------------------------------------------------------- traces

#: the list's filters: query parameter → calls column
FILTERS = {"key": "key_id", "route": "requested_model", "model": "target", "status": "status",
           "trace": "trace_id", "project": "project", "provider": "provider"}
#: a filter value meaning "calls without one" (what a breakdown's "(none)" row counted; an
#: empty filter means no filter)
NONE = "(none)"
PAGE_SIZE = 50
_LIST_COLUMNS = ("id", "trace_id", "created_at", "operation", "requested_model", "target", "provider", "status",
                 "error_type", "latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost", "key_id")


@dataclass(slots=True)
class Page:
    rows: list[Any]
    next_cursor: str | None


def list_calls(engine: sa.Engine, filters: dict[str, str], *, since: float | None = None,
               until: float | None = None, cursor: str | None = None, size: int = PAGE_SIZE,
               model_targets: Sequence[str] = ()) -> Page:
    """A page of calls, newest first; ``cursor`` (from the previous page) continues after it.

    The ``model`` filter matches the calls answered by any of ``model_targets`` too — the other
    names of the model it means (``model_budgets.targets_meaning``), as Overview's "By model"
    rows and ``/admin/spend?by=model`` count them — each name read down its own index range
    (``keyset.newest_of``)."""
    c = schema.calls.c
    where = []
    for param, column in FILTERS.items():
        value = filters.get(param)
        if value == NONE:   # as the rollups count them: NULL or empty
            where.append(sa.or_(c[column].is_(None), c[column] == ""))
        elif value and param != "model":
            where.append(c[column] == value)
    if since is not None:
        where.append(c.created_at >= since)
    if until is not None:
        where.append(c.created_at < until)
    after = parse_cursor(cursor)
    if after is not None:
        where.append(past(c.created_at, c.id, after, newest_first=True))
    query = sa.select(*(c[name] for name in _LIST_COLUMNS)).where(*where)
    model = filters.get("model")
    if model and model != NONE:
        names = sorted({model, *model_targets})
        arms = ([query.where(c.target == name) for name in names] if len(names) < MAX_RANGES
                else [query.where(c.target.in_(names))])
    else:
        arms = [query]
    with engine.connect() as conn:
        rows = conn.execute(newest_of(arms, "created_at", "id", size + 1)).all()
    more = len(rows) > size
    rows = rows[:size]
    return Page(list(rows), cursor_of(rows[-1].created_at, rows[-1].id) if more and rows else None)


def get_call(engine: sa.Engine, call_id: str) -> CallRecord | None:
    calls, a = schema.calls, schema.attempts
    with engine.connect() as conn:
        row = conn.execute(sa.select(calls).where(calls.c.id == call_id)).mappings().first()
        if row is None:
            return None
        attempts = [AttemptRecord(r.target, r.provider, bool(r.ok), r.error_type, r.error_message, r.http_status,
                                  r.latency_ms)
                    for r in conn.execute(sa.select(a).where(a.c.call_id == call_id).order_by(a.c.idx))]
    return call_record(row, attempts)


def trace_calls(engine: sa.Engine, trace_id: str, limit: int = 200) -> list[Any]:
    c = schema.calls.c
    query = (sa.select(*(c[name] for name in _LIST_COLUMNS)).where(c.trace_id == trace_id)
             .order_by(c.created_at, c.id).limit(limit))
    with engine.connect() as conn:
        return list(conn.execute(query).all())


def trace_row(engine: sa.Engine, trace_id: str) -> Any:
    t = schema.traces
    with engine.connect() as conn:
        return conn.execute(sa.select(t).where(t.c.id == trace_id)).first()


def store_status(engine: sa.Engine) -> dict[str, Any]:
    """Reachability and round-trip time of the store (``SELECT 1``)."""
    import time

    t0 = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return {"ok": True, "ms": (time.perf_counter() - t0) * 1000.0}
