"""Stores made by older cloverleaf versions, opened by this one, on SQLite and PostgreSQL.

Two migrations were edited after they shipped, so stores migrated by their first versions
lack what the edits added: 0003's ``responses.provider`` (every ``/v1/responses`` request failed
on such a store, forever) and 0004's day rollups and rollup key order (the 30- and 90-day
views missed every call recorded before). Migrations 0012 and 0013 bring such stores up to
date and leave stores made since as they are. Keys made before 0014 (which gave keys a project)
belong to none. A store upgraded by a newer cloverleaf is refused, whichever way it is opened."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cloverleaf.gateway.store import CallRecord, StoreAhead, create_engine, migrations, open_store, schema
from cloverleaf.gateway.store.rollups import DAY, HOUR, SUMS, aggregate

from .old_stores import (
    OLD_ROLLUP_KEY,
    columns,
    drop_responses_provider,
    migrated,
    rekey_rollups_as_first_shipped,
    rollup_key,
    versions,
)
from .stores import STORE_KINDS, store_url

NEWEST = migrations.available()[-1][0]
BEFORE_FIXES = 11   # the newest migration before 0012 (responses.provider) and 0013 (day rollups)
DAY_ROLLUPS = dict(migrations.available())[13]
D1 = 1_699_920_000   # 2023-11-14 00:00 UTC, a day's start
CURRENT_KEY = ["grain", "dim", "bucket", "value"]


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_store_made_before_0003_had_responses_provider_stores_responses_again(kind: str, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        old = migrated(url, BEFORE_FIXES)
        drop_responses_provider(old)      # as 0003 shipped in d329ebd
        old.dispose()
        store = open_store(url)
        try:
            assert "provider" in columns(store.engine, "responses") and store.schema_version == NEWEST
            row = {"id": "resp_1", "owner": "key_a", "created_at": time.time(), "model": "fake/echo",
                   "provider": "fake", "input_items": [], "response": {"id": "resp_1"}}
            with store.engine.begin() as conn:   # what the server writes and reads for /v1/responses
                conn.execute(schema.responses.insert(), row)
                stored = conn.execute(sa.select(schema.responses.c.provider)).scalar_one()
            assert stored == "fake"
        finally:
            store.close()


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_store_that_has_responses_provider_is_left_as_it_is(kind: str, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        migrated(url, BEFORE_FIXES).dispose()   # 0003 as it is now: the column is there already
        store = open_store(url)
        try:
            assert "provider" in columns(store.engine, "responses") and versions(store.engine)[-1] == NEWEST
        finally:
            store.close()


BEFORE_KEY_PROJECTS = 13   # the newest migration before 0014 (virtual_keys.project)


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_keys_made_before_keys_had_projects_have_none_and_can_be_given_one(kind: str, tmp_path: Path) -> None:
    """Migration 0014 adds ``virtual_keys.project``: a key made before it belongs to no project
    (its calls run as none, as before) until an admin gives it one."""
    old_keys = sa.Table("virtual_keys", sa.MetaData(),   # the columns a key had then (0001, 0005)
                        sa.Column("id", sa.String(64)), sa.Column("secret_hash", sa.String(255)),
                        sa.Column("name", sa.String(255)), sa.Column("allowed_models", sa.JSON),
                        sa.Column("spent", sa.Float), sa.Column("created_at", sa.Float),
                        sa.Column("metadata", sa.JSON), sa.Column("privacy", sa.String(16)))
    with store_url(kind, tmp_path) as url:
        old = migrated(url, BEFORE_KEY_PROJECTS)
        with old.begin() as conn:
            conn.execute(old_keys.insert(), {"id": "key_old", "secret_hash": "ab" * 32, "name": "old",
                                             "allowed_models": [], "spent": 0.0, "created_at": 1.0, "metadata": {}})
        old.dispose()
        store = open_store(url)
        try:
            assert "project" in columns(store.engine, "virtual_keys") and store.schema_version == NEWEST
            key = store.get_virtual_key("key_old")
            assert key is not None and key.project is None and key.name == "old"
            assert store.update_virtual_key("key_old", project="acme").project == "acme"   # type: ignore[union-attr]
            assert [k.project for k in store.list_virtual_keys()] == ["acme"]
        finally:
            store.close()


def _call(i: int, at: float, *, key: str, latency: float, cost: float | None) -> CallRecord:
    return CallRecord(id=f"call_{i:04d}", created_at=at, operation="chat", requested_model="smart", status="ok",
                      target="fake/echo", provider="fake", latency_ms=latency, ttft_ms=latency / 3, input_tokens=7,
                      output_tokens=3 + i, cost=cost, charged=None if cost is not None else 0.25, key_id=key,
                      project="acme" if i % 2 else None)


def _values(calls: Sequence[CallRecord]) -> list[tuple[Any, ...]]:
    """Calls as the writer hands them to the rollups: value tuples in the table's column order."""
    return [tuple(call.row().get(column.name) for column in schema.calls.columns) for call in calls]


def _days(engine: sa.Engine) -> dict[tuple[str, int, str], dict[str, float]]:
    r = schema.call_rollups.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(schema.call_rollups).where(r.grain == DAY)).mappings().all()
    return {(row["dim"], row["bucket"], row["value"]): {name: float(row[name]) for name in SUMS} for row in rows}


def _expected_days(calls: Sequence[CallRecord]) -> dict[tuple[str, int, str], dict[str, float]]:
    """The day rows the writer of this version would have kept for ``calls``."""
    return {(dim, bucket, value): dict(zip(SUMS, sums, strict=True))
            for (grain, bucket, dim, value), sums in aggregate(_values(calls)).items() if grain == DAY}


