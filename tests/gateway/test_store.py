"""The store on SQLite and on a real PostgreSQL: migrations, records, queries, CRUD, retention."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cloverleaf.gateway.store import (
    AttemptRecord,
    CallRecord,
    ModelEntryRow,
    Store,
    TraceRecord,
    VirtualKeyRow,
    calls,
    migrations,
    open_store,
)
from cloverleaf.gateway.store import schema as latest

from .stores import STORE_KINDS, store_url

DAY = 86400.0
NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with store_url(request.param, tmp_path) as url:
        s = open_store(url, flush_ms=20, wall=lambda: NOW)
        yield s
        s.close()


def _call(i: int, *, at: float = NOW, target: str = "openai/gpt-4o", provider: str = "openai",
          route: str = "smart", cost: float | None = 0.01, trace: str | None = None, status: str = "ok") -> CallRecord:
    return CallRecord(
        id=f"call_{i}", created_at=at, operation="chat", requested_model=route, status=status, trace_id=trace,
        target=target, provider=provider, model=target.split("/")[-1], latency_ms=120.0 + i, ttft_ms=None,
        input_tokens=100, output_tokens=20, cost=cost, metadata={"n": i},
        attempts=[AttemptRecord("anthropic/claude", "anthropic", False, "ServerError", "overloaded", 529, 30.0),
                  AttemptRecord(target, provider, True, latency_ms=90.0)])


def test_migrations_build_exactly_the_latest_schema(store: Store) -> None:
    assert store.schema_version == max(number for number, _ in migrations.available())
    inspector = sa.inspect(store.engine)
    for table in latest.metadata.sorted_tables:
        assert inspector.has_table(table.name), table.name
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
        indexes = {i["name"]: tuple(i["column_names"]) for i in inspector.get_indexes(table.name)
                   if not i["name"].startswith("sqlite_autoindex") and not i.get("duplicates_constraint")}
        assert indexes == {i.name: tuple(c.name for c in i.columns) for i in table.indexes}, table.name


PARTIAL = {"ix_calls_trace_id": "trace_id", "ix_calls_key_created": "key_id", "ix_calls_project_created": "project"}


def test_calls_index_trace_key_and_project_only_where_set_and_queries_use_them(store: Store) -> None:
    """Most calls have no trace, key or project: indexing their NULLs cost the writer a B-tree
    insertion each per row (0007). Every query on these columns asks for one value, which
    implies IS NOT NULL, so the planners still use the partial indexes."""
    store.record_call(_call(1, trace="tr_1"))
    store.record_call(_call(2))
    store.flush()
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            found = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                              "AND tbl_name = 'calls'").all())
            for name, column in PARTIAL.items():
                assert found[name].endswith(f"WHERE {column} IS NOT NULL"), found[name]
            assert "ix_calls_key_id" not in found
            for column, name in (("trace_id", "ix_calls_trace_id"), ("key_id", "ix_calls_key_created"),
                                 ("project", "ix_calls_project_created")):
                plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN SELECT id FROM calls WHERE {column} = ? ORDER BY created_at DESC", ("x",)))
                assert name in plan, plan
            assert conn.exec_driver_sql("SELECT count(*) FROM calls INDEXED BY ix_calls_trace_id "
                                        "WHERE trace_id IS NOT NULL").scalar() == 1
        else:
            found = dict(conn.exec_driver_sql("SELECT indexname, indexdef FROM pg_indexes "
                                              "WHERE tablename = 'calls'").all())
            for name, column in PARTIAL.items():
                assert found[name].endswith(f"WHERE ({column} IS NOT NULL)"), found[name]
            assert "ix_calls_key_id" not in found
    assert [c.id for c in store.recent_calls(trace_id="tr_1")] == ["call_1"]


def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'again.db'}"
    open_store(url).close()
    again = open_store(url)
    with again.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM schema_version")).scalar_one() == len(migrations.available())
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"
    again.close()


def test_a_new_sqlite_store_is_readable_by_its_owner_alone(tmp_path: Path) -> None:
    """It holds prompts and answers: 0600 files (the WAL and shared-memory files too) in a 0700
    folder, whatever the umask, as a workflow's run files are."""
    import os
    import stat

    folder = tmp_path / "cloverleaf"
    old = os.umask(0o022)
    try:
        store = open_store(f"sqlite:///{folder / 'calls.db'}")
        store.record_call(CallRecord(id="c_perm", created_at=1.0, operation="chat", requested_model="m",
                                     status="ok"))
        store.flush()
        files = sorted(folder.iterdir())
        assert {f.name for f in files} >= {"calls.db", "calls.db-wal", "calls.db-shm"}
        assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {f.name: 0o600 for f in files}
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        store.close()
    finally:
        os.umask(old)


