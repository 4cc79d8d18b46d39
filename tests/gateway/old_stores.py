"""Stores as older cloverleaf versions left them, built in the test itself (never from git
history): the migrations this code has, up to a number, then the schema altered to what a
shipped version's migration made before it was edited."""

from __future__ import annotations

import sqlalchemy as sa

from cloverleaf.gateway.store import create_engine, migrations

#: ``call_rollups`` as migration 0004 first shipped (6530631): keyed (grain, bucket, dim, value)
OLD_ROLLUP_KEY = ("grain", "bucket", "dim", "value")


def migrated(url: str, upto: int) -> sa.Engine:
    """An engine on ``url`` with migrations 1..``upto`` applied and recorded, as a version
    whose newest migration was ``upto`` leaves a store."""
    engine: sa.Engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at FLOAT NOT NULL)"))
        for number, module in migrations.available():
            if number <= upto:
                module.upgrade(conn)
                conn.execute(sa.text("INSERT INTO schema_version VALUES (:v, 0)"), {"v": number})
    return engine


def versions(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return sorted(int(v) for v in conn.execute(sa.text("SELECT version FROM schema_version")).scalars())


def columns(engine: sa.Engine, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns(table)}


def rollup_key(engine: sa.Engine) -> list[str]:
    return list(sa.inspect(engine).get_pk_constraint("call_rollups")["constrained_columns"])


def drop_responses_provider(engine: sa.Engine) -> None:
    """``responses`` as 0003 first shipped (d329ebd): no ``provider`` column."""
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE responses DROP COLUMN provider"))


def rekey_rollups_as_first_shipped(engine: sa.Engine) -> None:
    """``call_rollups`` made again, empty, with the primary key 0004 first shipped with."""
    with engine.begin() as conn:
        table = sa.Table("call_rollups", sa.MetaData(), autoload_with=conn)
        rows = [dict(row) for row in conn.execute(sa.select(table)).mappings()]
        table.drop(conn)
        old = sa.Table("call_rollups", sa.MetaData(),
                       *(sa.Column(c.name, c.type, nullable=False, autoincrement=False,
                                   primary_key=c.name in OLD_ROLLUP_KEY)
                         for c in sorted(table.columns, key=_old_position)))
        old.create(conn)
        if rows:
            conn.execute(old.insert(), rows)


def _old_position(column: sa.Column[object]) -> int:
    """The old table's column order: its key's columns first, in the key's order."""
    return OLD_ROLLUP_KEY.index(column.name) if column.name in OLD_ROLLUP_KEY else len(OLD_ROLLUP_KEY)
