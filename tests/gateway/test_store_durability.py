"""The store keeps what it was given: through a bad record, an exit without close(), and
several processes creating the same database at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from cloverleaf.gateway.store import CallRecord, TraceRecord, migrations, open_store

from .stores import STORE_KINDS, fresh_postgres_database, store_url

ALL_VERSIONS = [number for number, _ in migrations.available()]

NOW = 1_700_000_000.0

ALL_VERSIONS = sorted(n for n, _ in migrations.available())


def _call(i: int) -> CallRecord:
    return CallRecord(id=f"call_{i}", created_at=NOW + i, operation="chat", requested_model="r", status="ok")


def test_one_bad_record_does_not_drop_the_rest_of_its_batch(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}", flush_ms=60_000, batch_size=1000)
    try:
        store.record_trace(TraceRecord("tr_dup", NOW))
        store.flush()
        store.record_call(_call(1))
        store.record_trace(TraceRecord("tr_dup", NOW))   # duplicate key: this one cannot be written
        store.record_call(_call(2))
        store.flush()
        assert sorted(c.id for c in store.recent_calls(10)) == ["call_1", "call_2"]
        assert store.writer.dropped == 1
    finally:
        store.close()


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_record_the_driver_cannot_encode_costs_only_itself(tmp_path: Path, kind: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """A lone surrogate in one record (a string no driver can encode: ``UnicodeEncodeError``,
    not a database error) made the writer retry and then drop the WHOLE batch: every other
    call record in it, and the spend riding with them, was lost."""
    with store_url(kind, tmp_path) as url:
        store = open_store(url, flush_ms=60_000, batch_size=1000)
        try:
            store.record_call(_call(1))
            store.record_spend("key:k", "total", 0.5)
            bad = CallRecord(id="call_bad", created_at=NOW, operation="chat", requested_model="fake/echo\udcff",
                             status="ok", key_id="key_should_not_be_logged")
            store.record_call(bad)
            store.record_call(_call(2))
            store.flush()
            assert sorted(c.id for c in store.recent_calls(10)) == ["call_1", "call_2"]
            assert store.budget_usage("key:k", "total") == (pytest.approx(0.5), 0.0)
            assert store.writer.dropped == 1
            assert "UnicodeEncodeError" in caplog.text and "key_should_not_be_logged" not in caplog.text
            store.record_call(_call(3))      # the writer goes on with its connection
            store.flush()
            assert len(store.recent_calls(10)) == 3
        finally:
            store.close()


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_record_holding_a_nul_is_written_with_u_fffd_not_dropped(tmp_path: Path, kind: str) -> None:
    """PostgreSQL refuses NUL in text (SQLite keeps it): a call record quoting a client's
    string with one in it (a provider's error about the request, a name) was dropped, and
    its tokens and cost with it. It is written, with U+FFFD for each NUL."""
    with store_url(kind, tmp_path) as url:
        store = open_store(url, flush_ms=60_000, batch_size=1000)
        try:
            store.record_call(_call(1))
            store.record_call(CallRecord(id="call_nul", created_at=NOW, operation="chat", requested_model="r",
                                         status="error", error_message="bad tool name 'f\x00'", input_tokens=7,
                                         project="p\x00"))
            store.flush()
            found = {c.id: c for c in store.recent_calls(10)}
            assert sorted(found) == ["call_1", "call_nul"] and store.writer.dropped == 0
            nul = found["call_nul"]
            assert nul.input_tokens == 7
            assert nul.error_message in ("bad tool name 'f\x00'", "bad tool name 'f\ufffd'")
            assert nul.project in ("p\x00", "p\ufffd")
        finally:
            store.close()


EXIT_WITHOUT_CLOSE = textwrap.dedent("""
    import sys
    from cloverleaf import Client, Settings

    settings = Settings(routes={"smart": {"targets": ["fake/echo"]}}, env={}, max_retries=0,
                        store={"url": "sqlite:///" + sys.argv[1], "flush_ms": 60000})
    client = Client(settings)
    print(client.chat("smart", "remember me").content)
    # no client.close(): the interpreter exits with the record still queued
""")


def test_records_queued_at_interpreter_exit_are_written(tmp_path: Path) -> None:
    db = tmp_path / "exit.db"
    script = tmp_path / "child.py"
    script.write_text(EXIT_WITHOUT_CLOSE)
    out = subprocess.run([sys.executable, str(script), str(db)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "remember me"
    store = open_store(f"sqlite:///{db}")
    try:
        [call] = store.recent_calls(5)
        assert call.requested_model == "smart" and call.status == "ok"
    finally:
        store.close()


RACE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from cloverleaf.gateway.store import open_store

    go = Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.001)
    open_store("sqlite:///" + sys.argv[1]).close()
    print("ok")
""")


