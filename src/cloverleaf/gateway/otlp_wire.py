"""OTLP trace protobuf, encoded by hand: the few messages a finished call's spans need.

Why not the OpenTelemetry SDK: it builds a live ``Span`` object per span (attribute
validation under a lock, a sampler, processors) and its exporter then copies each into
protobuf message objects. Measured on this machine, that was about 150 µs of CPU per call
(two spans) — half of what the whole gateway spends on a call. A call's spans are built once
it has ended, from facts that are all known by then, so they can go straight to bytes.

The field numbers are those of ``opentelemetry/proto/trace/v1/trace.proto`` and
``common/v1/common.proto`` (``ExportTraceServiceRequest`` → ``ResourceSpans`` →
``ScopeSpans`` → ``Span``; ``KeyValue``/``AnyValue`` for attributes). The tests decode what
this writes with the official ``opentelemetry-proto`` classes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

SPAN_KIND_CLIENT = 3
STATUS_ERROR = 2

_U64 = (1 << 64) - 1
_DOUBLE = struct.Struct("<d")
_FIXED64 = struct.Struct("<Q")


def varint(n: int) -> bytes:
    """A protobuf varint; negative int64 values take their 64-bit two's complement (10 bytes)."""
    n &= _U64
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (``tag`` is the whole key byte: field number << 3 | 2)."""
    n = len(payload)
    if n < 0x80:
        return bytes((tag, n)) + payload
    return bytes((tag,)) + varint(n) + payload


def any_value(value: Any) -> bytes:
    """An ``AnyValue``: str, bool, int, float, or a list of those; anything else as its str."""
    if isinstance(value, str):
        return field(0x0A, value.encode("utf-8", "replace"))
    if isinstance(value, bool):               # before int: bool is an int
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, list | tuple):
        return field(0x2A, b"".join(field(0x0A, any_value(v)) for v in value))
    return field(0x0A, str(value).encode("utf-8", "replace"))


def key_value(key: str, value: Any) -> bytes:
    """One ``KeyValue`` message's bytes (without the field tag that holds it)."""
    return field(0x0A, key.encode()) + field(0x12, any_value(value))


#: Encoded attribute fields by (tag, key, value), for text and flag values: most of a span's
#: attributes (operation, model, provider, target, status, key) repeat from call to call.
#: Bounded in entries and in the length of a value kept (a client picks the requested model).
_SEEN: dict[tuple[int, str, str | bool], bytes] = {}
_SEEN_MAX = 4096
_SEEN_VALUE_MAX = 256


def attributes(tag: int, attrs: Mapping[str, Any], unique: frozenset[str] = frozenset()) -> bytes:
    """Every attribute as a repeated ``KeyValue`` field (``tag``: 0x4A in a Span, 0x0A in a
    Resource). Text and flag values are encoded once and then looked up, except under the
    ``unique`` keys (ids, messages: new on every call, they would only churn the table)."""
    out = []
    seen = _SEEN
    for k, v in attrs.items():
        if (type(v) is bool or (type(v) is str and len(v) <= _SEEN_VALUE_MAX)) and k not in unique:
            found = seen.get((tag, k, v))
            if found is None:
                if len(seen) >= _SEEN_MAX:
                    seen.clear()
                found = seen[(tag, k, v)] = field(tag, key_value(k, v))
            out.append(found)
        else:
            out.append(field(tag, key_value(k, v)))
    return b"".join(out)


def span(trace_id: bytes, span_id: bytes, parent_id: bytes | None, name: str, start_ns: int, end_ns: int,
         attrs: Mapping[str, Any], error: str | None = None, kind: int = SPAN_KIND_CLIENT,
         unique: frozenset[str] = frozenset()) -> bytes:
    """One ``Span``; ``error`` (its message, possibly empty) marks it STATUS_CODE_ERROR;
    ``unique``: attribute keys whose values are new on every span (see :func:`attributes`)."""
    out = [b"\x0a\x10", trace_id, b"\x12\x08", span_id]
    if parent_id:
        out += (b"\x22\x08", parent_id)
    out += (field(0x2A, name.encode("utf-8", "replace")), b"\x30", varint(kind),
            b"\x39", _FIXED64.pack(start_ns & _U64), b"\x41", _FIXED64.pack(end_ns & _U64),
            attributes(0x4A, attrs, unique))
    if error is not None:
        status = (field(0x12, error.encode("utf-8", "replace")) if error else b"") + b"\x18" + varint(STATUS_ERROR)
        out.append(field(0x7A, status))
    return b"".join(out)


def resource_head(resource: Mapping[str, Any], scope_name: str, scope_version: str) -> tuple[bytes, bytes]:
    """The parts of a ``ResourceSpans`` that are the same for every export: the resource
    field and the instrumentation scope field (inside ``ScopeSpans``)."""
    resource_field = field(0x0A, attributes(0x0A, resource))
    scope_field = field(0x0A, field(0x0A, scope_name.encode()) + field(0x12, scope_version.encode()))
    return resource_field, scope_field


def export_request(head: tuple[bytes, bytes], spans: Iterable[bytes]) -> bytes:
    """An ``ExportTraceServiceRequest`` of one resource and one scope holding ``spans``."""
    resource_field, scope_field = head
    scope_spans = scope_field + b"".join([field(0x12, s) for s in spans])
    return field(0x0A, resource_field + field(0x12, scope_spans))
