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

A shipped migration is never edited: a store that ran it has it recorded as done and will not
run it again, so an edit reaches new stores only (0003 gained ``responses.provider`` and 0004
its day rollups that way, and 0012 and 0013 had to bring the stores made before up to date).
A change to the schema is a new migration.

Only ``cloverleaf serve`` (and the SDK's own gateway) migrate. The commands that only read a
store (``existing=True``) never do: run beside a live server of an older version they would
change its schema under it (a backfill done once, before that server's later calls). They
refuse a store that is behind (:class:`SchemaBehind`). Every opening refuses a store that
records a migration this code does not have (:class:`SchemaAhead`): a newer cloverleaf upgraded it,
and this one would write to tables it does not know the shape of.
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


class SchemaBehind(Exception):
    """``migrate(existing=True)`` found a store that lacks migrations this code has: ``version``
    is the newest it has, ``newest`` this code's, ``missing`` the numbers not applied."""

    def __init__(self, version: int, newest: int, missing: list[int]) -> None:
        super().__init__(version, newest, missing)
        self.version, self.newest, self.missing = version, newest, missing


class SchemaAhead(Exception):
    """The store records migrations this code does not have (``unknown``): a newer cloverleaf
    upgraded it. ``newest``: the newest migration this code has."""

    def __init__(self, unknown: list[int], newest: int) -> None:
        super().__init__(unknown, newest)
        self.unknown, self.newest = unknown, newest


def migrate(engine: sa.Engine, *, existing: bool = False) -> int:
    """Bring the database up to the newest schema; returns the version it is at. ``existing``:
    a read-only opening, which changes nothing — a database that is no cloverleaf store raises
    :class:`NoStoreHere`, a store behind this code :class:`SchemaBehind`. Either way a store
    ahead of this code raises :class:`SchemaAhead`, and is left as it was."""
    if existing:
        with engine.connect() as conn:   # no write lock: a live server's writes never wait for a reader
            return _check(conn)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")   # the driver stays out of the way
            conn.exec_driver_sql("BEGIN IMMEDIATE")                # waits (busy_timeout) for another migrator
            try:
                version = _upgrade(conn)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
            return version
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        return _upgrade(conn)


def _check(conn: sa.Connection) -> int:
    """The version of a store a read-only command may read: one at this code's schema."""
    if not sa.inspect(conn).has_table("schema_version"):   # an app's own database behind a mistyped [store] url
        raise NoStoreHere(sorted(sa.inspect(conn).get_table_names()))
    applied = _applied(conn)
    missing = [number for number, _ in available() if number not in applied]
    if missing:
        raise SchemaBehind(max(applied, default=0), available()[-1][0], missing)
    return current_version(conn)


def _applied(conn: sa.Connection) -> set[int]:
    """The migrations the store records; :class:`SchemaAhead` when one of them is not this code's
    (checked before anything is written: a newer version's store is left as it was)."""
    applied = {int(v) for v in conn.execute(sa.text("SELECT version FROM schema_version")).scalars()}
    known = {number for number, _ in available()}
    if applied - known:
        raise SchemaAhead(sorted(applied - known), max(known))
    return applied


def _upgrade(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at FLOAT NOT NULL)"))
    applied = _applied(conn)
    for number, module in available():
        if number not in applied:   # by number, not by "above the newest": see the module docstring
            module.upgrade(conn)
            conn.execute(sa.text("INSERT INTO schema_version (version, applied_at) VALUES (:v, :t)"),
                         {"v": number, "t": time.time()})
    return current_version(conn)