def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    for round_ in range(3):
        db, go = tmp_path / f"race{round_}.db", tmp_path / f"go{round_}"
        script = tmp_path / "race.py"
        script.write_text(RACE)
        procs = [subprocess.Popen([sys.executable, str(script), str(db), str(go)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
        go.touch()
        results = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, results, strict=True):
            assert p.returncode == 0 and out.strip() == "ok", err[-2000:]
        engine = sa.create_engine(f"sqlite:///{db}")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all() == ALL_VERSIONS
        engine.dispose()


@pytest.mark.postgres
def test_postgres_stores_opening_together_migrate_once() -> None:
    with fresh_postgres_database() as url:
        errors: list[BaseException] = []
        start = threading.Barrier(6)

        def open_one() -> None:
            try:
                start.wait()
                open_store(url).close()
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all() == ALL_VERSIONS
        engine.dispose()


def test_a_backlog_wakes_the_writer_and_commits_batch_sized_transactions(tmp_path: Path) -> None:
    from cloverleaf.gateway.store.writer import WAKE_BATCHES

    store = open_store(f"sqlite:///{tmp_path / 's.db'}", flush_ms=600_000, batch_size=10)
    try:
        for i in range(10 * WAKE_BATCHES):      # no flush(): the backlog alone wakes the writer
            store.record_call(_call(i))
        woke = threading.Event()
        for _ in range(600):
            if store.writer.committed_batches >= WAKE_BATCHES:
                woke.set()
                break
            woke.wait(0.05)
        assert woke.is_set()
        assert store.writer.committed_batches == WAKE_BATCHES   # one transaction per batch_size records
        assert len(store.recent_calls(1000)) == 10 * WAKE_BATCHES
    finally:
        store.close()


def test_the_writer_reconnects_after_its_connection_breaks(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}", flush_ms=60_000)
    try:
        store.record_call(_call(1))
        store.flush()
        conn = store.writer._conn                 # the connection the writer keeps between batches
        assert conn is not None
        conn.connection.dbapi_connection.close()  # e.g. the server went away
        store.record_call(_call(2))
        store.flush()
        assert sorted(c.id for c in store.recent_calls(10)) == ["call_1", "call_2"]
        assert store.writer.dropped == 0
    finally:
        store.close()


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_spend_in_a_batch_the_writer_retries_is_written(tmp_path: Path, kind: str) -> None:
    """The batch's transaction fails (its connection broke) and is retried: the retry must
    carry the batch's spend, which left the running sums when the first try took it."""
    with store_url(kind, tmp_path) as url:
        store = open_store(url, flush_ms=60_000)
        try:
            store.record_spend("project:p", "total", 0.5)
            store.flush()
            store.writer._conn.connection.dbapi_connection.close()   # type: ignore[union-attr]
            store.record_spend("project:p", "total", 0.25)
            store.record_call(_call(1))
            store.flush()
            assert store.budget_usage("project:p", "total") == (pytest.approx(0.75), 0.0)
            assert store.spend_batch.pending() == {}
            assert [c.id for c in store.recent_calls(10)] == ["call_1"]
        finally:
            store.close()


def test_spend_the_full_writer_queue_refused_is_written_later(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The queue is full (the database is away) when a call's spend asks for a write: the
    spend waits in memory and goes with a later transaction, never dropped for good."""
    from cloverleaf.gateway.store import writer

    store = open_store(f"sqlite:///{tmp_path / 's.db'}", flush_ms=60_000)
    try:
        monkeypatch.setattr(writer, "MAX_PENDING", 1)
        store.record_call(_call(1))
        store.record_spend("project:p", "total", 0.5)        # refused: the queue is full
        assert store.writer.dropped == 1
        assert store.spend_batch.pending() == {("project:p", "total"): 0.5}
        store.flush()      # the records' transaction queues the spend
        store.flush()
        assert store.budget_usage("project:p", "total") == (pytest.approx(0.5), 0.0)
        assert store.spend_batch.pending() == {}
    finally:
        store.close()


def test_spend_still_reaches_the_ledger_after_a_batch_dropped_while_the_database_was_away(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch dropped before its spend op ran (the database could not be reached for both tries)
    left the spend batch believing an op was queued: every later call's spend stayed in memory for
    the rest of the process, and budgets seeded from the ledger forgot it."""
    store = open_store(f"sqlite:///{tmp_path / 's.db'}", flush_ms=20)
    try:
        writer = store.writer
        real = writer._engine.connect

        def away(*args: object, **kwargs: object) -> None:
            raise sa.exc.OperationalError("connect", {}, Exception("the database is away"))

        writer._disconnect()
        monkeypatch.setattr(writer._engine, "connect", away)
        store.record_spend("project:p", "total", 1.0)
        store.flush(0.5)                                    # both tries fail to connect: kept for later
        assert writer.waiting_for_database
        monkeypatch.setattr(writer._engine, "connect", real)
        store.record_spend("project:p", "total", 2.0)
        store.flush(5)
        store.flush(5)
        assert store.budget_usage("project:p", "total") == (pytest.approx(3.0), 0.0)
        assert store.spend_batch.pending() == {}
    finally:
        store.close()


def test_call_records_queued_while_the_database_is_away_are_written_when_it_is_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer retried a failed batch once, 50 ms later, then dropped it: a short database
    restart under load lost the records of every call it served meanwhile (half of them in one
    run), while the ledger kept their spend. A batch the database cannot take now waits at the
    head of the queue, in order, and goes when the database is back."""
    store = open_store(f"sqlite:///{tmp_path / 's.db'}", flush_ms=20, batch_size=10)
    try:
        writer = store.writer
        real = writer._engine.connect
        refused: list[int] = []

        def away(*args: object, **kwargs: object) -> None:
            refused.append(1)
            raise sa.exc.OperationalError("connect", {}, Exception("the database is away"))

        store.record_call(_call(0))
        store.flush(5)
        writer._disconnect()
        monkeypatch.setattr(writer._engine, "connect", away)
        for i in range(1, 36):
            store.record_call(_call(i))
        store.record_spend("project:p", "total", 1.0)
        assert not store.flush(1.0)                    # nothing can be written yet
        assert writer.waiting_for_database and len(refused) >= 2 and writer.dropped == 0
        monkeypatch.setattr(writer._engine, "connect", real)
        assert store.flush(10)
        assert not writer.waiting_for_database and writer.dropped == 0
        assert sorted(int(c.id.removeprefix("call_")) for c in store.recent_calls(100)) == list(range(36))
        assert store.budget_usage("project:p", "total") == (pytest.approx(1.0), 0.0)
    finally:
        store.close()


def test_a_writer_closed_while_the_database_is_away_drops_what_is_left_and_counts_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}", flush_ms=20, batch_size=10)
    writer = store.writer
    writer._disconnect()

    def away(*args: object, **kwargs: object) -> None:
        raise sa.exc.OperationalError("connect", {}, Exception("the database is away"))

    monkeypatch.setattr(writer._engine, "connect", away)
    for i in range(25):
        store.record_call(_call(i))
    # no timeout: the flush inside returns once the writer finds the database away (it used to
    # wait out its whole timeout, which made a server stop take 30 s with the database down)
    writer.close(timeout=None)
    assert not writer._thread.is_alive() and writer.dropped == 25


def test_a_flush_returns_once_the_writer_finds_the_database_away(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that flushes before it reads (a trace lookup) waited the flush's whole 30 s
    while the database was down; now the writer tries at once and the flush returns False when
    it fails, the records still queued. With no timeout at all it would otherwise never return."""
    store = open_store(f"sqlite:///{tmp_path / 's.db'}", flush_ms=20, batch_size=10)
    try:
        writer = store.writer
        real = writer._engine.connect
        writer._disconnect()

        def away(*args: object, **kwargs: object) -> None:
            raise sa.exc.OperationalError("connect", {}, Exception("the database is away"))

        monkeypatch.setattr(writer._engine, "connect", away)
        store.record_call(_call(1))
        assert store.flush(timeout=None) is False          # the writer tried and found it away
        assert store.flush(timeout=None) is False          # and again: every flush asks for a try
        assert writer.waiting_for_database and writer.dropped == 0
        monkeypatch.setattr(writer._engine, "connect", real)
        assert store.flush(timeout=None) is True           # back: the flush's own try writes it all
        assert [c.id for c in store.recent_calls(10)] == ["call_1"]
    finally:
        store.close()


@pytest.mark.postgres
def test_a_postgresql_restart_loses_no_call_record() -> None:
    """The hunter's case on a real PostgreSQL: down for a moment under load, then back."""
    import time

    from .postgres_faults import proxied_postgres

    with proxied_postgres() as (url, proxy):
        store = open_store(url, flush_ms=20, batch_size=10)
        try:
            store.record_call(_call(0))
            assert store.flush(10)
            proxy.down()
            for i in range(1, 41):
                store.record_call(_call(i))
                store.record_spend("project:p", "total", 0.5)
                time.sleep(0.01)
            assert not store.flush(0.5) and store.writer.waiting_for_database
            proxy.restore()
            assert store.flush(30)
            assert store.writer.dropped == 0
            assert len(store.recent_calls(100)) == 41
            assert store.budget_usage("project:p", "total") == (pytest.approx(20.0), 0.0)
        finally:
            store.close()
