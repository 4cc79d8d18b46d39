"""0013: day rollups for the calls a store recorded before it had them, and the rollup table's
primary key in the order its views read.

Migration 0004 was edited after it shipped. Its first version (6530631) kept minute and hour
rollups only, keyed (grain, bucket, dim, value); a store migrated by it has 0004 recorded as
done, so the 30- and 90-day views, which read day rows, missed every call it recorded before
the day grain existed, and its key made a view read every dimension of a time range rather
than only its own (later versions key (grain, dim, bucket, value)).

Day rows are rebuilt from the hour rows, not from ``calls``: the rollups are what the writer
folded each call into when it was recorded (``rollups.py``), and they outlive the calls (a
model's ``data_retention_days`` deletes calls, never rollups). A day is rebuilt only where its
hour rows count more requests than its day row — none, or only the calls recorded after the
upgrade; a day whose early hours were already pruned (after 40 days) keeps its day rows. On a
store made since, no day qualifies and the key is right: two small reads.

As every migration, this one spells out its table rather than importing ``schema.py``.
"""

from __future__ import annotations

import sqlalchemy as sa

_HOUR, _DAY = 3600, 86400
_KEY = ("grain", "dim", "bucket", "value")
_HIST = [f"lat_{i:02d}" for i in range(20)]
_SUMS = ["requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "cost", "latency_sum_ms",
         "latency_count", "ttft_sum_ms", "ttft_count", *_HIST]


def upgrade(conn: sa.Connection) -> None:
    if sa.inspect(conn).get_pk_constraint("call_rollups")["constrained_columns"] != list(_KEY):
        _rekey(conn)
    _rebuild_short_days(conn)


def _table(name: str) -> sa.Table:
    """``call_rollups`` as 0004 makes it now (under ``name``: SQLite rebuilds the table to rekey it)."""
    return sa.Table(
        name, sa.MetaData(),
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


def _rekey(conn: sa.Connection) -> None:
    """The primary key in (grain, dim, bucket, value) order. PostgreSQL swaps the constraint;
    SQLite cannot alter a primary key, so the table is copied into one made with it."""
    if conn.dialect.name == "postgresql":
        name = sa.inspect(conn).get_pk_constraint("call_rollups")["name"]
        conn.execute(sa.text(f'ALTER TABLE call_rollups DROP CONSTRAINT "{name}"'))
        conn.execute(sa.text(f"ALTER TABLE call_rollups ADD PRIMARY KEY ({', '.join(_KEY)})"))
        return
    rekeyed = _table("call_rollups_0013")
    rekeyed.create(conn)
    columns = ", ".join(column.name for column in rekeyed.columns)
    conn.execute(sa.text(f"INSERT INTO call_rollups_0013 ({columns}) SELECT {columns} FROM call_rollups"))
    conn.execute(sa.text("DROP TABLE call_rollups"))
    conn.execute(sa.text("ALTER TABLE call_rollups_0013 RENAME TO call_rollups"))


def _rebuild_short_days(conn: sa.Connection) -> None:
    """Each day whose hour rows count more requests than its day row gets its day rows anew,
    summed from its hour rows, dimension by dimension."""
    rollups = _table("call_rollups")
    r = rollups.c
    day = (r.bucket - r.bucket % _DAY).label("day")
    hours = conn.execute(sa.select(day, sa.func.sum(r.requests)).where(r.grain == _HOUR, r.dim == "total")
                         .group_by(day)).all()
    days = {bucket: requests for bucket, requests in
            conn.execute(sa.select(r.bucket, r.requests).where(r.grain == _DAY, r.dim == "total"))}
    short = sorted(int(start) for start, requests in hours if requests > days.get(start, 0))
    for start in short:
        summed = conn.execute(sa.select(r.dim, r.value, *(sa.func.sum(r[name]).label(name) for name in _SUMS))
                              .where(r.grain == _HOUR, r.bucket >= start, r.bucket < start + _DAY)
                              .group_by(r.dim, r.value)).mappings().all()
        conn.execute(rollups.delete().where(r.grain == _DAY, r.bucket == start))
        conn.execute(rollups.insert(), [{**row, "grain": _DAY, "bucket": start} for row in summed])