@pytest.mark.parametrize("under", ["afile/store.db", "afile/deeper/store.db"])
def test_a_sqlite_path_that_cannot_be_made_is_a_config_error_naming_it(tmp_path: Path, under: str) -> None:
    """A file where a folder belongs on the path: opening the store (as `cloverleaf serve` does)
    was a NotADirectoryError traceback."""
    from cloverleaf._errors import ConfigError

    (tmp_path / "afile").write_text("x")
    db = tmp_path / under
    with pytest.raises(ConfigError) as refused:
        open_store(f"sqlite:///{db}")
    from cloverleaf.gateway.store import uncreatable

    assert str(refused.value) == (f"cannot create the store at {db}: {tmp_path / 'afile'} is a file, not a folder; "
                                  "set [store] url (or CLOVERLEAF_STORE_URL) to sqlite:///PATH in a folder this user "
                                  "can write, or fix that folder")
    assert uncreatable(db) == str(refused.value)            # what `cloverleaf doctor` reports before
    assert uncreatable(tmp_path / "new" / "store.db") is None


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write any folder")
def test_a_sqlite_store_in_a_folder_this_user_may_not_write_is_a_config_error(tmp_path: Path) -> None:
    from cloverleaf._errors import ConfigError

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(ConfigError, match=f"this user may not create files in {locked}"):
            open_store(f"sqlite:///{locked / 'sub' / 'store.db'}")
        from cloverleaf.gateway.store import uncreatable

        assert uncreatable(locked / "store.db") is not None
    finally:
        locked.chmod(0o700)


def test_call_records_round_trip_with_attempts(store: Store) -> None:
    store.record_call(_call(1))
    store.flush()
    [got] = store.recent_calls()
    assert got.requested_model == "smart" and got.target == "openai/gpt-4o" and got.cost == pytest.approx(0.01)
    assert got.metadata == {"n": 1}
    assert [(a.target, a.ok, a.error_type, a.http_status) for a in got.attempts] == [
        ("anthropic/claude", False, "ServerError", 529), ("openai/gpt-4o", True, None, None)]


def test_a_calls_only_successful_attempt_is_kept_in_its_row_and_reads_back_the_same(store: Store) -> None:
    """Nearly every call is answered by its first attempt: that attempt goes into the call's
    row (``attempt_ms``), not a row of ``attempts`` (a second insertion per call, 0008). Any
    other attempt — failed, on another target, with a status, or one of several — keeps its row."""
    one = _call(1)
    one.attempts = [AttemptRecord("openai/gpt-4o", "openai", True, latency_ms=90.5)]
    other_target = _call(2)
    other_target.attempts = [AttemptRecord("openai/gpt-4o-mini", "openai", True, latency_ms=80.0)]
    failed = _call(3, status="error")
    failed.attempts = [AttemptRecord("openai/gpt-4o", "openai", False, "ServerError", "boom", 500, 70.0)]
    none = _call(4)
    none.attempts = []
    for record in (one, other_target, failed, none, _call(5)):
        store.record_call(record)
    store.flush()
    with store.engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT id, attempt_ms FROM calls")).all())
        with_rows = set(conn.execute(sa.text("SELECT DISTINCT call_id FROM attempts")).scalars())
    assert stored == {"call_1": 90.5, "call_2": None, "call_3": None, "call_4": None, "call_5": None}
    assert with_rows == {"call_2", "call_3", "call_5"}
    got = {c.id: c for c in store.recent_calls(limit=10)}
    for record in (one, other_target, failed, none, _call(5)):
        assert got[record.id].attempts == record.attempts, record.id
    # a call recorded before 0008 (its one attempt in ``attempts``, attempt_ms NULL) reads the same
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE calls SET attempt_ms = NULL WHERE id = 'call_1'"))
        conn.execute(sa.text("INSERT INTO attempts (call_id, idx, target, provider, ok, latency_ms) "
                             "VALUES ('call_1', 0, 'openai/gpt-4o', 'openai', :ok, 90.5)"), {"ok": True})
    [again] = [c for c in store.recent_calls(limit=10) if c.id == "call_1"]
    assert again.attempts == one.attempts


