"""The dashboard's reads: bounded queries only, so every page stays fast on a big store.

- Charts, totals, breakdowns and spend read ``call_rollups`` (see
  ``gateway/store/rollups.py``): at most a few thousand rows per query however many calls
  there are; the ``(grain, bucket, dim, value)`` primary key serves the range scans.
- The traces list pages through ``calls`` newest first with a keyset cursor (never OFFSET,
  never COUNT(*)), each filter served by its ``(column, created_at)`` index from migration 0004.
- A call's detail and a trace's calls are primary-key and ``trace_id`` index lookups.

Every function here is synchronous and runs on a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from ...gateway.store import schema
from ...gateway.store.calls import call_record
from ...gateway.store.records import AttemptRecord, CallRecord
from ...gateway.store.rollups import DAY, DIMENSIONS, HISTOGRAM, HOUR, MINUTE, percentile


@dataclass(frozen=True, slots=True)
class Window:
    """A time range drawn as ``points`` steps of ``step`` seconds, read from rollups of ``grain``."""

    name: str
    label: str
    grain: int
    step: int
    points: int

    def range(self, now: float) -> tuple[int, int]:
        """[start, end) aligned to the step, the last step being the one ``now`` is in."""
        end = (int(now) // self.step + 1) * self.step
        return end - self.step * self.points, end


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


_R = schema.call_rollups.c
_SUMMED = (_R.requests, _R.errors, _R.input_tokens, _R.output_tokens, _R.cost, _R.latency_sum_ms,
           _R.latency_count, _R.ttft_sum_ms, _R.ttft_count, *(_R[h] for h in HISTOGRAM))


def _sums() -> list[Any]:
    return [sa.func.coalesce(sa.func.sum(col), 0).label(col.name) for col in _SUMMED]


def _stats(row: Any, label: str = "") -> Stats:
    return Stats(label, int(row.requests), int(row.errors), int(row.input_tokens), int(row.output_tokens),
                 float(row.cost), float(row.latency_sum_ms), int(row.latency_count), float(row.ttft_sum_ms),
                 int(row.ttft_count), [float(getattr(row, h)) for h in HISTOGRAM])


def _in_range(window: Window, start: int, end: int, dim: str) -> Any:
    return sa.and_(_R.grain == window.grain, _R.dim == dim, _R.bucket >= start, _R.bucket < end)


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
    """One :class:`Stats` per step of the window, oldest first (empty steps included)."""
    start, end = window.range(now)
    step = _R.bucket if window.step == window.grain else (_R.bucket - _R.bucket % window.step)
    query = (sa.select(step.label("step"), *_sums()).where(_in_range(window, start, end, "total"))
             .group_by(step))
    with engine.connect() as conn:
        found = {int(r.step): _stats(r) for r in conn.execute(query)}
    return [(t, found.get(t, Stats())) for t in range(start, end, window.step)]


def breakdown(engine: sa.Engine, window: Window, now: float, dim: str, limit: int = 10) -> list[Stats]:
    """The busiest ``limit`` values of one dimension over the window."""
    if dim not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dim!r}")
    start, end = window.range(now)
    query = (sa.select(_R.value, *_sums()).where(_in_range(window, start, end, dim)).group_by(_R.value)
             .order_by(sa.func.sum(_R.requests).desc(), _R.value).limit(limit))
    with engine.connect() as conn:
        return [_stats(r, r.value) for r in conn.execute(query)]


def spend_by(engine: sa.Engine, dim: str, since: float, until: float, limit: int = 50) -> list[Stats]:
    """Cost, calls and tokens per value of ``dim`` from ``since`` to now, dearest first: hour
    rows for a day or less, else day rows (whole UTC days, today's included)."""
    grain = HOUR if until - since <= DAY else DAY
    start, end = int(since) // grain * grain, (int(until) // grain + 1) * grain
    query = (sa.select(_R.value, *_sums())
             .where(_R.grain == grain, _R.dim == dim, _R.bucket >= start, _R.bucket < end)
             .group_by(_R.value).order_by(sa.func.sum(_R.cost).desc(), _R.value).limit(limit))
    with engine.connect() as conn:
        return [_stats(r, r.value) for r in conn.execute(query)]


#: Values per ``IN (...)`` list: well under every driver's limit on bound parameters.
_IN_CHUNK = 500


def cost_of(engine: sa.Engine, dim: str, values: list[str], since: float, until: float) -> dict[str, float]:
    """Cost per value of ``dim`` for exactly ``values`` (those that spent nothing are left out).

    Why not :func:`spend_by`: a page showing some rows asks for those rows, not for the N
    dearest — the Keys page read the 1,000 dearest keys, and showed "$0" for every other key
    that had spent. Same rollup rows and grains as :func:`spend_by`."""
    grain = HOUR if until - since <= DAY else DAY
    start, end = int(since) // grain * grain, (int(until) // grain + 1) * grain
    out: dict[str, float] = {}
    with engine.connect() as conn:
        for i in range(0, len(values), _IN_CHUNK):
            chunk = values[i:i + _IN_CHUNK]
            query = (sa.select(_R.value, sa.func.coalesce(sa.func.sum(_R.cost), 0).label("cost"))
                     .where(_R.grain == grain, _R.dim == dim, _R.bucket >= start, _R.bucket < end,
                            _R.value.in_(chunk))
                     .group_by(_R.value))
            out.update((r.value, float(r.cost)) for r in conn.execute(query))
    return out


# --------------------------------------------------------------------------- traces

#: the list's filters: query parameter → calls column
FILTERS = {"key": "key_id", "route": "requested_model", "model": "target", "status": "status",
           "trace": "trace_id", "project": "project", "provider": "provider"}
PAGE_SIZE = 50
_LIST_COLUMNS = ("id", "trace_id", "created_at", "operation", "requested_model", "target", "provider", "status",
                 "error_type", "latency_ms", "ttft_ms", "input_tokens", "output_tokens", "cost", "key_id")


@dataclass(slots=True)
class Page:
    rows: list[Any]
    next_cursor: str | None


def list_calls(engine: sa.Engine, filters: dict[str, str], *, since: float | None = None,
               until: float | None = None, cursor: str | None = None, size: int = PAGE_SIZE) -> Page:
    """A page of calls, newest first; ``cursor`` (from the previous page) continues after it."""
    c = schema.calls.c
    query = sa.select(*(c[name] for name in _LIST_COLUMNS))
    for param, column in FILTERS.items():
        value = filters.get(param)
        if value:
            query = query.where(c[column] == value)
    if since is not None:
        query = query.where(c.created_at >= since)
    if until is not None:
        query = query.where(c.created_at < until)
    after = parse_cursor(cursor)
    if after is not None:
        at, call_id = after
        query = query.where(c.created_at <= at, sa.or_(c.created_at < at, c.id < call_id))
    query = query.order_by(c.created_at.desc(), c.id.desc()).limit(size + 1)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    more = len(rows) > size
    rows = rows[:size]
    return Page(list(rows), f"{rows[-1].created_at!r}~{rows[-1].id}" if more and rows else None)


def parse_cursor(cursor: str | None) -> tuple[float, str] | None:
    if not cursor:
        return None
    at, sep, call_id = cursor.partition("~")
    try:
        value = float(at)
    except ValueError:
        return None
    return (value, call_id) if sep and math.isfinite(value) and call_id else None


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
