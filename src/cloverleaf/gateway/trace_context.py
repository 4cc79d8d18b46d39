"""W3C trace context: the ``traceparent`` a call continues, and the one each attempt sends on.

A call's place in its trace is fixed when it is admitted (:class:`CallSpan`: its trace id, its
own span id, its parent's, the sampling decision), so each attempt's request to the provider can
carry ``traceparent: 00-{trace id}-{the attempt's span id}-{flags}`` (and the incoming
``tracestate`` unchanged): a provider or a gateway behind it that runs OpenTelemetry (vLLM,
another cloverleaf) then hangs its spans under that attempt's span instead of starting orphan
traces. The attempt's span, written when the call has ended, takes the id its request carried.

Without spans of its own (telemetry off) the server still passes the client's ``traceparent``
and ``tracestate`` on unchanged (:class:`ForwardedTrace`), as W3C trace context lets an
intermediary that does not trace: the upstream's spans join the client's trace. It costs an
attribute check per call, and only a request that sent a valid ``traceparent`` more.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple


class SpanParent(NamedTuple):
    trace_id: bytes     # 16 bytes
    span_id: bytes      # 8 bytes
    sampled: bool
    #: the ``tracestate`` that came with it (None: none), passed on unchanged
    tracestate: str | None = None


_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def parse_traceparent(value: str, tracestate: str | None = None) -> SpanParent | None:
    """A W3C ``traceparent`` header, or None when it is malformed (version ``ff``, all-zero
    ids, extra fields on version 00, upper case): the trace-context rules for ignoring one
    (its ``tracestate`` goes with it)."""
    found = _TRACEPARENT.fullmatch(value.strip())
    if found is None:
        return None
    version, trace_id, span_id, flags, rest = found.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return SpanParent(bytes.fromhex(trace_id), bytes.fromhex(span_id), bool(int(flags, 16) & 1), tracestate)


@dataclass(slots=True)
class CallSpan:
    """One call's span, as admitted: the ids its spans will be exported with, and the
    ``traceparent`` each of its attempts sends upstream (``upstream_headers``)."""

    trace_id: bytes
    span_id: bytes
    parent: SpanParent | None
    sampled: bool
    #: makes span ids (``Telemetry._new_id``)
    new_id: Callable[[int], bytes] = field(repr=False)
    #: the span id of each attempt that went upstream, by its place in the call's attempts
    attempt_ids: dict[int, bytes] = field(default_factory=dict)

    def upstream_headers(self, attempt: int) -> dict[str, str]:
        """The trace headers for the request of the call's ``attempt``-th attempt (from 0),
        whose span gets the id they name."""
        span_id = self.attempt_ids[attempt] = self.new_id(8)
        headers = {"traceparent": f"00-{self.trace_id.hex()}-{span_id.hex()}-{'01' if self.sampled else '00'}"}
        if self.parent is not None and self.parent.tracestate:
            headers["tracestate"] = self.parent.tracestate
        return headers


@dataclass(frozen=True, slots=True)
class ForwardedTrace:
    """The client's trace headers, passed on unchanged to every attempt (no spans of our own)."""

    headers: dict[str, str]

    def upstream_headers(self, attempt: int) -> dict[str, str]:
        return self.headers


def forwarded(traceparent: str, tracestate: str | None) -> ForwardedTrace | None:
    """What a server without spans passes on of a client's trace headers: both, unchanged, when
    the ``traceparent`` is valid; nothing otherwise (a malformed one starts no trace upstream)."""
    if parse_traceparent(traceparent) is None:
        return None
    headers = {"traceparent": traceparent}
    if tracestate:
        headers["tracestate"] = tracestate
    return ForwardedTrace(headers)
