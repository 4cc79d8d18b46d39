"""The store's tables as SQLAlchemy Core objects: the shape the code reads and writes.

Migrations (``migrations/NNNN_*.py``) create and evolve the real tables; a test checks that
migrating an empty database yields exactly these. Times are epoch seconds (floats) so the
same SQL works on SQLite and PostgreSQL; JSON columns hold free-form labels, never secrets.
There are no foreign keys: call records arrive in batches, in any order.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)

traces = sa.Table(
    "traces", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("completed_at", sa.Float),
    sa.Column("metadata", sa.JSON, nullable=False),
)

calls = sa.Table(
    "calls", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("trace_id", sa.String(64)),                            # indexed where set (below)
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("operation", sa.String(16), nullable=False),          # chat | stream | embed | image
    sa.Column("requested_model", sa.String(255), nullable=False),   # what the caller asked for (route)
    sa.Column("target", sa.String(255)),                            # the target that answered
    sa.Column("provider", sa.String(64)),
    sa.Column("model", sa.String(255)),                             # the model the provider reported
    sa.Column("status", sa.String(16), nullable=False),             # ok | error | interrupted | cancelled
    sa.Column("error_type", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("latency_ms", sa.Float),
    sa.Column("ttft_ms", sa.Float),
    sa.Column("input_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("output_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cached_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("reasoning_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cost", sa.Float),
    sa.Column("project", sa.String(255)),
    sa.Column("key_id", sa.String(64)),                              # indexed where set (below)
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("cache", sa.String(16)),                              # hit | miss | NULL (cache not used)
    sa.Column("charged", sa.Float),             # budgets' charge for a call of unknown cost (0010)
    # the latency of the call's only attempt when it succeeded on the call's target: that
    # attempt is stored here, not as a row of ``attempts`` (0008; see store/calls.py)
    sa.Column("attempt_ms", sa.Float),
)

attempts = sa.Table(
    "attempts", metadata,
    sa.Column("call_id", sa.String(64), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("target", sa.String(255), nullable=False),
    sa.Column("provider", sa.String(64)),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error_type", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("http_status", sa.Integer),
    sa.Column("latency_ms", sa.Float),
)

budgets = sa.Table(
    "budgets", metadata,
    sa.Column("scope", sa.String(255), primary_key=True),    # route:x | project:x | key:x
    sa.Column("period", sa.String(16), primary_key=True),    # total | 2025-01-31 | 2025-01
    sa.Column("spent", sa.Float, nullable=False, default=0.0),
    sa.Column("reserved", sa.Float, nullable=False, default=0.0),
    sa.Column("updated_at", sa.Float, nullable=False),
)

budget_reservations = sa.Table(
    "budget_reservations", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("scope", sa.String(255), nullable=False),
    sa.Column("period", sa.String(16), nullable=False),
    sa.Column("amount", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
)

virtual_keys = sa.Table(
    "virtual_keys", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("secret_hash", sa.String(255), nullable=False, unique=True),
    sa.Column("name", sa.String(255)),
    sa.Column("allowed_models", sa.JSON, nullable=False),
    sa.Column("budget", sa.Float),
    sa.Column("budget_period", sa.String(16)),
    sa.Column("spent", sa.Float, nullable=False, default=0.0),
    sa.Column("rpm", sa.Integer),
    sa.Column("tpm", sa.Integer),
    sa.Column("expires_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("privacy", sa.String(16)),                       # NULL | "any" | "local-only" (0005)
    sa.Column("project", sa.String(255)),                      # the project of every call it makes (0014)
)

model_entries = sa.Table(
    "model_entries", metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("identifier", sa.String(255), nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("base_url", sa.String(1024)),
    sa.Column("api_key_encrypted", sa.Text),                  # opaque; the server encrypts/decrypts
    sa.Column("api_key_env", sa.String(255)),
    sa.Column("is_public", sa.Boolean, nullable=False, default=True),
    sa.Column("input_cost_per_1k", sa.Float),
    sa.Column("output_cost_per_1k", sa.Float),
    sa.Column("cached_input_cost_per_1k", sa.Float),
    sa.Column("cache_write_cost_per_1k", sa.Float),              # 0010
    sa.Column("cache_write_1h_cost_per_1k", sa.Float),           # 0011
    sa.Column("context_window", sa.Integer),
    sa.Column("additional_config", sa.JSON, nullable=False),
    sa.Column("data_retention_days", sa.Integer),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

#: Responses API objects kept for ``GET /v1/responses/{id}`` and ``previous_response_id``.
#: ``owner`` scopes a row to the key that made it (``key:<id>``, ``master`` or ``open``);
#: ``input_items`` are this request's own items (a conversation is the chain of
#: ``previous_response_id``); ``expires_at`` is None when kept until deleted.
responses = sa.Table(
    "responses", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, index=True),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("provider", sa.String(64)),
    sa.Column("previous_response_id", sa.String(64)),
    sa.Column("input_items", sa.JSON, nullable=False),
    sa.Column("response", sa.JSON, nullable=False),
    sa.Column("privacy", sa.String(16)),   # 0009: "local-only" when the turn ran under it
)

# 0004: what the dashboard reads. Composite indexes let the traces list page through one
# filter's calls newest first without reading other calls; the rollups (see rollups.py) answer
# every chart and spend table without touching ``calls``.
sa.Index("ix_calls_status_created", calls.c.status, calls.c.created_at)
sa.Index("ix_calls_route_created", calls.c.requested_model, calls.c.created_at)
sa.Index("ix_calls_target_created", calls.c.target, calls.c.created_at)
# partial: most calls have no trace, key or project, and every query asks for one value (0007)
sa.Index("ix_calls_trace_id", calls.c.trace_id, sqlite_where=calls.c.trace_id.isnot(None),
         postgresql_where=calls.c.trace_id.isnot(None))
sa.Index("ix_calls_key_created", calls.c.key_id, calls.c.created_at, sqlite_where=calls.c.key_id.isnot(None),
         postgresql_where=calls.c.key_id.isnot(None))
sa.Index("ix_calls_project_created", calls.c.project, calls.c.created_at, sqlite_where=calls.c.project.isnot(None),
         postgresql_where=calls.c.project.isnot(None))

call_rollups = sa.Table(
    "call_rollups", metadata,
    # primary key in this order: a view reads one grain and one dimension over a time range
    sa.Column("grain", sa.Integer, primary_key=True, autoincrement=False),   # 60 | 3600 | 86400 (seconds)
    sa.Column("dim", sa.String(16), primary_key=True),       # total | route | model | provider | key | project
    sa.Column("bucket", sa.BigInteger, primary_key=True, autoincrement=False),  # epoch seconds, grain-aligned
    sa.Column("value", sa.String(255), primary_key=True),    # '' for none (and for total)
    sa.Column("requests", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("cached_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost", sa.Float, nullable=False),
    sa.Column("latency_sum_ms", sa.Float, nullable=False),
    sa.Column("latency_count", sa.Integer, nullable=False),
    sa.Column("ttft_sum_ms", sa.Float, nullable=False),
    sa.Column("ttft_count", sa.Integer, nullable=False),
    *(sa.Column(f"lat_{i:02d}", sa.Integer, nullable=False) for i in range(20)),
)

ui_sessions = sa.Table(
    "ui_sessions", metadata,
    sa.Column("id", sa.String(64), primary_key=True),         # SHA-256 of the cookie's token, never the token
    sa.Column("kind", sa.String(16), nullable=False),         # master | key
    sa.Column("key_id", sa.String(64)),
    sa.Column("principal", sa.String(64), nullable=False),    # fingerprint: a rotated master key ends its sessions
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

change_counters = sa.Table(
    "change_counters", metadata,
    sa.Column("name", sa.String(64), primary_key=True),      # e.g. virtual_keys
    sa.Column("version", sa.Integer, nullable=False),        # bumped with every change to that table
)
