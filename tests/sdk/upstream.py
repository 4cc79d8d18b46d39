"""A tiny programmable HTTP server on 127.0.0.1 for transport and client tests.

Each test queues responses (status, headers, body or a list of body chunks with delays);
the server (:class:`tests.loopback.LoopbackServer`) answers requests in order and records what
it received. A chunked reply may misbehave on the wire (a reset, no closing chunk, a late one).
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.loopback import Answer, LoopbackServer, Request, Writer


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    body: bytes = b"{}"
    chunks: list[bytes] | None = None      # streamed with chunked encoding
    chunk_delay: float = 0.0
    hold: float = 0.0                      # a pause after the first chunk only, before the rest
    delay: float = 0.0
    reset_after_chunks: int | None = None  # close the socket abruptly after N chunks
    #: after the chunks: "ok" sends the closing 0-chunk; "close" closes the connection without it,
    #: "hang" keeps it open without it, sending nothing more until the server closes; "late"
    #: sends it 50 ms after the last chunk (a packet behind the terminal event)
    end: str = "ok"


#: What one request brought (method, path, lower-cased headers, body, the client's address).
Seen = Request


class Upstream:
    """Answers each request with the next queued :class:`Reply` (a default one when none is left);
    ``seen`` holds every request in the order they arrived."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.lock = threading.Lock()
        self.server = LoopbackServer(self._answer)
        self.seen: list[Seen] = self.server.requests
        self.closing = self.server.stopping
        self.port = self.server.port
        self.url = self.server.url

    def _answer(self, request: Request) -> Answer | Writer:
        with self.lock:
            reply = self.replies.pop(0) if self.replies else Reply(body=b'{"default": true}')
        if reply.delay:
            time.sleep(reply.delay)
        if reply.chunks is None:
            return Answer(reply.status, reply.body, reply.headers)
        return lambda handler: self._send_chunked(handler, reply)

    def _send_chunked(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        """The body in chunked encoding, misbehaving at the end as ``reply`` says."""
        chunks = reply.chunks or []
        handler.send_response(reply.status)
        for k, v in reply.headers.items():
            handler.send_header(k, v)
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        for i, chunk in enumerate(chunks):
            if reply.reset_after_chunks is not None and i >= reply.reset_after_chunks:
                handler.wfile.flush()
                handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                handler.connection.shutdown(socket.SHUT_RDWR)
                handler.close_connection = True
                return
            handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            handler.wfile.flush()
            if reply.chunk_delay:
                time.sleep(reply.chunk_delay)
            if reply.hold and i == 0:
                time.sleep(reply.hold)
        if reply.end == "hang":
            self.closing.wait()
        if reply.end == "late":
            time.sleep(0.05)
            reply.end = "ok"
        if reply.end != "ok":
            handler.close_connection = True
            return
        handler.wfile.write(b"0\r\n\r\n")

    def queue(self, *replies: Reply) -> None:
        with self.lock:
            self.replies.extend(replies)

    def close(self) -> None:
        self.server.close()
