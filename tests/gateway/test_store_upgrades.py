"""Stores made by older cloverleaf versions, opened by this one, on SQLite and PostgreSQL.

Migration 0003 was edited after it shipped, so a store migrated by its first version lacks
what the edit added: ``responses.provider`` (every ``/v1/responses`` request failed on such a
store, forever). Migration 0012 brings such stores up to date and leaves stores made since as
they are."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from cloverleaf.gateway.store import migrations, open_store, schema

from .old_stores import columns, drop_responses_provider, migrated, versions
from .stores import STORE_KINDS, store_url

NEWEST = migrations.available()[-1][0]
BEFORE_FIXES = 11   # the newest migration before 0012 (responses.provider)


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
