"""0012: ``responses.provider`` on stores that ran 0003 before it had that column.

Migration 0003 was edited after it shipped: its first version (d329ebd) made ``responses``
without ``provider``, and a store migrated by it has 0003 recorded as done, so it never got the
column. Every ``/v1/responses`` request then failed on it (read or written). The column is
added here where it is missing; a store made since has it from 0003, and is left as it is.
"""

from __future__ import annotations

import sqlalchemy as sa


def upgrade(conn: sa.Connection) -> None:
    if "provider" not in {column["name"] for column in sa.inspect(conn).get_columns("responses")}:
        conn.execute(sa.text("ALTER TABLE responses ADD COLUMN provider VARCHAR(64)"))
