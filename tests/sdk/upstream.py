"""A tiny programmable HTTP server on 127.0.0.1 for transport and client tests.

Each test queues responses (status, headers, body or a list of body chunks with delays);
the server answers requests in order and records what it received.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    body: bytes = b"{}"
    chunks: list[bytes] | None = None      # streamed with chunked encoding
    chunk_delay: float = 0.0
    delay: float = 0.0
    reset_after_chunks: int | None = None  # close the socket abruptly after N chunks
    #: after the chunks: "ok" sends the closing 0-chunk; "close" closes the connection without it,
    #: "hang" keeps it open without it, sending nothing more until the server closes; "late"
    #: sends it 50 ms after the last chunk (a packet behind the terminal event)
    end: str = "ok"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int] | None = None   # the client's address: one per connection


class _QuietServer(ThreadingHTTPServer):
    """A client hanging up mid-answer is what many tests do on purpose: no traceback in the log
    for it (anything else is still printed)."""

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class Upstream:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with upstream.lock:
                    upstream.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                              self.client_address))
                    reply = upstream.replies.pop(0) if upstream.replies else Reply(body=b'{"default": true}')
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                if reply.chunks is None:
                    self.send_header("content-length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    return
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for i, chunk in enumerate(reply.chunks):
                    if reply.reset_after_chunks is not None and i >= reply.reset_after_chunks:
                        self.wfile.flush()
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                    if reply.chunk_delay:
                        time.sleep(reply.chunk_delay)
                if reply.end == "hang":
                    upstream.closing.wait()
                if reply.end == "late":
                    time.sleep(0.05)
                    reply.end = "ok"
                if reply.end != "ok":
                    self.close_connection = True
                    return
                self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_DELETE = _handle

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # a short poll keeps close() (shutdown waits for the next poll) from costing half a second per test
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def queue(self, *replies: Reply) -> None:
        with self.lock:
            self.replies.extend(replies)

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


