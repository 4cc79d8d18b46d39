"""0010: what budgets were charged for a call whose cost is unknown (``calls.charged``), and a
model entry's prompt-cache write rate (``model_entries.cache_write_cost_per_1k``).

A call the provider may have billed without saying what it used (a stream cut after output,
an answer without usage) is charged its reservation; recording that apart from ``cost``
keeps ``cost`` the call's real cost while spend reports agree with the budget ledger.
"""

from __future__ import annotations

import sqlalchemy as sa


def upgrade(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE calls ADD COLUMN charged FLOAT"))
    conn.execute(sa.text("ALTER TABLE model_entries ADD COLUMN cache_write_cost_per_1k FLOAT"))
