"""A forward proxy on 127.0.0.1 for the span exporter's tests: ``CONNECT`` tunnels (an https
collector) and absolute-form requests (an http one), as squid or a corporate proxy serves them.
It records what it was asked (method, target, ``Proxy-Authorization``) and can demand
credentials (407), so a test sees that spans really went through it, and how."""

from __future__ import annotations

import http.client
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class ForwardProxy:
    def __init__(self, require_auth: str | None = None) -> None:
        """``require_auth``: the exact ``Proxy-Authorization`` value to demand (else 407)."""
        self.seen: list[tuple[str, str, str | None]] = []   # (method, target, Proxy-Authorization)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def _admitted(self) -> bool:
                auth = self.headers.get("Proxy-Authorization")
                with proxy._lock:
                    proxy.seen.append((self.command, self.path, auth))
                if require_auth is not None and auth != require_auth:
                    self.send_response(407)
                    self.send_header("Proxy-Authenticate", 'Basic realm="test"')
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return False
                return True

            def do_CONNECT(self) -> None:
                if not self._admitted():
                    return
                host, _, port = self.path.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=10)
                self.send_response(200, "Connection established")
                self.end_headers()
                self.close_connection = True
                _pipe(self.connection, upstream)

            def do_POST(self) -> None:
                if not self._admitted():
                    return
                target = urlsplit(self.path)      # absolute form: http://host:port/path
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-authorization", "host")}
                conn = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=10)
                try:
                    conn.request("POST", target.path + (f"?{target.query}" if target.query else ""), body, headers)
                    answer = conn.getresponse()
                    raw = answer.read()
                finally:
                    conn.close()
                self.send_response(answer.status)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    try:
        while True:
            ready, _, _ = select.select([a, b], [], [], 10)
            if not ready:
                return
            for src in ready:
                data = src.recv(65536)
                if not data:
                    return
                (b if src is a else a).sendall(data)
    finally:
        b.close()
