"""0014: a virtual key's project: every call made with the key runs as that project (its
budgets and spend by project), as an SDK call with ``project=`` does.

NULL means the key belongs to no project (as every key made before this migration).
"""

from __future__ import annotations

import sqlalchemy as sa


def upgrade(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE virtual_keys ADD COLUMN project VARCHAR(255)"))
