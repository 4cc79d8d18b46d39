"""Traces and call records: what happened on every call, and never a secret.

``gateway.traces.create(metadata=...)`` starts a trace; calls made with its id (``trace_id=``
on the client, ``CallContext.trace_id`` here) belong to it; ``complete(id)`` closes it and
``get(id)`` reads it back with its calls. Each call record holds the requested model, the
target that answered, every attempt (target, error type and message, latency, HTTP status),
latency, time to first token, tokens, cost and status.

Every error an attempt meets is scrubbed *in place* (``_errors.scrub``, which the engine also
applies to a direct call's upstream errors) the moment it is recorded (message, body, args):
the targets' own keys are replaced, and anything shaped like a provider key or a bearer token
too, because providers like to echo a rejected key back ("Incorrect API key
provided: sk-..."). So the stored record, ``AllTargetsFailed``'s text, a
``StreamInterrupted``, the server's error response and any log line all see clean text.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .._errors import Attempt, ProviderError, redact, scrub
from .._types import Usage
from .clock import Clock
from .store.records import AttemptRecord, CallRecord, TraceRecord

Trace = TraceRecord

MAX_MESSAGE = 2000

#: The ``error_type`` of an answered call that is not whole (``status`` stays "ok": it was answered
#: and billed): a split image call some of whose requests failed. ``error_message`` says what is
#: missing and why (``ImageResponse.incomplete``), so the traces list, the call's page, ``cloverleaf
#: traces`` and its span say it, in the columns a call's failure uses (no schema change).
INCOMPLETE = "Incomplete"


_sequence = itertools.count()
_node = ""


def _new_node() -> None:
    global _node, _sequence
    _node = f"{os.getpid() & 0xFFFF:04x}{uuid.uuid4().hex[:6]}"
    _sequence = itertools.count()


_new_node()
os.register_at_fork(after_in_child=_new_node)


def new_call_id() -> str:
    """Unique across processes, and sorting in creation order. No system call: the process
    part is drawn once (and again in a forked child)."""
    return f"call_{time.time_ns():016x}{next(_sequence) & 0xFFFFFF:06x}{_node}"


def error_message(error: BaseException) -> str:
    return error.message if isinstance(error, ProviderError) else str(error)


class TraceAPI:
    def __init__(self, store: Any, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def create(self, metadata: dict[str, Any] | None = None, *, id: str | None = None) -> Trace:
        trace = TraceRecord(id or f"tr_{uuid.uuid4().hex}", self._clock.wall(), None, dict(metadata or {}))
        self._store.record_trace(trace)
        return trace

    def create_if_absent(self, metadata: dict[str, Any] | None = None, *, id: str) -> Trace | None:
        """Create the trace ``id`` now, or None when a trace of that id exists (created, or
        only sent with calls). Written at once rather than with the next batch, so of callers
        racing for one id exactly one is told it created it (the admin API's 201 / 409)."""
        self._store.flush()   # calls and traces still queued count as existing
        trace = TraceRecord(id, self._clock.wall(), None, dict(metadata or {}))
        return trace if self._store.insert_trace(trace) else None

    def complete(self, trace_id: str) -> None:
        self._store.complete_trace(trace_id, self._clock.wall())

    def get(self, trace_id: str) -> Trace | None:
        """The trace with its calls (waits for pending records to be written first)."""
        self._store.flush()
        found: Trace | None = self._store.get_trace(trace_id)
        return found


@dataclass(slots=True)
class CallTracker:
    """Collects what happens during one gateway call and turns it into a CallRecord."""

    requested_model: str
    operation: str
    started: float
    created_at: float
    trace_id: str | None = None
    project: str | None = None
    key_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    id: str = field(default_factory=lambda: new_call_id())
    attempts: list[Attempt] = field(default_factory=list)
    #: "hit" | "miss" once the response cache was consulted (None: not used).
    cache: str | None = None
    _providers: list[str | None] = field(default_factory=list)
    #: When each attempt ended (epoch seconds): OpenTelemetry places attempt spans with it.
    _ended: list[float] = field(default_factory=list)

    def add_attempt(self, target: str, provider: str | None, error: BaseException | None, latency_ms: float) -> Attempt:
        status = None
        if error is not None:
            scrub(error, self.secrets)
            status = getattr(error, "status", None)
        attempt = Attempt(target, error, latency_ms, status)
        self.attempts.append(attempt)
        self._providers.append(provider)
        self._ended.append(time.time())
        return attempt

    @property
    def attempt_ends(self) -> list[float]:
        return self._ended

    def last_target(self) -> tuple[str | None, str | None]:
        """(target, provider) of the latest attempt; (None, None) before any."""
        if not self.attempts:
            return None, None
        return self.attempts[-1].target, self._providers[-1]

    def record(self, clock: Clock, *, status: str, error: BaseException | None = None, target: str | None = None,
               provider: str | None = None, model: str | None = None, usage: Usage | None = None,
               cost: float | None = None, ttft_ms: float | None = None, charged: float | None = None,
               incomplete: str | None = None) -> CallRecord:
        """The call's record; ``incomplete``: what an answered call lacks (see :data:`INCOMPLETE`)."""
        usage = usage or Usage()
        note = (redact(incomplete, self.secrets) or "")[:MAX_MESSAGE] if incomplete and error is None else None
        return CallRecord(
            id=self.id, created_at=self.created_at, operation=self.operation,
            requested_model=self.requested_model, status=status, trace_id=self.trace_id, target=target,
            provider=provider, model=model,
            error_type=type(error).__name__ if error is not None else INCOMPLETE if note else None,
            error_message=self._message(error) if error is not None else note,
            latency_ms=(clock.now() - self.started) * 1000.0, ttft_ms=ttft_ms,
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens, reasoning_tokens=usage.reasoning_tokens, cost=cost,
            project=self.project, key_id=self.key_id, metadata=self.metadata, cache=self.cache, charged=charged,
            attempts=[AttemptRecord(a.target, p, a.error is None,
                                    type(a.error).__name__ if a.error is not None else None,
                                    self._message(a.error),
                                    a.status, a.latency_ms)
                      for a, p in zip(self.attempts, self._providers, strict=True)],
        )

    def _message(self, error: BaseException | None) -> str | None:
        if error is None:
            return None
        return (redact(error_message(error), self.secrets) or "")[:MAX_MESSAGE]
