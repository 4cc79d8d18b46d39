"""Per-minute, per-hour and per-day rollups of the call log, kept by the batch writer, read by the dashboard.

Why: a dashboard that sums the ``calls`` table for "spend over 30 days by key" reads every row
(LiteLLM's UI is known for taking its database down that way). Instead, every batch the writer
commits also folds its calls into ``call_rollups`` in the same transaction: one row per
(grain, bucket start, dimension, value) holding counts, tokens, cost and a latency histogram.
Each view reads the coarsest grain that draws it — the last hour minute rows, the last day
hour rows, 30 days day rows — so a series is at most 60 rows and a breakdown by one
dimension at most (values × 60), whatever the call volume.

Dimensions are rolled up one at a time (``total``, ``route``, ``model`` — the target that
answered —, ``provider``, ``key``, ``project``), not as one combined key: with many keys and
models the combinations would be nearly as many as the calls themselves. So each call adds to
six rows per grain (eighteen in all, folded per batch: a batch of calls from the same
minute touches far fewer), and a breakdown by one dimension reads only that dimension's rows.

Percentiles come from the histogram (fixed bucket bounds, ``LATENCY_BOUNDS_MS``), linearly
interpolated inside the bucket: p50/p95 are accurate to within one bucket (about ±25%), which
is what a chart needs; the exact latencies stay in ``calls``.

Minute rows are kept two days (they only feed the last-hour view), hour rows 40 days (the
last-24-hours views), day rows 800 days. Rollups hold no content, so they are not subject to a
model's ``data_retention_days``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from . import schema

MINUTE = 60
HOUR = 3600
DAY = 86400
GRAINS = (MINUTE, HOUR, DAY)
DIMENSIONS = ("total", "route", "model", "provider", "key", "project")
#: Upper bounds (ms) of the latency histogram's buckets; the last bucket is open-ended.
LATENCY_BOUNDS_MS = (10, 20, 35, 60, 100, 160, 250, 400, 650, 1000, 1600, 2500, 4000, 6500, 10000,
                     16000, 25000, 40000, 65000)
HISTOGRAM = tuple(f"lat_{i:02d}" for i in range(len(LATENCY_BOUNDS_MS) + 1))
SUMS = ("requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "cost",
        "latency_sum_ms", "latency_count", "ttft_sum_ms", "ttft_count", *HISTOGRAM)
KEY = ("grain", "bucket", "dim", "value")   # the conflict target (the primary key's columns)
MINUTE_RETENTION_SECONDS = 2 * 86400
HOUR_RETENTION_SECONDS = 40 * 86400
DAY_RETENTION_SECONDS = 800 * 86400

# positions in a ``calls`` value tuple (the writer's rows are in the table's column order)
_COL = {c.name: i for i, c in enumerate(schema.calls.columns)}
_CREATED, _STATUS = _COL["created_at"], _COL["status"]
_DIM_COLUMNS = (("route", _COL["requested_model"]), ("model", _COL["target"]), ("provider", _COL["provider"]),
                ("key", _COL["key_id"]), ("project", _COL["project"]))
assert DIMENSIONS[1:] == tuple(dim for dim, _ in _DIM_COLUMNS)
_IN, _OUT, _CACHED = _COL["input_tokens"], _COL["output_tokens"], _COL["cached_tokens"]
_COST, _LAT, _TTFT = _COL["cost"], _COL["latency_ms"], _COL["ttft_ms"]
_CHARGED = _COL["charged"]   # set only where cost is unknown: the spend is cost + charged, as the ledger's
_WIDTH = len(SUMS)
_HIST0 = SUMS.index("lat_00")


def aggregate(rows: Iterable[Sequence[Any]]) -> dict[tuple[int, int, str, str], list[float]]:
    """Fold ``calls`` value tuples into rollup sums keyed by (grain, bucket, dim, value).

    Runs on the writer thread for every batch, so in two steps that keep it cheap: calls are
    first summed per (minute, route, model, provider, key, project) — a batch's calls mostly
    share these, and each call touches only the sums it changes — and only those few combined
    sums are then spread over the eighteen (grain, dimension) rows."""
    combos: dict[tuple[Any, ...], list[float]] = {}
    for row in rows:
        combo = (int(float(row[_CREATED]) // MINUTE) * MINUTE, *(row[i] or "" for _, i in _DIM_COLUMNS))
        sums = combos.get(combo)
        if sums is None:
            sums = combos[combo] = [0.0] * _WIDTH
        sums[0] += 1
        if row[_STATUS] != "ok":
            sums[1] += 1
        for index, column in ((2, _IN), (3, _OUT), (4, _CACHED), (5, _COST), (5, _CHARGED)):
            if row[column]:
                sums[index] += row[column]
        latency = row[_LAT]
        if latency is not None:
            sums[6] += latency
            sums[7] += 1
            sums[_HIST0 + bisect.bisect_left(LATENCY_BOUNDS_MS, latency)] += 1
        ttft = row[_TTFT]
        if ttft is not None:
            sums[8] += ttft
            sums[9] += 1
    out: dict[tuple[int, int, str, str], list[float]] = {}
    for (minute, *values), sums in combos.items():
        changed = [(i, v) for i, v in enumerate(sums) if v]
        for grain in GRAINS:
            bucket = minute // grain * grain
            for dim, value in zip(DIMENSIONS, ("", *values)):
                key = (grain, bucket, dim, str(value))
                acc = out.get(key)
                if acc is None:
                    out[key] = sums.copy()
                else:
                    for i, v in changed:
                        acc[i] += v
    return out


def upsert_sql(dialect: sa.Dialect) -> str:
    """``INSERT ... ON CONFLICT DO UPDATE`` adding to the sums (SQLite 3.24+ and PostgreSQL
    share the syntax), in the driver's own parameter style, rendered once per writer."""
    quote = dialect.identifier_preparer.quote
    table = quote(schema.call_rollups.name)
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    names = [*KEY, *SUMS]
    updates = ", ".join(f"{quote(n)} = {table}.{quote(n)} + excluded.{quote(n)}" for n in SUMS)
    return (f"INSERT INTO {table} ({', '.join(quote(n) for n in names)}) "
            f"VALUES ({', '.join(mark for _ in names)}) "
            f"ON CONFLICT ({', '.join(quote(n) for n in KEY)}) DO UPDATE SET {updates}")


