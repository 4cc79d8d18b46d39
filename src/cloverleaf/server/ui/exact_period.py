"""Sums over exactly "the last N": from ``now - N`` on, as the admin API and the CLI count.

Why: rollup rows are whole grain-aligned buckets (a UTC minute, hour or day), and the pages
used to round their period to buckets — the Overview's "Last 24 hours" was the current hour
and the 23 before it, the Spend page's started at the top of the hour 24 hours ago, and
``/admin/spend?since=now-86400`` (like ``cloverleaf spend --days 1``) from exactly then: three
answers to one question. Here a period ``[since, …)`` is cut into pieces that add up to it
exactly, each as cheap as it can be:

- the calls themselves from ``since`` to the next boundary of the finest rollup grain still
  kept for that time (at most a minute of calls within two days, an hour within forty, else a
  day), read through the ``created_at`` index;
- then rollup rows of growing grain, each up to the next boundary of the coarser one
  (minutes to the hour, hours to the day);
- then rows of the view's own grain to the end.

All pieces are one ``UNION ALL`` under one ``GROUP BY``, so a breakdown's "top N" is still
chosen by the database, and the rows read stay bounded by the rollups' size plus at most one
bucket of calls at the leading edge. A call's contribution from its row is exactly what the
writer folds into the rollups (``gateway/store/rollups.py``: cost plus what was charged when
the cost is unknown; a NULL dimension is ``''``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ...gateway.store import schema
from ...gateway.store.rollups import (
    DAY,
    DAY_RETENTION_SECONDS,
    GRAINS,
    HISTOGRAM,
    HOUR,
    HOUR_RETENTION_SECONDS,
    LATENCY_BOUNDS_MS,
    MINUTE,
    MINUTE_RETENTION_SECONDS,
)

_RETENTION = {MINUTE: MINUTE_RETENTION_SECONDS, HOUR: HOUR_RETENTION_SECONDS, DAY: DAY_RETENTION_SECONDS}
#: the calls column behind each rollup dimension ("total" has none)
DIMENSION_COLUMNS = {"route": "requested_model", "model": "target", "provider": "provider", "key": "key_id",
                     "project": "project"}
SUMMED = ("requests", "errors", "input_tokens", "output_tokens", "cost", "latency_sum_ms", "latency_count",
          "ttft_sum_ms", "ttft_count", *HISTOGRAM)


@dataclass(frozen=True, slots=True)
class Piece:
    """``[start, end)`` read from rollup rows of ``grain``, or from the calls when ``grain`` is None."""

    grain: int | None
    start: float
    end: float | None   # None: to the end of the period


def _ceil(at: float, grain: int) -> float:
    floor = at // grain * grain
    return floor if floor == at else floor + grain


def pieces(since: float, grain: int, now: float) -> list[Piece]:
    """``[since, …)`` as calls, then rollup rows of growing grain ending with ``grain``: the
    finer grains only while their rows are still kept for that time (retention)."""
    usable = [g for g in GRAINS if g < grain and since >= now - _RETENTION[g] + g] + [grain]
    out: list[Piece] = []
    at = since
    edge = _ceil(at, usable[0])
    if edge > at:
        out.append(Piece(None, at, edge))
    at = edge
    for finer, coarser in zip(usable, usable[1:]):
        end = _ceil(at, coarser)
        if end > at:
            out.append(Piece(finer, at, end))
        at = end
    out.append(Piece(grain, at, None))
    return out


def _rollup_arm(piece: Piece, dim: str, step: Any, values: list[str] | None) -> Any:
    r = schema.call_rollups.c
    where = [r.grain == piece.grain, r.dim == dim, r.bucket >= int(piece.start)]
    if piece.end is not None:
        where.append(r.bucket < int(piece.end))
    if values is not None:
        where.append(r.value.in_(values))
    columns = [r.value.label("value")] + ([] if step is None else [step.label("step")])
    return sa.select(*columns, *(r[name].label(name) for name in SUMMED)).where(*where)


def _raw_arm(piece: Piece, dim: str, step: Any, values: list[str] | None) -> Any:
    c = schema.calls.c
    one, zero = sa.literal(1, sa.Integer), sa.literal(0, sa.Integer)
    column = DIMENSION_COLUMNS.get(dim)
    value = sa.func.coalesce(c[column], "") if column else sa.literal("", sa.String)
    latency, ttft = c.latency_ms, c.ttft_ms
    bounds = (0.0, *LATENCY_BOUNDS_MS)
    histogram = []
    for i, name in enumerate(HISTOGRAM):
        if i == 0:
            hit = latency <= LATENCY_BOUNDS_MS[0]
        elif i < len(LATENCY_BOUNDS_MS):
            hit = sa.and_(latency > bounds[i], latency <= LATENCY_BOUNDS_MS[i])
        else:
            hit = latency > LATENCY_BOUNDS_MS[-1]
        histogram.append(sa.case((hit, one), else_=zero).label(name))
    sums = [one.label("requests"), sa.case((c.status != "ok", one), else_=zero).label("errors"),
            sa.func.coalesce(c.input_tokens, 0).label("input_tokens"),
            sa.func.coalesce(c.output_tokens, 0).label("output_tokens"),
            (sa.func.coalesce(c.cost, 0.0) + sa.func.coalesce(c.charged, 0.0)).label("cost"),
            sa.func.coalesce(latency, 0.0).label("latency_sum_ms"),
            sa.case((latency.isnot(None), one), else_=zero).label("latency_count"),
            sa.func.coalesce(ttft, 0.0).label("ttft_sum_ms"),
            sa.case((ttft.isnot(None), one), else_=zero).label("ttft_count"), *histogram]
    where = [c.created_at >= piece.start]
    if piece.end is not None:
        where.append(c.created_at < piece.end)
    if values is not None and column:
        where.append(c[column].in_(values))
    columns = [value.label("value")] + ([] if step is None else [step.label("step")])
    return sa.select(*columns, *sums).where(*where)


def period_rows(dim: str, since: float, grain: int, now: float, *, step: int | None = None,
                values: list[str] | None = None) -> Any:
    """A subquery of per-piece rows (``value``, ``step`` when asked, and :data:`SUMMED`) that
    together cover exactly ``[since, …)``; group and sum them to answer. ``step`` (= ``grain``)
    names the bucket each row belongs to: the leading pieces all fall in ``since``'s bucket."""
    first = None if step is None else sa.literal(int(since // step * step), sa.BigInteger)
    arms = []
    for piece in pieces(since, grain, now):
        if piece.grain is None:
            arms.append(_raw_arm(piece, dim, first, values))
        else:
            own = None if step is None else (schema.call_rollups.c.bucket if piece.grain == step else first)
            arms.append(_rollup_arm(piece, dim, own, values))
    return sa.union_all(*arms).subquery("period")


def summed(rows: Any) -> list[Any]:
    """``SUM`` of every summed column of :func:`period_rows` (0 when there are none)."""
    return [sa.func.coalesce(sa.func.sum(rows.c[name]), 0).label(name) for name in SUMMED]
