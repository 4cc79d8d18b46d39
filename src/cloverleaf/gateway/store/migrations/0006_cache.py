"""0006: calls.cache — whether a call was answered from the response cache (hit | miss)."""

from __future__ import annotations

import sqlalchemy as sa


def upgrade(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE calls ADD COLUMN cache VARCHAR(16)"))
