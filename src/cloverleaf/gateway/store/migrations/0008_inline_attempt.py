"""0008: calls.attempt_ms — a call's only attempt, when it succeeded on the call's target,
is kept in the call's row instead of a row of ``attempts``.

Nearly every call is answered by its first attempt, and that attempt's row repeats the call's
target and provider, says ``ok``, and adds one figure: the upstream's latency. Writing it cost
the store's writer a second table and primary-key insertion per call (about 15,000
instructions of the 80,000 a recorded call costs, counted with callgrind). Readers rebuild
the attempt from the call row (``store/calls.py``); calls recorded before this keep their
``attempts`` rows and read the same.
"""

from __future__ import annotations

import sqlalchemy as sa


def upgrade(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE calls ADD COLUMN attempt_ms FLOAT"))
