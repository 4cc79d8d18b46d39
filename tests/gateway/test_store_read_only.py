"""Read-only commands (``traces``, ``spend``, ``doctor``) open the store with ``existing=True``:
a database that is not a cloverleaf store (an app's own, behind a mistyped ``[store] url``) is
refused and left untouched. They used to migrate it: 12 cloverleaf tables in the app's database.
A cloverleaf store at an older schema version is refused too, saying which version upgrades it,
and left as it was: they used to migrate it, under a live server of the older version, whose
later calls then never reached the rollups (0004's backfill had run once, before them)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from cloverleaf.cli import main
from cloverleaf.gateway.store import NotAStore, StoreBehind, create_engine, migrations, open_store

from .stores import STORE_KINDS, fresh_postgres_database, store_url

NEWEST = migrations.available()[-1][0]


def _tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))


def _journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


@pytest.fixture
def app_db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    return path


@pytest.mark.parametrize("command", ["traces", "spend", "doctor"])
def test_read_only_commands_leave_another_apps_sqlite_database_untouched(command, app_db, tmp_path, monkeypatch,
                                                                         capsys):
    monkeypatch.delenv("CLOVERLEAF_STORE_URL", raising=False)
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{app_db}"\n')
    assert main(["--config", str(config), command]) == 1
    captured = capsys.readouterr()
    assert f"{app_db} is not a cloverleaf store (it holds other tables: customers" in captured.out + captured.err
    assert _tables(app_db) == ["customers"] and _journal_mode(app_db) == "delete"   # not even switched to WAL


def test_an_empty_sqlite_file_is_no_store_yet(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(NotAStore, match="no store at .*empty.db yet: the database is empty"):
        open_store(f"sqlite:///{empty}", existing=True)
    assert empty.stat().st_size == 0


def _first_release_store(url: str) -> sa.Engine:
    """A store made by the first release: migration 0001 only."""
    engine: sa.Engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at FLOAT NOT NULL)"))
        number, first = migrations.available()[0]
        first.upgrade(conn)
        conn.execute(sa.text("INSERT INTO schema_version VALUES (:v, 0)"), {"v": number})
    return engine


def _versions(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return [int(v) for v in conn.execute(sa.text("SELECT version FROM schema_version ORDER BY 1")).scalars()]


BEHIND = (rf"is at schema 1; this cloverleaf needs {NEWEST}: start `cloverleaf serve` of this version \(which "
          r"upgrades it\) after stopping servers of the older version")


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_cloverleaf_store_at_an_older_version_is_refused_and_left_as_it_was(kind, tmp_path):
    with store_url(kind, tmp_path) as url:
        engine = _first_release_store(url)
        try:
            tables = sorted(sa.inspect(engine).get_table_names())
            with pytest.raises(StoreBehind, match=BEHIND):
                open_store(url, existing=True)
            assert _versions(engine) == [1] and sorted(sa.inspect(engine).get_table_names()) == tables
            store = open_store(url)   # what `cloverleaf serve` does: upgrade it
            try:
                assert store.schema_version == NEWEST
            finally:
                store.close()
            open_store(url, existing=True).close()   # and then the reading commands read it
        finally:
            engine.dispose()


def test_a_store_missing_a_lower_migration_says_which(tmp_path):
    url = f"sqlite:///{tmp_path / 'gap.db'}"
    open_store(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM schema_version WHERE version = 5"))
    with pytest.raises(StoreBehind, match=rf"is at schema {NEWEST}; this cloverleaf needs {NEWEST} \(migrations 5 "
                                          r"are not applied\)"):
        open_store(url, existing=True)
    engine.dispose()


@pytest.mark.parametrize("command", ["traces", "spend", "doctor"])
def test_read_only_commands_refuse_a_store_behind_and_say_what_upgrades_it(command, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CLOVERLEAF_STORE_URL", raising=False)
    path = tmp_path / "old.db"
    engine = _first_release_store(f"sqlite:///{path}")
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{path}"\n')
    assert main(["--config", str(config), command]) == 1
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert re.search(BEHIND, said), said
    if command == "doctor":   # a failed check among the others, not a crash
        assert re.search(r"store +ERROR the store at .*old.db is at schema 1", captured.out), captured.out
    assert _versions(engine) == [1]
    engine.dispose()


@pytest.mark.parametrize("command", ["traces", "doctor"])
def test_read_only_commands_refuse_a_store_a_newer_cloverleaf_upgraded(command, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CLOVERLEAF_STORE_URL", raising=False)
    path = tmp_path / "new.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?, 0)", (NEWEST + 1,))
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{path}"\n')
    assert main(["--config", str(config), command]) == 1
    captured = capsys.readouterr()
    assert f"was upgraded by a newer cloverleaf (migration {NEWEST + 1};" in captured.out + captured.err


@pytest.mark.postgres
def test_a_postgres_database_of_another_app_is_refused_and_left_untouched():
    with fresh_postgres_database() as url:
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE customers (id INTEGER)"))
            with pytest.raises(NotAStore, match="is not a cloverleaf store .*customers") as refused:
                open_store(url, existing=True)
            password = make_url(url).password
            assert not password or str(password) not in str(refused.value)   # the password is hidden
            assert sa.inspect(engine).get_table_names() == ["customers"]
            open_store(url).close()                                  # the server's own opening still migrates
            assert "schema_version" in sa.inspect(engine).get_table_names()
        finally:
            engine.dispose()
