"""0009: the privacy policy a stored Response ran under (``"local-only"``, or NULL for none).

A conversation continued with ``previous_response_id`` replays every earlier turn to the new
call's model, so the new call inherits the strictest policy of the turns it replays.
"""

from __future__ import annotations

import sqlalchemy as sa


def upgrade(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE responses ADD COLUMN privacy VARCHAR(16)"))
