"""0003: stored Responses API objects (``POST /v1/responses`` with ``store: true``)."""

from __future__ import annotations

import sqlalchemy as sa


def upgrade(conn: sa.Connection) -> None:
    md = sa.MetaData()
    sa.Table("responses", md,
             sa.Column("id", sa.String(64), primary_key=True),
             sa.Column("owner", sa.String(128), nullable=False),
             sa.Column("created_at", sa.Float, nullable=False),
             sa.Column("expires_at", sa.Float, index=True),
             sa.Column("model", sa.String(255), nullable=False),
             sa.Column("provider", sa.String(64)),
             sa.Column("previous_response_id", sa.String(64)),
             sa.Column("input_items", sa.JSON, nullable=False),
             sa.Column("response", sa.JSON, nullable=False))
    md.create_all(conn)