def test_one_batch_of_calls_with_different_empty_columns_round_trips(store: Store) -> None:
    """The writer groups a batch's rows by which values are None and writes NULL into the
    statement for those: every row still lands whole, the empty columns empty and the others
    in their own columns (a shifted value would show up here)."""
    full = _call(1, trace="tr_1", cost=0.5)
    full.ttft_ms, full.error_type, full.error_message, full.project, full.key_id, full.cache = (
        12.5, "ServerError", "overloaded", "proj", "key_1", "miss")
    sparse = CallRecord(id="call_2", created_at=NOW + 1, operation="embed", requested_model="e", status="error")
    for record in (full, sparse, _call(3, cost=None), _call(4, trace="tr_1")):
        store.record_call(record)
    store.flush()
    got = {c.id: c for c in store.recent_calls(limit=10)}
    assert set(got) == {"call_1", "call_2", "call_3", "call_4"}
    one = got["call_1"]
    assert (one.trace_id, one.ttft_ms, one.error_type, one.error_message, one.project, one.key_id, one.cache,
            one.cost, one.latency_ms) == ("tr_1", 12.5, "ServerError", "overloaded", "proj", "key_1", "miss",
                                          pytest.approx(0.5), 121.0)
    two = got["call_2"]
    assert (two.operation, two.status, two.trace_id, two.target, two.cost, two.latency_ms, two.attempts,
            two.metadata) == ("embed", "error", None, None, None, None, [], {})
    assert got["call_3"].cost is None and got["call_3"].latency_ms == 123.0 and got["call_3"].trace_id is None
    assert [c.id for c in store.recent_calls(trace_id="tr_1")] == ["call_4", "call_1"]
    assert [(a.error_type, a.http_status, a.latency_ms) for a in got["call_4"].attempts] == [
        ("ServerError", 529, 30.0), (None, None, 90.0)]


def test_recent_calls_filters_and_orders_newest_first(store: Store) -> None:
    for i in range(5):
        store.record_call(_call(i, at=NOW + i, route="smart" if i % 2 else "cheap",
                                status="error" if i == 4 else "ok"))
    store.flush()
    assert [c.id for c in store.recent_calls(3)] == ["call_4", "call_3", "call_2"]
    assert [c.id for c in store.recent_calls(model="smart")] == ["call_3", "call_1"]
    assert [c.id for c in store.recent_calls(status="error")] == ["call_4"]


def test_spend_groups(store: Store) -> None:
    store.record_call(_call(1, at=NOW, cost=0.5))
    store.record_call(_call(2, at=NOW + DAY, target="anthropic/claude", provider="anthropic", route="cheap", cost=0.25))
    store.record_call(_call(3, at=NOW + DAY, cost=None))
    store.flush()
    by_model = {r.group: (r.calls, r.cost, r.input_tokens) for r in store.spend("model")}
    assert by_model == {"openai/gpt-4o": (2, pytest.approx(0.5), 200), "anthropic/claude": (1, pytest.approx(0.25), 100)}
    assert [(r.group, r.calls) for r in store.spend("day")] == [("2023-11-14", 1), ("2023-11-15", 2)]
    assert {r.group: r.calls for r in store.spend("provider")} == {"openai": 2, "anthropic": 1}
    assert {r.group: r.calls for r in store.spend("route")} == {"smart": 2, "cheap": 1}
    assert [r.group for r in store.spend("route", since=NOW + 1)] == ["cheap", "smart"]
    with pytest.raises(ValueError, match="spend --by"):
        store.spend("colour")


def test_traces(store: Store) -> None:
    store.record_trace(TraceRecord("tr_1", NOW, None, {"user": "ada"}))
    store.record_call(_call(1, trace="tr_1"))
    store.record_call(_call(2, trace="tr_1", at=NOW + 1))
    store.record_call(_call(3))
    store.complete_trace("tr_1", NOW + 5)
    store.flush()
    trace = store.get_trace("tr_1")
    assert trace is not None and trace.completed_at == NOW + 5 and trace.metadata == {"user": "ada"}
    assert [c.id for c in trace.calls] == ["call_1", "call_2"]
    assert store.get_trace("tr_missing") is None