class RollupUpdater:
    """The writer's hook for ``calls`` inserts: adds the batch to the rollups in its transaction."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self._sql = upsert_sql(dialect)
        self._integer = {i for i, n in enumerate(SUMS) if n not in ("cost", "latency_sum_ms", "ttft_sum_ms")}

    def __call__(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
        sums = aggregate(rows)
        if not sums:
            return
        params = []
        for key in sorted(sums):   # a fixed order: concurrent writers lock rows in the same order
            values = sums[key]
            params.append((*key, *(int(v) if i in self._integer else float(v) for i, v in enumerate(values))))
        conn.exec_driver_sql(self._sql, params)


def prune(conn: sa.Connection, now: float) -> None:
    """Drop rows past their grain's retention (minutes: 2 days, hours: 40, days: 800).

    One dimension at a time, so each delete is a range of the primary key (grain, dim,
    bucket, ...) holding only the old rows: ``grain = ? AND bucket < ?`` alone read every row
    of the grain, hundreds of thousands with many keys, hourly, under SQLite's write lock."""
    r = schema.call_rollups.c
    for grain, keep in ((MINUTE, MINUTE_RETENTION_SECONDS), (HOUR, HOUR_RETENTION_SECONDS),
                        (DAY, DAY_RETENTION_SECONDS)):
        for dim in DIMENSIONS:
            conn.execute(schema.call_rollups.delete().where(r.grain == grain, r.dim == dim,
                                                            r.bucket < int(now - keep)))


def percentile(histogram: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a latency histogram, interpolated inside its bucket."""
    total = sum(histogram)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    for i, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = LATENCY_BOUNDS_MS[i - 1] if i > 0 else 0.0
            high = LATENCY_BOUNDS_MS[i] if i < len(LATENCY_BOUNDS_MS) else LATENCY_BOUNDS_MS[-1] * 1.6
            return float(low + (high - low) * ((rank - seen) / count))
        seen += count
    return float(LATENCY_BOUNDS_MS[-1])
