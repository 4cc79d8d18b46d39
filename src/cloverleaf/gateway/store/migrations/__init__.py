"""Numbered schema migrations, applied in order, each exactly once, recorded in ``schema_version``.

A migration runs when its number is not recorded yet, even if a higher one is: features built
side by side land with their own numbers in any order, and a database migrated in between
still gets the lower one. Migrations therefore never depend on one another except by number
order, and each touches only its own tables and columns.

A migration is a module ``NNNN_what.py`` with ``upgrade(conn)``. Each one describes its own
tables (never importing ``schema.py``, which is the *latest* shape), so old migrations keep
meaning what they meant. All pending migrations run in one transaction, which also keeps
two processes starting at once from migrating twice: on PostgreSQL a transaction-scoped
advisory lock, on SQLite ``BEGIN IMMEDIATE`` (the database's write lock, taken before the
version is read). SQLite needs the transaction spelled out because Python's sqlite3 driver
otherwise commits each ``CREATE TABLE`` on its own, so a crash mid-migration would leave
half a schema behind.
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


class NoStoreHere(Exception):
    """``migrate(existing=True)`` found no ``schema_version``: this database is not a cloverleaf
    store (``tables`` names what it holds instead; empty when it holds nothing)."""

    def __init__(self, tables: list[str]) -> None:
        super().__init__(tables)
        self.tables = tables


def migrate(engine: sa.Engine, *, existing: bool = False) -> int:
    """Bring the database up to the newest schema; returns the version it is at. ``existing``:
    only a database that is a cloverleaf store already (an older version is upgraded); any
    other raises :class:`NoStoreHere` and is left as it was."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")   # the driver stays out of the way
            conn.exec_driver_sql("BEGIN IMMEDIATE")                # waits (busy_timeout) for another migrator
            try:
                version = _upgrade(conn, existing=existing)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
            return version
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        return _upgrade(conn, existing=existing)


def _upgrade(conn: sa.Connection, *, existing: bool = False) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        if existing:   # an app's own database behind a mistyped [store] url: never written into
            raise NoStoreHere(sorted(sa.inspect(conn).get_table_names()))
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at FLOAT NOT NULL)"))
    applied = {int(v) for v in conn.execute(sa.text("SELECT version FROM schema_version")).scalars()}
    for number, module in available():
        if number not in applied:   # by number, not by "above the newest": see the module docstring
            module.upgrade(conn)
            conn.execute(sa.text("INSERT INTO schema_version (version, applied_at) VALUES (:v, :t)"),
                         {"v": number, "t": time.time()})
    return current_version(conn)
