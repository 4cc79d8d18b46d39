"""An OTLP/HTTP trace receiver on 127.0.0.1: decodes each export with the real protobuf
schema (``opentelemetry-proto``) and keeps the spans, for tests to read. ``statuses``: what
to answer the next exports (then 200), with ``retry_after`` as their ``Retry-After`` when
set; ``delay``: seconds to sit on each; ``ssl_context``:
serve https. Each export's headers are kept (``headers``)."""

from __future__ import annotations

import gzip
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.loopback import Answer, LoopbackServer, Request


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status_code: int
    service_name: str
    status_message: str = ""


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


class OTLPReceiver:
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.headers: list[dict[str, str]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        self.retry_after: str | None = None
        self.scopes: list[tuple[str, str]] = []
        self.resources: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._response = ExportTraceServiceResponse().SerializeToString()
        self._request_type = ExportTraceServiceRequest
        self.server = LoopbackServer(self._answer, ssl_context=ssl_context)

    def _answer(self, request: Request) -> Answer:
        body = request.body
        with self._lock:
            self.headers.append(request.headers)
            status = self.statuses.pop(0) if self.statuses else 200
        if self.delay:
            time.sleep(self.delay)
        if status != 200:
            return Answer(status, headers={} if self.retry_after is None else {"retry-after": self.retry_after})
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        req = self._request_type()
        req.ParseFromString(body)
        spans = []
        for rs in req.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            service = resource.get("service.name", "")
            with self._lock:
                self.resources.append(resource)
            for ss in rs.scope_spans:
                with self._lock:
                    self.scopes.append((ss.scope.name, ss.scope.version))
                for s in ss.spans:
                    spans.append(ReceivedSpan(
                        s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(), s.kind,
                        s.start_time_unix_nano, s.end_time_unix_nano,
                        {a.key: _value(a.value) for a in s.attributes}, s.status.code, service,
                        s.status.message))
        with self._lock:
            self.spans.extend(spans)
            self.requests += 1
        return Answer(200, self._response, {"content-type": "application/x-protobuf"})

    @property
    def endpoint(self) -> str:
        return self.server.url

    def named(self, prefix: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name.startswith(prefix)]

    def close(self) -> None:
        self.server.close()
