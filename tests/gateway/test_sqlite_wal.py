"""Switching a new SQLite store to WAL mode while other processes open it (gateway/sqlite_wal.py).

The race itself is exercised by processes starting together (here for the response cache, in
test_store_durability for the call store); it failed about one opening in a hundred before, so
the other tests pin the retry down without luck."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cloverleaf.gateway.sqlite_wal import enable_wal


class _Cursor:
    """A sqlite3 cursor whose mode switch is refused ``locked_times`` times, as SQLite does
    while another connection is switching the same file."""

    def __init__(self, locked_times: int, error: str = "database is locked") -> None:
        self.locked_times, self.error, self.mode, self.switches = locked_times, error, "delete", 0

    def execute(self, sql: str) -> _Cursor:
        if sql == "PRAGMA journal_mode=WAL":
            self.switches += 1
            if self.locked_times:
                self.locked_times -= 1
                raise sqlite3.OperationalError(self.error)
            self.mode = "wal"
        return self

    def fetchone(self) -> tuple[str]:
        return (self.mode,)


def test_a_locked_switch_is_retried_until_it_succeeds() -> None:
    cursor, pauses = _Cursor(locked_times=3), list[float]()
    enable_wal(cursor, sleep=pauses.append)
    assert cursor.mode == "wal" and cursor.switches == 4
    assert pauses == [0.005, 0.01, 0.02]


def test_a_store_already_in_wal_mode_is_not_switched_again() -> None:
    cursor = _Cursor(locked_times=5)
    cursor.mode = "wal"
    enable_wal(cursor, sleep=lambda _: None)
    assert cursor.switches == 0


def test_a_lock_that_outlasts_the_wait_is_raised() -> None:
    cursor = _Cursor(locked_times=10**6)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(cursor, wait_s=0.05, sleep=lambda _: None)


def test_other_errors_are_not_retried() -> None:
    cursor = _Cursor(locked_times=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        enable_wal(cursor, sleep=lambda _: pytest.fail("slept on an error that is not a lock"))
    assert cursor.switches == 1


def test_a_real_database_ends_in_wal_mode(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "s.db")
    try:
        enable_wal(conn.cursor())
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


CACHE_RACE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from cloverleaf.gateway.cache.backends import SqliteBackend

    go = Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.001)
    SqliteBackend(sys.argv[1], 100)
    print("ok")
""")


def test_workers_opening_one_new_cache_file_together_all_start(tmp_path: Path) -> None:
    script = tmp_path / "race.py"
    script.write_text(CACHE_RACE)
    for round_ in range(3):
        db, go = tmp_path / f"cache{round_}.db", tmp_path / f"go{round_}"
        procs = [subprocess.Popen([sys.executable, str(script), str(db), str(go)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
        go.touch()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0 and out.strip() == "ok", err[-2000:]
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        finally:
            conn.close()


def test_the_stores_wal_file_is_cut_back_after_a_large_transaction(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite keeps a WAL file at the largest it ever grew to while the store is open: after
    the retention cleanup of 666,000 calls it stayed 265 MB for the life of the server. The
    store's connections have it cut back (``journal_size_limit``) once a checkpoint empties it."""
    import sqlalchemy as sa

    from cloverleaf.gateway import sqlite_wal
    from cloverleaf.gateway.store import open_store

    monkeypatch.setattr(sqlite_wal, "WAL_SIZE_LIMIT_BYTES", 256 * 1024, raising=False)
    path = tmp_path / "store.db"
    store = open_store(f"sqlite:///{path}")
    try:
        with store.engine.begin() as conn:   # a large transaction: several MB of WAL
            conn.execute(sa.text("CREATE TABLE filler (x BLOB)"))
            conn.execute(sa.text("INSERT INTO filler VALUES (:x)"), [{"x": bytes(1000)} for _ in range(8000)])
        grown = Path(f"{path}-wal").stat().st_size
        for _ in range(2):   # the next writes checkpoint it and start it over
            with store.engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO filler VALUES (x'00')"))
        assert grown > 1024 * 1024 and Path(f"{path}-wal").stat().st_size <= 256 * 1024
    finally:
        store.close()