def test_retention_per_model_entry_and_default(store: Store) -> None:
    store.record_call(_call(1, at=NOW - 40 * DAY))                       # default 30 days: deleted
    store.record_call(_call(2, at=NOW - 10 * DAY))                       # kept
    store.record_call(_call(3, at=NOW - 3 * DAY, target="private-model"))  # entry keeps 2 days: deleted
    store.record_call(_call(4, at=NOW - 1 * DAY, target="private-model"))  # kept
    store.record_call(_call(5, at=NOW - 40 * DAY, route="archive"))       # entry keeps 90 days: kept
    store.flush()
    deleted = store.cleanup(NOW, 30, {"private-model": 2, "archive": 90})
    assert deleted == 2
    assert sorted(c.id for c in store.recent_calls(10)) == ["call_2", "call_4", "call_5"]
    with store.engine.connect() as conn:
        left = conn.execute(sa.text("SELECT DISTINCT call_id FROM attempts ORDER BY call_id")).scalars().all()
    assert left == ["call_2", "call_4", "call_5"]


def test_budget_ledger_is_exact_under_threads(store: Store) -> None:
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        ok, rid, _, _ = store.budget_reserve("route:r", "total", 1.0, 0.3, NOW)
        with lock:
            results.append(ok)
        if ok:
            assert rid is not None
            store.budget_settle(rid, 0.3)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 3
    assert store.budget_usage("route:r", "total") == (pytest.approx(0.9), pytest.approx(0.0))


def test_stale_reservations_expire(store: Store) -> None:
    ok, _, _, _ = store.budget_reserve("key:k", "total", 1.0, 0.8, NOW - 7200)
    assert ok
    assert store.budget_reserve("key:k", "total", 1.0, 0.8, NOW)[0] is False
    assert store.expire_reservations(NOW - 3600) == 1
    assert store.budget_usage("key:k", "total") == (0.0, 0.0)


def test_virtual_keys_crud(store: Store) -> None:
    key = store.create_virtual_key(VirtualKeyRow(id="k_1", secret_hash="sha256:abc", name="team",
                                                 allowed_models=["smart", "fake/*"], budget=5.0, rpm=10))
    assert key.created_at == NOW
    assert store.find_virtual_key("sha256:abc").allowed_models == ["smart", "fake/*"]
    assert "abc" not in repr(store.get_virtual_key("k_1"))
    store.update_virtual_key("k_1", tpm=1000, metadata={"owner": "ada"})
    store.add_key_spend("k_1", 0.25)
    got = store.get_virtual_key("k_1")
    assert (got.tpm, got.metadata, got.spent) == (1000, {"owner": "ada"}, pytest.approx(0.25))
    assert store.revoke_virtual_key("k_1", at=NOW + 1) and not store.revoke_virtual_key("k_1")
    assert store.list_virtual_keys(include_revoked=False) == []
    assert [k.id for k in store.list_virtual_keys()] == ["k_1"]
    with pytest.raises(ValueError):
        store.update_virtual_key("k_1", colour="red")
    assert store.delete_virtual_key("k_1") and store.get_virtual_key("k_1") is None


def test_model_entries_crud(store: Store) -> None:
    entry = ModelEntryRow(name="my-gpt", identifier="gpt-4o", provider="openai", api_key_encrypted="gAAAA-opaque",
                          input_cost_per_1k=0.0025, output_cost_per_1k=0.01, additional_config={"x": 1},
                          data_retention_days=7)
    store.upsert_model_entry(entry)
    got = store.get_model_entry("my-gpt")
    assert got is not None and got.api_key_encrypted == "gAAAA-opaque" and got.additional_config == {"x": 1}
    assert "opaque" not in repr(got)
    entry.identifier = "gpt-4o-mini"
    store.upsert_model_entry(entry)
    assert [e.identifier for e in store.list_model_entries()] == ["gpt-4o-mini"]
    assert store.delete_model_entry("my-gpt") and store.list_model_entries() == []


