"""0005: a virtual key's privacy policy (``"local-only"`` keeps every call it makes local).

NULL means the key adds no restriction: ``[privacy] default`` and the route decide.
"""

from __future__ import annotations

import sqlalchemy as sa


def upgrade(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE virtual_keys ADD COLUMN privacy VARCHAR(16)"))
