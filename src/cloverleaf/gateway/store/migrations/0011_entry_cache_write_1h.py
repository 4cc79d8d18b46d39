"""0011: a model entry's one-hour prompt-cache write rate (``model_entries.cache_write_1h_cost_per_1k``).

Anthropic bills a write to its one-hour cache (``ttl: "1h"``) at twice the input rate, against
1.25x for the five-minute cache; an entry with a negotiated price must be able to say both, as
``[[models]]`` entries in cloverleaf.toml can. NULL: the built-in row's ratio to input, else the
five-minute write rate.
"""

from __future__ import annotations

import sqlalchemy as sa


def upgrade(conn: sa.Connection) -> None:
    conn.execute(sa.text("ALTER TABLE model_entries ADD COLUMN cache_write_1h_cost_per_1k FLOAT"))