def test_retention_removes_traces_whose_calls_are_gone_after_the_default_period(store: Store) -> None:
    """A model entry that keeps its calls longer must not keep other traces' metadata alive."""
    store.record_trace(TraceRecord("tr_old", NOW - 40 * DAY, None, {"user": "ada"}))
    store.record_call(_call(1, at=NOW - 40 * DAY, trace="tr_old"))
    store.record_trace(TraceRecord("tr_archived", NOW - 40 * DAY, None, {"user": "bob"}))
    store.record_call(_call(2, at=NOW - 40 * DAY, route="archive", trace="tr_archived"))
    store.record_trace(TraceRecord("tr_new", NOW - 1 * DAY, None, {}))
    store.flush()
    assert store.cleanup(NOW, 30, {"archive": 90}) == 1
    assert store.get_trace("tr_old") is None                       # its call is gone, and so is it
    assert [c.id for c in store.get_trace("tr_archived").calls] == ["call_2"]
    assert store.get_trace("tr_new") is not None


def test_a_migration_numbered_below_the_newest_applied_still_runs(tmp_path: Path) -> None:
    """Features land side by side with their own numbers: a database migrated before a lower
    number arrived must still get it (0005 after 0006, say)."""
    from cloverleaf.gateway.store import migrations

    url = f"sqlite:///{tmp_path / 'gap.db'}"
    open_store(url).close()
    numbers = [n for n, _ in migrations.available()]
    lower = numbers[-2]
    engine = sa.create_engine(url)
    with engine.begin() as conn:      # pretend this database was migrated before `lower` existed
        conn.execute(sa.text("DELETE FROM schema_version WHERE version = :v"), {"v": lower})
    ran: list[int] = []
    module = dict(migrations.available())[lower]
    original = module.upgrade
    module.upgrade = lambda conn: ran.append(lower)  # type: ignore[assignment]
    try:
        open_store(url).close()
    finally:
        module.upgrade = original  # type: ignore[assignment]
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.text("SELECT version FROM schema_version")).scalars()) == numbers
    engine.dispose()
    assert ran == [lower]


def test_a_call_row_is_built_without_a_getattr_per_column() -> None:
    """The writer thread takes its CPU from the request loop on a one-core server: a call's row
    values come from one C-level ``attrgetter``, not a Python ``getattr`` per column (23 calls,
    about 1% of a whole request's instructions). The values are the record's, in column order."""
    record = _call(1, trace="tr_1", cost=0.5)
    record.attempts = [AttemptRecord("openai/gpt-4o", "openai", True, latency_ms=90.5)]
    getattrs = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal getattrs
        if event == "c_call" and arg is getattr:
            getattrs += 1

    sys.setprofile(count)
    try:
        [(table, values)] = calls._call_rows(record)
    finally:
        sys.setprofile(None)
    assert getattrs == 0
    assert table is latest.calls
    expected = [getattr(record, name) for name in calls._RECORD_COLUMNS]
    expected[calls._METADATA_AT] = '{"n": 1}'
    assert values == (*expected, 90.5)


def test_retention_deletes_a_bounded_batch_per_transaction(store: Store) -> None:
    """The cleanup once deleted every expired call in one transaction: on SQLite it held the
    write lock for a minute over 666,000 calls, and the store's writer (every call record and
    its spend) waited behind it. Each transaction now deletes at most ``retention.BATCH``
    calls, and calls another rule keeps longer are passed over, not lost."""
    batch = 500   # retention.BATCH
    expired = 2 * batch + 7
    for i in range(expired):
        store.record_call(_call(i, at=NOW - 40 * DAY + i))                       # default 30 days: deleted
    for i in range(expired, expired + 50):
        store.record_call(_call(i, at=NOW - 40 * DAY + i, route="archive"))      # kept 90 days, among them
    store.record_call(_call(99_999, at=NOW - DAY))
    store.flush()
    deleted_per_statement: list[int] = []

    def count(conn: object, cursor: Any, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM CALLS"):
            deleted_per_statement.append(cursor.rowcount)

    sa.event.listen(store.engine, "after_cursor_execute", count)
    try:
        assert store.cleanup(NOW, 30, {"archive": 90}) == expired
    finally:
        sa.event.remove(store.engine, "after_cursor_execute", count)
    assert sum(deleted_per_statement) == expired and max(deleted_per_statement) <= batch, deleted_per_statement
    with store.engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT COUNT(*) FROM calls")).scalar_one()
        attempts = conn.execute(sa.text("SELECT COUNT(DISTINCT call_id) FROM attempts")).scalar_one()
    assert kept == attempts == 51
    from cloverleaf.gateway.store.retention import BATCH

    assert BATCH == batch
