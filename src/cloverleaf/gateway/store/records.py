"""The values the store writes and reads: plain dataclasses, one per table.

The same :class:`CallRecord` is written by the gateway and read back by ``cloverleaf
traces``. A model entry holds the server's *encrypted* key text, which the store treats as
opaque, but its ``base_url`` and ``additional_config`` may carry credentials of their own (a
proxy password, Bedrock's ``aws_secret_access_key``), so its repr masks them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..._secret_repr import masked_repr


@dataclass(slots=True)
class AttemptRecord:
    target: str
    provider: str | None
    ok: bool
    error_type: str | None = None
    error_message: str | None = None
    http_status: int | None = None
    latency_ms: float | None = None


@dataclass(slots=True)
class CallRecord:
    id: str
    created_at: float
    operation: str
    requested_model: str
    status: str                       # ok | error | interrupted | cancelled
    trace_id: str | None = None
    target: str | None = None
    provider: str | None = None
    model: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None
    project: str | None = None
    key_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attempts: list[AttemptRecord] = field(default_factory=list)
    cache: str | None = None          # hit | miss | None (the response cache was not used)
    #: What the call's budgets were charged when its ``cost`` is unknown (None) but the provider
    #: may have billed it (a stream cut after output, an answer without usage): its reservation.
    #: ``cost`` stays what the call really cost, when known.
    charged: float | None = None

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _CALL_COLUMNS}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_CALL_COLUMNS = tuple(f.name for f in fields(CallRecord) if f.name != "attempts")


@dataclass(slots=True)
class TraceRecord:
    id: str
    created_at: float
    completed_at: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    calls: list[CallRecord] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        return self.completed_at is not None


@dataclass(frozen=True, slots=True)
class SpendRow:
    """One line of ``cloverleaf spend --by ...``."""

    group: str
    calls: int
    input_tokens: int
    output_tokens: int
    #: Known costs plus what budgets were charged for calls whose cost is unknown: the ledger's figure.
    cost: float
    #: Answered or charged calls whose real cost is unknown (no price, no usage reported, cut off):
    #: ``cost`` holds their charges, or nothing for them.
    unknown_cost: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class VirtualKeyRow:
    id: str
    secret_hash: str = field(repr=False)
    name: str | None = None
    allowed_models: list[str] = field(default_factory=list)
    budget: float | None = None
    budget_period: str | None = None
    spent: float = 0.0
    rpm: int | None = None
    tpm: int | None = None
    expires_at: float | None = None
    revoked_at: float | None = None
    created_at: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)
    privacy: str | None = None          # "local-only": every call made with the key stays local
    project: str | None = None          # every call made with the key runs as this project (0014)


@dataclass(slots=True)
class ModelEntryRow:
    name: str
    identifier: str
    provider: str
    base_url: str | None = None
    api_key_encrypted: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    is_public: bool = True
    input_cost_per_1k: float | None = None
    output_cost_per_1k: float | None = None
    cached_input_cost_per_1k: float | None = None
    cache_write_cost_per_1k: float | None = None
    cache_write_1h_cost_per_1k: float | None = None
    context_window: int | None = None
    additional_config: dict[str, Any] = field(default_factory=dict)
    data_retention_days: int | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def __repr__(self) -> str:
        return masked_repr(self)   # base_url and additional_config may hold credentials (_secret_repr)
