"""A store whose schema lacks a table or column the code uses fails with a permanent error:
``outage()`` must not call it an outage (the server's 503 "retry shortly", which no retry
helps: a store migrated by 0003's first version answered every ``/v1/responses`` request so,
forever), and ``schema_problem()`` names what is missing for the log. Real outages stay
outages: SQLite's locked database, a PostgreSQL that refuses connections. Real errors from
real databases, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from cloverleaf.gateway.store import open_store, schema
from cloverleaf.gateway.store.outage import outage, schema_problem

from .stores import STORE_KINDS, store_url

#: nothing listens here: a port of this test's own range, never bound by the suite
REFUSED_PORT = 49449


def _failure(engine: sa.Engine, statement: sa.Executable) -> BaseException:
    with pytest.raises(sa.exc.DBAPIError) as failed, engine.begin() as conn:
        conn.execute(statement)
    return failed.value


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_missing_column_or_table_is_a_schema_problem_not_an_outage(kind: str, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        store = open_store(url)
        try:
            with store.engine.begin() as conn:   # a store whose schema is not this code's
                conn.execute(sa.text("ALTER TABLE responses DROP COLUMN provider"))
                conn.execute(sa.text("DROP TABLE ui_sessions"))
            row = {"id": "resp_1", "owner": "o", "created_at": time.time(), "model": "m", "provider": "fake",
                   "input_items": [], "response": {}}
            for statement, missing in ((sa.select(schema.responses), "provider"),
                                       (schema.responses.insert().values(row), "provider"),
                                       (sa.select(schema.ui_sessions), "ui_sessions")):
                exc = _failure(store.engine, statement)
                assert outage(exc) is None, exc
                said = schema_problem(exc)
                assert said is not None and missing in said, (said, exc)
                assert "SELECT" not in said and "INSERT" not in said and "resp_1" not in said   # one line, no SQL
        finally:
            store.close()


def test_a_locked_sqlite_database_is_still_an_outage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    open_store(url).close()
    holder = sa.create_engine(url)
    waiter = sa.create_engine(url, connect_args={"timeout": 0})   # no busy wait: locked at once
    try:
        with holder.connect() as held:
            held.exec_driver_sql("BEGIN EXCLUSIVE")
            exc = _failure(waiter, sa.text("DELETE FROM ui_sessions"))
            held.exec_driver_sql("ROLLBACK")
        assert "locked" in str(exc)
        assert outage(exc) is not None and schema_problem(exc) is None
    finally:
        holder.dispose()
        waiter.dispose()


@pytest.mark.postgres
def test_a_postgres_that_refuses_connections_is_still_an_outage() -> None:
    engine = sa.create_engine(f"postgresql+psycopg://clv:secret@127.0.0.1:{REFUSED_PORT}/clv",
                              connect_args={"connect_timeout": 2})
    try:
        exc = _failure(engine, sa.text("SELECT 1"))
        assert isinstance(exc, sa.exc.OperationalError)
        assert outage(exc) is not None and schema_problem(exc) is None
    finally:
        engine.dispose()
