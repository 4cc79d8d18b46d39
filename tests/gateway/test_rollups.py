"""Call rollups: kept by the batch writer in the calls' own transaction, backfilled by migration
0004, pruned by retention; percentiles from the latency histogram."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cloverleaf.gateway.store import CallRecord, Store, migrations, open_store, schema
from cloverleaf.gateway.store.rollups import DAY, HISTOGRAM, HOUR, MINUTE, percentile

from .stores import STORE_KINDS, store_url

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with store_url(request.param, tmp_path) as url:
        s = open_store(url, flush_ms=20, wall=lambda: NOW)
        yield s
        s.close()


def _call(i: int, *, at: float = NOW, status: str = "ok", key: str | None = "key_a", latency: float = 100.0,
          cost: float | None = 0.5, target: str = "fake/echo") -> CallRecord:
    return CallRecord(id=f"call_{i:06d}", created_at=at, operation="chat", requested_model="smart", status=status,
                      target=target, provider="fake", latency_ms=latency, ttft_ms=latency / 2, input_tokens=10,
                      output_tokens=5, cost=cost, key_id=key, project="acme")


def _rows(store: Store, grain: int, dim: str) -> dict[tuple[int, str], sa.Row]:
    r = schema.call_rollups.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(schema.call_rollups).where(r.grain == grain, r.dim == dim)).all()
    return {(row.bucket, row.value): row for row in rows}


def test_writer_keeps_minute_and_hour_rollups_per_dimension(store: Store) -> None:
    for i in range(10):
        store.record_call(_call(i, at=NOW + i, status="ok" if i % 5 else "error", key="key_a" if i < 6 else None))
    store.record_call(_call(99, at=NOW + 3600, latency=5000.0, cost=None))
    store.flush()
    minute = int(NOW // MINUTE) * MINUTE
    hour = int(NOW // HOUR) * HOUR
    [total_hour] = [row for (bucket, _), row in _rows(store, HOUR, "total").items() if bucket == hour]
    assert (total_hour.requests, total_hour.errors) == (10, 2)
    assert (total_hour.input_tokens, total_hour.output_tokens) == (100, 50)
    assert total_hour.cost == pytest.approx(5.0)
    assert total_hour.latency_count == 10 and total_hour.latency_sum_ms == pytest.approx(1000.0)
    assert total_hour.ttft_count == 10 and total_hour.ttft_sum_ms == pytest.approx(500.0)
    assert sum(getattr(total_hour, h) for h in HISTOGRAM) == 10
    keys = _rows(store, MINUTE, "key")
    assert keys[(minute, "key_a")].requests == 6 and keys[(minute, "")].requests == 4
    assert _rows(store, HOUR, "project")[(hour, "acme")].requests == 10
    assert _rows(store, HOUR, "route")[(hour, "smart")].requests == 10
    later = _rows(store, HOUR, "model")[(hour + HOUR, "fake/echo")]
    assert later.requests == 1 and later.cost == 0.0


def test_rollups_add_up_across_batches(store: Store) -> None:
    for batch in range(3):
        for i in range(4):
            store.record_call(_call(batch * 10 + i))
        store.flush()
    [row] = _rows(store, HOUR, "total").values()
    assert row.requests == 12


def test_a_refused_record_leaves_the_rollups_as_the_calls(store: Store) -> None:
    store.record_call(_call(1))
    store.flush()
    store.record_call(_call(1))   # the same id again: the database refuses it, and its rollup with it
    store.record_call(_call(2))
    store.flush()
    [row] = _rows(store, HOUR, "total").values()
    assert row.requests == 2


def test_prune_drops_old_minute_rows_first(store: Store) -> None:
    store.record_call(_call(1, at=NOW - 3 * 86400))
    store.record_call(_call(2))
    store.flush()
    store.cleanup(NOW, None)
    assert {b for b, _ in _rows(store, MINUTE, "total")} == {int(NOW // MINUTE) * MINUTE}
    assert len(_rows(store, HOUR, "total")) == 2 and len(_rows(store, DAY, "total")) == 2


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_migration_0004_backfills_existing_calls(kind: str, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        from cloverleaf.gateway.store import create_engine

        engine = create_engine(url)
        first = dict(migrations.available())[1]
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at FLOAT NOT NULL)"))
            first.upgrade(conn)
            conn.execute(sa.text("INSERT INTO schema_version VALUES (1, 0)"))
            calls = sa.Table("calls", sa.MetaData(), autoload_with=conn)
            conn.execute(calls.insert(), [
                {**_call(i, at=NOW - i * 3600).row(), "metadata": {}} for i in range(5)])
        engine.dispose()
        store = open_store(url, wall=lambda: NOW)
        try:
            hours = _rows(store, HOUR, "total")
            assert len(hours) == 5 and all(row.requests == 1 for row in hours.values())
            assert sum(row.requests for row in _rows(store, MINUTE, "total").values()) == 5
            assert store.schema_version >= 4
        finally:
            store.close()


def test_percentile_interpolates_inside_the_bucket() -> None:
    hist = [0] * len(HISTOGRAM)
    hist[4] = 100   # every call between 60 and 100 ms
    assert percentile(hist, 0.5) == pytest.approx(80.0)
    assert percentile(hist, 0.95) == pytest.approx(98.0)
    assert percentile([0] * len(HISTOGRAM), 0.5) is None


def test_prune_reads_only_the_rows_it_drops(tmp_path: Path) -> None:
    """Each prune delete is a range of the primary key down to the bucket (grain, dim, bucket):
    ``grain = ? AND bucket < ?`` alone read every row of the grain under SQLite's write lock,
    hourly — 470,000 hour rows (2,000 keys) to drop 500, 270 ms of the lock each time."""
    from cloverleaf.gateway.store.rollups import prune

    s = open_store(f"sqlite:///{tmp_path / 'store.db'}", flush_ms=20, wall=lambda: NOW)
    deletes: list[tuple[str, object]] = []

    def capture(conn: object, cursor: object, statement: str, parameters: object, *_: object) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM CALL_ROLLUPS"):
            deletes.append((statement, parameters))

    sa.event.listen(s.engine, "before_cursor_execute", capture)
    try:
        with s.engine.begin() as conn:
            prune(conn, NOW)
    finally:
        sa.event.remove(s.engine, "before_cursor_execute", capture)
    with s.engine.connect() as conn:
        plans = [" ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))
                 for statement, params in deletes]
    s.close()
    assert plans and all("(grain=? AND dim=? AND bucket<?)" in plan for plan in plans), plans
