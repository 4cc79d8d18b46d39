"""Store URLs for tests: a SQLite file, or a fresh database on the test PostgreSQL server."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import postgres_url


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty database for one test and drop it afterwards; yields its URL."""
    base = postgres_url()
    if not base:
        pytest.skip("CLOVERLEAF_TEST_POSTGRES_URL is not set (run scripts/services.sh)")
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(base)
    name = f"cl_test_{uuid.uuid4().hex[:12]}"
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def store_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        with fresh_postgres_database() as url:
            yield url


STORE_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
