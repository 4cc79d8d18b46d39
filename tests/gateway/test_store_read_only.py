"""Read-only commands (``traces``, ``spend``, ``doctor``) open the store with ``existing=True``:
a database that is not a cloverleaf store (an app's own, behind a mistyped ``[store] url``) is
refused and left untouched. They used to migrate it: 12 cloverleaf tables in the app's database.
A cloverleaf store at an older schema version is upgraded, as any opening of it would."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from cloverleaf.cli import main
from cloverleaf.gateway.store import NotAStore, migrations, open_store

from .stores import fresh_postgres_database


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


def test_a_cloverleaf_store_at_an_older_version_is_upgraded(tmp_path):
    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:        # a store made by the first release: migration 0001 only
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at FLOAT NOT NULL)"))
        number, first = migrations.available()[0]
        first.upgrade(conn)
        conn.execute(sa.text("INSERT INTO schema_version VALUES (:v, 0)"), {"v": number})
    engine.dispose()
    store = open_store(f"sqlite:///{path}", existing=True)
    try:
        assert store.schema_version == migrations.available()[-1][0]
        assert store.recent_calls(limit=5) == []
    finally:
        store.close()


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
