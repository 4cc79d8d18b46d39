"""0004: what the dashboard needs — call rollups, dashboard sessions, composite call indexes.

Calls already in the store are folded into the hourly and daily rollups (and the last two
days into the minute rollups) here, so charts are complete from the start. The folding is spelled out
in this file rather than imported from ``rollups.py``, so this migration keeps meaning what it
meant if the live code changes later.
"""

from __future__ import annotations

import bisect

import sqlalchemy as sa

_BOUNDS = (10, 20, 35, 60, 100, 160, 250, 400, 650, 1000, 1600, 2500, 4000, 6500, 10000, 16000, 25000, 40000,
           65000)
_HIST = [f"lat_{i:02d}" for i in range(20)]
_SUMS = ["requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "cost", "latency_sum_ms",
         "latency_count", "ttft_sum_ms", "ttft_count", *_HIST]
_DIMS = (("route", "requested_model"), ("model", "target"), ("provider", "provider"), ("key", "key_id"),
         ("project", "project"))
_MINUTE_KEEP = 2 * 86400


def upgrade(conn: sa.Connection) -> None:
    md = sa.MetaData()
    calls = sa.Table("calls", md, autoload_with=conn)
    for name, column in (("status", "status"), ("route", "requested_model"), ("target", "target"),
                         ("key", "key_id"), ("project", "project")):
        sa.Index(f"ix_calls_{name}_created", calls.c[column], calls.c.created_at).create(conn)
    rollups = sa.Table(
        "call_rollups", md,
        sa.Column("grain", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("dim", sa.String(16), primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("value", sa.String(255), primary_key=True),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("latency_sum_ms", sa.Float, nullable=False),
        sa.Column("latency_count", sa.Integer, nullable=False),
        sa.Column("ttft_sum_ms", sa.Float, nullable=False),
        sa.Column("ttft_count", sa.Integer, nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False) for name in _HIST))
    sa.Table("ui_sessions", md,
             sa.Column("id", sa.String(64), primary_key=True),
             sa.Column("kind", sa.String(16), nullable=False),
             sa.Column("key_id", sa.String(64)),
             sa.Column("principal", sa.String(64), nullable=False),
             sa.Column("csrf", sa.String(64), nullable=False),
             sa.Column("created_at", sa.Float, nullable=False),
             sa.Column("expires_at", sa.Float, nullable=False, index=True))
    md.create_all(conn, tables=[md.tables["call_rollups"], md.tables["ui_sessions"]])
    _backfill(conn, calls, rollups)


def _backfill(conn: sa.Connection, calls: sa.Table, rollups: sa.Table) -> None:
    c = calls.c
    newest = conn.execute(sa.select(sa.func.max(c.created_at))).scalar()
    if newest is None:
        return
    sums: dict[tuple[int, int, str, str], list[float]] = {}
    query = sa.select(c.created_at, c.status, c.requested_model, c.target, c.provider, c.key_id, c.project,
                      c.input_tokens, c.output_tokens, c.cached_tokens, c.cost, c.latency_ms, c.ttft_ms
                      ).execution_options(yield_per=10_000)   # streamed: the table may be large
    for r in conn.execute(query):
        delta = [1, 0 if r.status == "ok" else 1, r.input_tokens or 0, r.output_tokens or 0, r.cached_tokens or 0,
                 r.cost or 0.0, r.latency_ms or 0.0, 0 if r.latency_ms is None else 1, r.ttft_ms or 0.0,
                 0 if r.ttft_ms is None else 1] + [0] * len(_HIST)
        if r.latency_ms is not None:
            delta[10 + bisect.bisect_left(_BOUNDS, r.latency_ms)] = 1
        values = [("total", "")] + [(dim, getattr(r, col) or "") for dim, col in _DIMS]
        grains = (60, 3600, 86400) if r.created_at >= newest - _MINUTE_KEEP else (3600, 86400)
        for grain in grains:
            bucket = int(r.created_at // grain) * grain
            for dim, value in values:
                acc = sums.setdefault((grain, bucket, dim, str(value)), [0] * len(_SUMS))
                for i, d in enumerate(delta):
                    acc[i] += d
    rows = [{"grain": k[0], "bucket": k[1], "dim": k[2], "value": k[3], **dict(zip(_SUMS, v))}
            for k, v in sums.items()]
    for start in range(0, len(rows), 5000):
        conn.execute(rollups.insert(), rows[start:start + 5000])
