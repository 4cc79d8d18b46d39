"""The server on stores other versions left: one made by 0003's first version (no
``responses.provider``) serves ``/v1/responses`` once this version upgraded it (it answered
503 ``store_unavailable`` to every such request, forever); a store whose schema still lacks a
column is a 500 logged naming it, not a 503 telling the client to retry; a store a newer
cloverleaf upgraded keeps the server from starting."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cloverleaf.gateway.store import StoreAhead, migrations, open_store
from cloverleaf.server.app import create_app
from tests.gateway.old_stores import drop_responses_provider, migrated

from .conftest import settings, start_live, stop_live

NEWEST = migrations.available()[-1][0]
ASK = {"model": "fake/echo", "input": "remember 42"}


def test_a_store_made_before_responses_provider_serves_responses_once_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = migrated(url, 11)          # 0012 and 0013 not run yet
    drop_responses_provider(old)     # 0003 as d329ebd shipped it
    old.dispose()
    live = start_live(settings(store={"url": url}))
    try:
        with live.http() as http:
            made = http.post("/v1/responses", json=ASK)
            assert made.status_code == 200, made.text
            again = http.get(f"/v1/responses/{made.json()['id']}")
            assert again.status_code == 200 and again.json()["id"] == made.json()["id"]
            chained = http.post("/v1/responses", json={**ASK, "input": "and?", "previous_response_id": again.json()["id"]})
            assert chained.status_code == 200, chained.text
    finally:
        stop_live(live)


def test_a_schema_lacking_a_column_is_a_500_logged_naming_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'changed.db'}"
    open_store(url).close()
    with sqlite3.connect(tmp_path / "changed.db") as conn:   # changed by hand: every migration recorded
        conn.execute("ALTER TABLE responses DROP COLUMN provider")
    live = start_live(settings(store={"url": url}))
    try:
        with caplog.at_level("WARNING", logger="cloverleaf.server"), live.http() as http:
            r = http.post("/v1/responses", json=ASK)
        assert r.status_code == 500, r.text
        error = r.json()["error"]
        assert error["code"] == "internal_error" and "retry" not in error["message"]
        [logged] = [record for record in caplog.records if record.levelname == "ERROR"]
        assert logged.exc_info is None and not [record for record in caplog.records if "unavailable" in record.getMessage()]
        message = logged.getMessage()
        assert "schema lacks a table or column" in message and "provider" in message, message
        assert "INSERT" not in message and "remember 42" not in message   # no SQL, no prompt
    finally:
        stop_live(live)


def test_a_store_a_newer_cloverleaf_upgraded_keeps_the_server_from_starting(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    open_store(url).close()
    with sqlite3.connect(tmp_path / "newer.db") as conn:
        conn.execute("INSERT INTO schema_version VALUES (?, 0)", (NEWEST + 1,))
    with pytest.raises(StoreAhead, match=f"upgraded by a newer cloverleaf \\(migration {NEWEST + 1};"):
        create_app(settings(store={"url": url}))
