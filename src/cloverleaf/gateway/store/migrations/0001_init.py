"""0001: calls, attempts, traces, budgets and reservations, virtual keys, model entries."""

from __future__ import annotations

import sqlalchemy as sa


def upgrade(conn: sa.Connection) -> None:
    md = sa.MetaData()
    sa.Table("traces", md,
             sa.Column("id", sa.String(64), primary_key=True),
             sa.Column("created_at", sa.Float, nullable=False),
             sa.Column("completed_at", sa.Float),
             sa.Column("metadata", sa.JSON, nullable=False))
    sa.Table("calls", md,
             sa.Column("id", sa.String(64), primary_key=True),
             sa.Column("trace_id", sa.String(64), index=True),
             sa.Column("created_at", sa.Float, nullable=False, index=True),
             sa.Column("operation", sa.String(16), nullable=False),
             sa.Column("requested_model", sa.String(255), nullable=False),
             sa.Column("target", sa.String(255)),
             sa.Column("provider", sa.String(64)),
             sa.Column("model", sa.String(255)),
             sa.Column("status", sa.String(16), nullable=False),
             sa.Column("error_type", sa.String(64)),
             sa.Column("error_message", sa.Text),
             sa.Column("latency_ms", sa.Float),
             sa.Column("ttft_ms", sa.Float),
             sa.Column("input_tokens", sa.Integer, nullable=False),
             sa.Column("output_tokens", sa.Integer, nullable=False),
             sa.Column("cached_tokens", sa.Integer, nullable=False),
             sa.Column("reasoning_tokens", sa.Integer, nullable=False),
             sa.Column("cost", sa.Float),
             sa.Column("project", sa.String(255)),
             sa.Column("key_id", sa.String(64), index=True),
             sa.Column("metadata", sa.JSON, nullable=False))
    sa.Table("attempts", md,
             sa.Column("call_id", sa.String(64), primary_key=True),
             sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("target", sa.String(255), nullable=False),
             sa.Column("provider", sa.String(64)),
             sa.Column("ok", sa.Boolean, nullable=False),
             sa.Column("error_type", sa.String(64)),
             sa.Column("error_message", sa.Text),
             sa.Column("http_status", sa.Integer),
             sa.Column("latency_ms", sa.Float))
    sa.Table("budgets", md,
             sa.Column("scope", sa.String(255), primary_key=True),
             sa.Column("period", sa.String(16), primary_key=True),
             sa.Column("spent", sa.Float, nullable=False),
             sa.Column("reserved", sa.Float, nullable=False),
             sa.Column("updated_at", sa.Float, nullable=False))
    sa.Table("budget_reservations", md,
             sa.Column("id", sa.String(64), primary_key=True),
             sa.Column("scope", sa.String(255), nullable=False),
             sa.Column("period", sa.String(16), nullable=False),
             sa.Column("amount", sa.Float, nullable=False),
             sa.Column("created_at", sa.Float, nullable=False, index=True))
    sa.Table("virtual_keys", md,
             sa.Column("id", sa.String(64), primary_key=True),
             sa.Column("secret_hash", sa.String(255), nullable=False, unique=True),
             sa.Column("name", sa.String(255)),
             sa.Column("allowed_models", sa.JSON, nullable=False),
             sa.Column("budget", sa.Float),
             sa.Column("budget_period", sa.String(16)),
             sa.Column("spent", sa.Float, nullable=False),
             sa.Column("rpm", sa.Integer),
             sa.Column("tpm", sa.Integer),
             sa.Column("expires_at", sa.Float),
             sa.Column("revoked_at", sa.Float),
             sa.Column("created_at", sa.Float, nullable=False),
             sa.Column("metadata", sa.JSON, nullable=False))
    sa.Table("model_entries", md,
             sa.Column("name", sa.String(255), primary_key=True),
             sa.Column("identifier", sa.String(255), nullable=False),
             sa.Column("provider", sa.String(64), nullable=False),
             sa.Column("base_url", sa.String(1024)),
             sa.Column("api_key_encrypted", sa.Text),
             sa.Column("api_key_env", sa.String(255)),
             sa.Column("is_public", sa.Boolean, nullable=False),
             sa.Column("input_cost_per_1k", sa.Float),
             sa.Column("output_cost_per_1k", sa.Float),
             sa.Column("cached_input_cost_per_1k", sa.Float),
             sa.Column("context_window", sa.Integer),
             sa.Column("additional_config", sa.JSON, nullable=False),
             sa.Column("data_retention_days", sa.Integer),
             sa.Column("created_at", sa.Float, nullable=False),
             sa.Column("updated_at", sa.Float, nullable=False))
    md.create_all(conn)
