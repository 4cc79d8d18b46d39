"""0002: change counters — a version number per table whose rows every process caches.

The server caches virtual keys (hash → policy) in every worker; a revoke or an update made
through one worker must reach the others within a second. Each change bumps the counter in
the same transaction, and each process reads the one row once a second, off the request
path, dropping its cache when the number moved.
"""

from __future__ import annotations

import sqlalchemy as sa


def upgrade(conn: sa.Connection) -> None:
    md = sa.MetaData()
    sa.Table("change_counters", md,
             sa.Column("name", sa.String(64), primary_key=True),
             sa.Column("version", sa.Integer, nullable=False))
    md.create_all(conn)
