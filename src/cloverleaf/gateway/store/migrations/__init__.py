"""Numbered schema migrations, applied in order, each exactly once, recorded in ``schema_version``.

A migration is a module ``NNNN_what.py`` with ``upgrade(conn)``. Each one describes its own
tables (never importing ``schema.py``, which is the *latest* shape), so old migrations keep
meaning what they meant. All pending migrations run in one transaction; on PostgreSQL a
transaction-scoped advisory lock keeps two starting processes from migrating at once.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import time
from types import ModuleType

import sqlalchemy as sa

_NAME = re.compile(r"^(\d{4})_\w+$")
_ADVISORY_LOCK_ID = 0x636C6F76  # "clov"


def available() -> list[tuple[int, ModuleType]]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        m = _NAME.match(info.name)
        if m:
            found.append((int(m.group(1)), importlib.import_module(f"{__name__}.{info.name}")))
    return sorted(found, key=lambda pair: pair[0])


def current_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(sa.text("SELECT COALESCE(MAX(version), 0) FROM schema_version")).scalar_one())


def migrate(engine: sa.Engine) -> int:
    """Bring the database up to the newest schema; returns the version it is at."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        if not sa.inspect(conn).has_table("schema_version"):
            conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                                 "applied_at FLOAT NOT NULL)"))
        version = current_version(conn)
        for number, module in available():
            if number > version:
                module.upgrade(conn)
                conn.execute(sa.text("INSERT INTO schema_version (version, applied_at) VALUES (:v, :t)"),
                             {"v": number, "t": time.time()})
                version = number
        return version
