"""The store's waits for PostgreSQL are bounded (``gateway/store/postgres.py``): a database that
stops answering fails the work waiting on it instead of holding its thread for ever, and the
store is usable again once the database answers. The deadlines are shortened here; the
defaults are seconds long."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from cloverleaf.gateway.store import open_store, postgres
from cloverleaf.gateway.store.outage import outage

from .postgres_faults import FaultProxy, proxied_postgres
from .stores import fresh_postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "STATEMENT_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(postgres, "PING_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT_SECONDS", 2)   # libpq's least


@pytest.fixture
def proxied(short_deadlines: None) -> Iterator[tuple[str, FaultProxy]]:
    with proxied_postgres() as found:
        yield found


def _outcome(work: Callable[[], Any]) -> BaseException | None:
    """Run ``work`` on a thread; what it raised (None: it returned). A wait that never ends
    fails the test instead of hanging it."""
    out: list[BaseException | None] = []

    def run() -> None:
        try:
            work()
            out.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert out, "the store is still waiting for a database that does not answer"
    return out[0]


def test_a_database_that_stops_answering_fails_the_waiting_work_and_the_store_recovers(
        proxied: tuple[str, FaultProxy]) -> None:
    url, proxy = proxied
    store = open_store(url)
    try:
        with store.engine.connect() as conn:   # a connection mid-transaction when the database stops
            conn.execute(sa.text("SELECT 1"))
            proxy.freeze()
            failed = _outcome(lambda: conn.execute(sa.text("SELECT 2")))
        assert isinstance(failed, sa.exc.OperationalError) and outage(failed) is not None
        # a new checkout: the pooled connection's ping and then a new connection both give up
        assert isinstance(_outcome(store.ping), sa.exc.OperationalError)
        proxy.restore()
        assert _outcome(store.ping) is None
        assert _outcome(lambda: store.get_virtual_key("none")) is None
    finally:
        proxy.restore()
        store.close()


@pytest.mark.slow
def test_maintenance_runs_without_the_deadline(short_deadlines: None) -> None:
    """Migrations and the retention cleanup may rightly take longer than a request's query."""
    with fresh_postgres_database() as url:
        store = open_store(url)
        try:
            slow = sa.text("SELECT pg_sleep(3)")

            def bounded() -> None:
                with store.engine.connect() as conn:
                    conn.execute(slow)

            def maintenance() -> None:
                with postgres.unbounded(), store.engine.connect() as conn:
                    conn.execute(slow)

            assert isinstance(_outcome(bounded), sa.exc.OperationalError)
            assert _outcome(maintenance) is None
        finally:
            store.close()
