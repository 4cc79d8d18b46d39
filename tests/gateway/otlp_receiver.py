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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.delay:
                    time.sleep(receiver.delay)
                if status != 200:
                    self.send_response(status)
                    if receiver.retry_after is not None:
                        self.send_header("retry-after", receiver.retry_after)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                spans = []
                for rs in req.resource_spans:
                    resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                    service = resource.get("service.name", "")
                    with receiver._lock:
                        receiver.resources.append(resource)
                    for ss in rs.scope_spans:
                        with receiver._lock:
                            receiver.scopes.append((ss.scope.name, ss.scope.version))
                        for s in ss.spans:
                            spans.append(ReceivedSpan(
                                s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(), s.kind,
                                s.start_time_unix_nano, s.end_time_unix_nano,
                                {a.key: _value(a.value) for a in s.attributes}, s.status.code, service,
                                s.status.message))
                with receiver._lock:
                    receiver.spans.extend(spans)
                    receiver.requests += 1
                raw = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._scheme = "http"
        if ssl_context is not None:
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True)
            self._scheme = "https"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.server.server_address[1]}"

    def named(self, prefix: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name.startswith(prefix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
