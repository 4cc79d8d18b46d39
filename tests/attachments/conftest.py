"""Fixtures for the attachment tests: a loopback HTTP server with real media, test resolvers,
and a guard that fails any test whose code tries to reach a non-loopback address or look a
host name up through the system resolver.

The guard is what makes "private addresses are refused BEFORE any connection" and "no second
DNS lookup" testable: every socket connect and ``getaddrinfo`` in the process is checked while
a test runs.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cloverleaf.attachments import AttachmentPolicy

MEDIA = Path(__file__).resolve().parents[1] / "fixtures" / "media"
LOOPBACK = ("127.0.0.1", "::1")

_CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".pdf": "application/pdf", ".wav": "audio/wav",
                  ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg"}


def media(name: str) -> bytes:
    return (MEDIA / name).read_bytes()


# --------------------------------------------------------------------------- the network guard


@dataclass
class NetworkGuard:
    violations: list[str] = field(default_factory=list)
    connects: list[Any] = field(default_factory=list)


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    guard = NetworkGuard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check_address(address: Any) -> None:
        if isinstance(address, tuple):
            guard.connects.append(address)
            if address[0] not in LOOPBACK:
                guard.violations.append(f"connect to {address!r}")
                raise ConnectionRefusedError(f"test network guard: refused connect to {address!r}")

    def connect(self: socket.socket, address: Any) -> Any:
        check_address(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        check_address(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        try:
            ipaddress.ip_address(str(name).split("%")[0])
        except ValueError:
            guard.violations.append(f"system DNS lookup of {name!r}")
            raise socket.gaierror(socket.EAI_NONAME, f"test network guard: no DNS for {name!r}") from None
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield guard
    assert not guard.violations, f"code under test tried to leave loopback: {guard.violations}"


# --------------------------------------------------------------------------- test resolvers


class MapResolver:
    """A resolver from a dict (host -> addresses). Unknown names fail like NXDOMAIN.
    ``answers`` may hold a list of answers per host, handed out one per call (rebinding)."""

    def __init__(self, table: dict[str, list[str] | list[list[str]]]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        entry = self.table.get(host)
        if entry is None:
            raise socket.gaierror(socket.EAI_NONAME, f"no such host {host!r}")
        if entry and isinstance(entry[0], list):
            index = min(len(self.calls_for(host)) - 1, len(entry) - 1)
            return list(entry[index])  # type: ignore[arg-type]
        return list(entry)  # type: ignore[arg-type]

    def calls_for(self, host: str) -> list[tuple[str, int]]:
        return [c for c in self.calls if c[0] == host]


def loopback_policy(**overrides: Any) -> AttachmentPolicy:
    """The policy of the tests that fetch from the local server: 127.0.0.1 allow-listed."""
    settings: dict[str, Any] = {"allow_networks": ("127.0.0.1/32",), "connect_timeout": 2.0, "read_timeout": 10.0}
    settings.update(overrides)
    return AttachmentPolicy(**settings)


# --------------------------------------------------------------------------- the media server


@dataclass
class Seen:
    path: str
    host: str | None


class MediaHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: MediaServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(Seen(self.path, self.headers.get("Host")))
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        route = parts.path.strip("/").split("/")
        try:
            getattr(self, f"route_{route[0].replace('-', '_')}", self.route_missing)(route[1:], query)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError, OSError):
            pass

    def _send(self, status: int, body: bytes, content_type: str = "application/octet-stream",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def route_missing(self, rest: list[str], query: dict[str, str]) -> None:
        self._send(404, b"not found", "text/plain")

    def route_media(self, rest: list[str], query: dict[str, str]) -> None:
        path = MEDIA / rest[0]
        self._send(200, path.read_bytes(), query.get("ct") or _CONTENT_TYPES.get(path.suffix, "application/octet-stream"))

    def route_html(self, rest: list[str], query: dict[str, str]) -> None:
        self._send(200, b"<html><body>not an image</body></html>", "text/html")

    def route_redirect(self, rest: list[str], query: dict[str, str]) -> None:
        self._send(int(query.get("status", "302")), b"", "text/plain", {"Location": query["to"]})

    def route_chain(self, rest: list[str], query: dict[str, str]) -> None:
        left = int(rest[0])
        if left == 0:
            self.route_media(["image.png"], {})
        else:
            self._send(302, b"", "text/plain", {"Location": f"/chain/{left - 1}"})

    def route_loop(self, rest: list[str], query: dict[str, str]) -> None:
        self._send(302, b"", "text/plain", {"Location": "/loop"})

    def route_big(self, rest: list[str], query: dict[str, str]) -> None:
        """Announces a gigabyte, then sends a little: the client must not wait for the rest."""
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(10**9))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(media("image.png"))
        self.wfile.flush()
        self.close_connection = True

    def route_endless(self, rest: list[str], query: dict[str, str]) -> None:
        """A chunked PNG that never ends."""
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = media("image.png") + bytes(60_000)
        for _ in range(10_000):  # ~600 MB at most; the client hangs up long before
            if self.server.stopping.is_set():
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.close_connection = True

    def route_drip(self, rest: list[str], query: dict[str, str]) -> None:
        """A PNG sent one byte a second (``?phase=headers`` drips the headers instead)."""
        body = media("image.png")
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        if query.get("phase") == "headers":
            dripped, rest_at_once = head, b""
        else:
            self.wfile.write(head)
            dripped, rest_at_once = body, b""
        for i in range(len(dripped)):
            if self.server.stopping.wait(1.0):
                break
            self.wfile.write(dripped[i:i + 1])
            self.wfile.flush()
        self.wfile.write(rest_at_once)
        self.close_connection = True

    def route_together(self, rest: list[str], query: dict[str, str]) -> None:
        """A PNG sent only once ``server.barrier`` has as many requests waiting as it counts:
        answered only to downloads that run at the same time."""
        try:
            self.server.barrier.wait(timeout=5)
        except threading.BrokenBarrierError:
            self._send(503, b"not concurrent", "text/plain")
            return
        self.route_media(["image.png"], {})

    def route_gzip(self, rest: list[str], query: dict[str, str]) -> None:
        """A gzip bomb: 50 MB of zeros in about 50 KB, sent compressed whatever was asked for."""
        import gzip

        self._send(200, gzip.compress(bytes(50 * 1024 * 1024), compresslevel=9), "image/png",
                   {"Content-Encoding": "gzip"})

    def route_status(self, rest: list[str], query: dict[str, str]) -> None:
        self._send(int(rest[0]), b"error page", "text/plain")


class MediaServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), MediaHandler)
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        self.barrier = threading.Barrier(1)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


@pytest.fixture(scope="session")
def _media_server() -> Iterator[MediaServer]:
    server = MediaServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.stopping.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def server(_media_server: MediaServer) -> MediaServer:
    """The loopback media server, with its request log cleared for this test."""
    _media_server.seen.clear()
    return _media_server


def wait_for(predicate: Any, timeout: float = 2.0) -> bool:
    """Poll briefly for something a server thread records after the client has returned."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
