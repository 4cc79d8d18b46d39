"""Who a call is for: the per-call facts the gateway needs beyond the request itself.

The SDK passes an empty context; the server fills it from the virtual key that made the
request, so per-key limits, budgets and allowed models are enforced by the same gateway
code that enforces route and project limits.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class KeyPolicy:
    """Limits attached to a virtual key (server) — enforced by the gateway."""

    key_id: str
    allowed_models: tuple[str, ...] = ()   # empty: every model and route
    rpm: int | None = None
    tpm: int | None = None
    budget: float | None = None             # USD, lifetime of the key unless budget_period is set
    budget_period: str | None = None        # None | "day" | "month"
    privacy: str | None = None              # "local-only": every call with this key stays local
    #: The project every call with this key runs as (its project budgets, its calls' ``project``);
    #: the server never lets such a call name another one.
    project: str | None = None


@dataclass(slots=True)
class CallContext:
    trace_id: str | None = None
    project: str | None = None
    key: KeyPolicy | None = None
    #: The call's own privacy policy ("any" | "local-only") and data class; the gateway
    #: applies the strictest of these, the key's, the route's and ``[privacy] default``.
    privacy: str | None = None
    data_class: str | None = None
    #: What set ``privacy``, for the refusal's message (None: the call's own option)
    privacy_rule: str | None = None
    #: Free-form labels stored with the call record (never secrets).
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Where the gateway may leave a successful call's bookkeeping (rate-limit and budget
    #: settlement, breaker and latency updates, the call record) as awaitables, for the caller
    #: to await once its own client has the answer: the server does, so that work is off the
    #: client's critical path. None (the default): it is done before the call returns.
    after_response: list[Awaitable[None]] | None = None
    #: What this call asks of the response cache: None/True use it, False neither reads nor
    #: writes (``cache=False``, ``Cache-Control: no-store``), "refresh" stores without reading
    #: (``Cache-Control: no-cache``).
    cache: bool | str | None = None
    #: Set by the gateway when the cache was consulted: "hit" or "miss", and a hit's similarity.
    cache_result: str | None = None
    cache_similarity: float | None = None
    #: Set by the gateway on a stream once its first output is out: the target answering it
    #: (a server names it in the stream's head, as a one-shot answer's metadata does).
    answering_target: str | None = None
    #: ... and its provider: what the server's metrics book a stream under when it ends without
    #: its final event (the client hung up, or the provider failed mid-stream).
    answering_provider: str | None = None
    #: A W3C ``traceparent`` to continue (the server passes the incoming header), for OpenTelemetry,
    #: and its ``tracestate``: both go on to the provider (with the attempt's own span id when
    #: cloverleaf exports spans, unchanged when it does not).
    traceparent: str | None = None
    tracestate: str | None = None
    #: The caller's own ``timeout=`` (seconds, every wait of each attempt) and ``max_retries=``
    #: (tries of a target after the first), overriding the route's and the defaults.
    timeout: float | None = None
    max_retries: int | None = None
    #: Provider beta features the caller asked for by name (the server's ``anthropic-beta``
    #: header): an adapter whose API has them adds them to its configured ones for this call
    #: (Anthropic's ``beta``); every other provider ignores them.
    client_betas: tuple[str, ...] = ()
    #: Set by the gateway once it opened the call's record: that record's id (what traces and the
    #: dashboard find the call by), which a server gives its client as the request's id when the
    #: provider gave none.
    call_id: str | None = None