def _rollup_row(key: tuple[int, int, str, str], sums: Sequence[float]) -> dict[str, Any]:
    grain, bucket, dim, value = key
    return {"grain": grain, "bucket": bucket, "dim": dim, "value": value,
            **{name: float(v) if name in ("cost", "latency_sum_ms", "ttft_sum_ms") else int(v)
               for name, v in zip(SUMS, sums, strict=True)}}


def _same(got: dict[tuple[str, int, str], dict[str, float]],
          want: dict[tuple[str, int, str], dict[str, float]]) -> None:
    assert sorted(got) == sorted(want)
    for key, sums in want.items():
        assert got[key] == pytest.approx(sums), key


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_store_made_before_day_rollups_gets_them_and_the_current_rollup_key(kind: str, tmp_path: Path) -> None:
    """Day 1 and 2: calls an old version (6530631) recorded, hour rows only. Day 3: the
    upgrade's day, its day rows counting only the calls after it. Day 4: a day whose early hours
    were pruned, its day row whole: kept."""
    before = [_call(i, D1 + i * 7 * 3600, key=f"key_{i % 3}", latency=40.0 * (i + 1), cost=0.01 * i or None)
              for i in range(7)]                                        # days 1 and 2
    upgrade_day = [_call(10 + i, D1 + 2 * DAY + i * 3600, key="key_0", latency=900.0, cost=0.5) for i in range(4)]
    pruned_day = [_call(20 + i, D1 + 3 * DAY + i * 3600, key="key_1", latency=30.0, cost=0.2) for i in range(3)]
    everything = [*before, *upgrade_day, *pruned_day]
    kept = {key: sums for key, sums in aggregate(_values(everything)).items()   # what the old store held:
            if key[0] != DAY and key[:2] != (HOUR, D1 + 3 * DAY)}               # no day rows; day 4's first hour pruned
    kept |= {key: sums for key, sums in aggregate(_values(upgrade_day[2:])).items() if key[0] == DAY}
    kept |= {key: sums for key, sums in aggregate(_values(pruned_day)).items() if key[0] == DAY}
    with store_url(kind, tmp_path) as url:
        old = migrated(url, BEFORE_FIXES)
        rekey_rollups_as_first_shipped(old)
        assert rollup_key(old) == list(OLD_ROLLUP_KEY)
        with old.begin() as conn:
            conn.execute(schema.calls.insert(), [call.row() for call in everything])
            conn.execute(schema.call_rollups.insert(), [_rollup_row(key, sums) for key, sums in kept.items()])
        old.dispose()

        store = open_store(url)
        try:
            assert rollup_key(store.engine) == CURRENT_KEY and store.schema_version == NEWEST
            _same(_days(store.engine), _expected_days(everything))
            later = _call(99, D1 + 1.5 * DAY, key="key_0", latency=10.0, cost=1.0)
            store.record_call(later)   # the writer's upsert on the rebuilt table
            assert store.flush()
            _same(_days(store.engine), _expected_days([*everything, later]))
            with store.engine.begin() as conn:   # idempotent: run again, nothing changes
                DAY_ROLLUPS.upgrade(conn)
            _same(_days(store.engine), _expected_days([*everything, later]))
        finally:
            store.close()


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_the_day_rollup_migration_leaves_a_current_store_as_it_is(kind: str, tmp_path: Path) -> None:
    calls = [_call(i, D1 + i * 5 * 3600, key="key_a", latency=100.0, cost=0.1) for i in range(9)]
    with store_url(kind, tmp_path) as url:
        store = open_store(url)
        try:
            for call in calls:
                store.record_call(call)
            assert store.flush()
            with store.engine.begin() as conn:   # a day whose early hours were pruned
                r = schema.call_rollups.c
                conn.execute(schema.call_rollups.delete().where(r.grain == HOUR, r.bucket == D1))
            before = _days(store.engine)
            with store.engine.begin() as conn:
                DAY_ROLLUPS.upgrade(conn)
            _same(_days(store.engine), before)
            _same(before, _expected_days(calls))
            assert rollup_key(store.engine) == CURRENT_KEY
        finally:
            store.close()


@pytest.mark.parametrize("kind", STORE_KINDS)
@pytest.mark.parametrize("existing", [False, True], ids=["serve", "read-only"])
def test_a_store_upgraded_by_a_newer_cloverleaf_is_refused(kind: str, existing: bool, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        open_store(url).close()
        engine: sa.Engine = create_engine(url)
        with engine.begin() as conn:   # a migration this code does not have
            conn.execute(sa.text("INSERT INTO schema_version VALUES (:v, 0)"), {"v": NEWEST + 1})
        with pytest.raises(StoreAhead, match=rf"was upgraded by a newer cloverleaf \(migration {NEWEST + 1}; this one "
                                             rf"knows migrations up to {NEWEST}\): run that version or newer"):
            open_store(url, existing=existing)
        assert versions(engine) == [*range(1, NEWEST + 1), NEWEST + 1]   # untouched
        engine.dispose()


def test_a_store_ahead_is_refused_before_a_migration_it_lacks_runs(tmp_path: Path) -> None:
    """A newer version's store that also lacks one of this code's migrations (a feature built
    side by side) is refused, not migrated: it is the newer version's to run."""
    url = f"sqlite:///{tmp_path / 'ahead.db'}"
    engine = migrated(url, NEWEST - 1)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO schema_version VALUES (:v, 0)"), {"v": NEWEST + 5})
    with pytest.raises(StoreAhead, match=f"migration {NEWEST + 5};"):
        open_store(url)
    assert versions(engine) == [*range(1, NEWEST), NEWEST + 5]
    engine.dispose()
