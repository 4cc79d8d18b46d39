"""One HTTP server on 127.0.0.1 for every stand-in upstream of the suite.

The suite's mock providers (OpenAI, Anthropic, Bedrock, Vertex AI, Entra, an OTLP collector, an
image host...) differ only in what they answer; binding a free port, serving on a thread,
recording what arrived and shutting down were written out again in each. Here they are once:
a stand-in is a function from the :class:`Request` that came in to the :class:`Answer` to send
(a JSON body, bytes, or an iterator of pieces such as SSE events, each flushed as it is made).

A stand-in that tests wire misbehaviour (a reset mid-body, a chunked body that never closes, an
answer held back) returns a :data:`Writer` instead: a function handed the raw
``BaseHTTPRequestHandler`` that writes the whole answer itself. Servers that work below HTTP
(half-closed sockets, proxies, raw ``asyncio`` streams) keep their own sockets.

Usage::

    def handle(request: Request) -> Answer:
        return json_answer({"ok": True, "model": request.json()["model"]})

    with LoopbackServer(handle) as server:
        ...  # call server.url; then look at server.requests
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Request:
    """What one request brought: header names lower-cased, the body as received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]   # the client's address: one per connection

    def json(self, empty: Any = None) -> Any:
        """The body parsed as JSON; ``empty`` for a request without one."""
        return json.loads(self.body) if self.body else empty


@dataclass
class Answer:
    """What to send: ``body`` with its Content-Length, or ``stream``'s pieces one by one (each
    written and flushed, no length, the connection closed after the last)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterable[bytes] | None = None


#: The raw hook: writes the whole answer through the handler (status line, headers, body).
Writer = Callable[[BaseHTTPRequestHandler], None]
Handle = Callable[[Request], "Answer | Writer"]


def json_answer(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps(doc).encode(), {"content-type": "application/json", **(headers or {})})


def sse_event(doc: Any, event: str | None = None) -> bytes:
    """One server-sent event: ``doc`` as JSON (a str as it is, e.g. ``[DONE]``), named when ``event``."""
    data = doc if isinstance(doc, str) else json.dumps(doc)
    return (f"event: {event}\n" if event else "").encode() + f"data: {data}\n\n".encode()


def sse_stream(pieces: Iterable[bytes], headers: dict[str, str] | None = None) -> Answer:
    """An event stream sent piece by piece as ``pieces`` yields them."""
    return Answer(200, headers={"content-type": "text/event-stream", **(headers or {})}, stream=pieces)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256     # a burst of connections waits in the backlog, not in SYN retries

    def __init__(self, owner: LoopbackServer, host: str) -> None:
        self.owner = owner
        super().__init__((host, 0), _Handler)

    def get_request(self) -> Any:
        pair = super().get_request()
        with self.owner.lock:
            self.owner.connections += 1
        return pair

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-answer is what many tests do on purpose: no traceback for it
        (anything else is still printed)."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("content-length") or 0)
        request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                          self.rfile.read(length) if length else b"", self.client_address)
        with owner.lock:
            owner.requests.append(request)
        answer = owner.handle(request)
        if not isinstance(answer, Answer):
            answer(self)
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.stream is None:
            self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
            return
        self.send_header("connection", "close")
        self.end_headers()
        for piece in answer.stream:
            self.wfile.write(piece)
            self.wfile.flush()
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class LoopbackServer:
    """Serves ``handle`` on a free port of 127.0.0.1 from the moment it is made until :meth:`close`.

    ``requests`` holds every request in the order they arrived, ``connections`` counts the
    connections accepted; ``stopping`` is set on close, so a handler that holds its answer back
    (waiting on it) lets the server stop. ``ssl_context``: serve HTTPS with it. ``host``: another
    loopback address (127.0.0.2: a second machine, as far as an address check can tell)."""

    def __init__(self, handle: Handle, *, ssl_context: ssl.SSLContext | None = None,
                 host: str = "127.0.0.1") -> None:
        self.handle = handle
        self.requests: list[Request] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _Server(self, host)
        self.port = int(self._server.server_address[1])
        scheme = "http"
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://{host}:{self.port}"
        # a short poll keeps close() (shutdown waits for the next poll) from costing half a second per test
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
