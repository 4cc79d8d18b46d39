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
