"""A real ``h1`` server on 127.0.0.1 in a thread, serving a tiny ASGI app, and raw-socket helpers
to drive it: shared by the ``h1`` protocol tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from cloverleaf.server import h1_server
from cloverleaf.server.connections import ConnectionLimits


class App:
    """Echoes the request; ``/hold`` waits until released; ``/stream`` sends 3 chunks then
    waits for the client to leave; ``/pausedstream`` sends one chunk, waits until released
    (or the client hangs up), then sends two more; ``/boom`` raises; ``/big?N`` answers N
    bytes at once, ``/bigstream?N`` streams them in 256 KiB chunks."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.disconnects: list[str] = []
        self.scopes: list[dict[str, Any]] = []
        self.hung_up = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"]
        self.scopes.append(scope)
        if path == "/boom":
            raise RuntimeError("boom")
        if path == "/hold":
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if path == "/hangup":  # what until_disconnect does under h1: a callback, no watcher task
            assert scope["extensions"][h1_server.HANGUP_EXTENSION](self.hung_up.set) is True
            while not self.hung_up.is_set():
                await asyncio.sleep(0.01)
            return
        if path == "/flood":  # streams until the client is gone (write back-pressure)
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            chunk = b"x" * 65536
            while True:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if scope["extensions"][h1_server.HANGUP_EXTENSION](None) is False:
                    self.disconnects.append("flood")
                    return
        if path in ("/big", "/bigstream"):
            size = int(scope["query_string"])
            if path == "/big":
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/octet-stream"),
                                        (b"content-length", b"%d" % size)]})
                await send({"type": "http.response.body", "body": b"b" * size})
                return
            await send({"type": "http.response.start", "status": 200, "headers": []})
            step = 256 * 1024
            for sent in range(0, size, step):
                await send({"type": "http.response.body", "body": b"s" * min(step, size - sent), "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        if path == "/pausedstream":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"part0;", "more_body": True})
            scope["extensions"][h1_server.HANGUP_EXTENSION](self.hung_up.set)
            while not (self.release.is_set() or self.hung_up.is_set()):
                await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": b"part1;", "more_body": True})
            await send({"type": "http.response.body", "body": b"part2;"})
            return
        if path == "/stream":
            if scope["query_string"] == b"watched":  # a disconnect watcher, cancelled, as until_disconnect does
                watcher = asyncio.ensure_future(receive())
                await asyncio.sleep(0.01)
                watcher.cancel()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            for i in range(3):
                await send({"type": "http.response.body", "body": b"part%d;" % i, "more_body": True})
            self.disconnects.append((await receive())["type"])
            return
        out = json.dumps({"method": scope["method"], "path": path, "query": scope["query_string"].decode(),
                          "body": body.decode(), "http_version": scope["http_version"],
                          "client": scope["client"][0], "scheme": scope["scheme"]}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]})
        await send({"type": "http.response.body", "body": out})


#: For the tests of the limits themselves: a head, an idle keep-alive connection and a stalled
#: write are cut off within a second or so (the sweep runs once a second), and the fifth connection
#: meets the cap.
SHORT_LIMITS = ConnectionLimits(header_timeout=0.5, keepalive_timeout=0.5, max_connections=4, write_timeout=1.0)
#: For every other test: no deadline a slow run can reach before the suite's 120 s timeout. With
#: SHORT_LIMITS for all, a test descheduled for half a second on a loaded machine (between the
#: pieces of a head it sends, or between two requests on one connection) had its connection
#: closed by the header or idle timeout it was not testing, and failed reading a closed socket.
ROOMY_LIMITS = ConnectionLimits(header_timeout=300.0, keepalive_timeout=300.0, max_connections=64,
                                write_timeout=300.0)


@contextlib.contextmanager
def serving(app: App, limits: ConnectionLimits = ROOMY_LIMITS, sndbuf: int = 0,
            **config: Any) -> Iterator[tuple[int, uvicorn.Server]]:
    """``sndbuf``: the kernel send buffer of every connection (inherited from the listening
    socket), small so that most of a large answer waits in the server's own buffer."""
    saved = h1_server.LIMITS
    h1_server.configure(limits)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sndbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, http=h1_server.H1Protocol, log_level="critical", lifespan="on",
                                           **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    app.server_state = server.server_state  # type: ignore[attr-defined]
    try:
        yield port, server
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        h1_server.configure(saved)


@contextlib.contextmanager
def served_app(limits: ConnectionLimits = ROOMY_LIMITS) -> Iterator[tuple[int, App]]:
    """A fresh :class:`App` served with ``limits``; on the way out whatever it holds (a ``/hold``
    request, a hang-up wait) is let go before the server's graceful shutdown waits."""
    app = App()
    with serving(app, limits) as (port, _):
        try:
            yield port, app
        finally:
            app.release.set()
            app.hung_up.set()


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s


def read_response(s: socket.socket, buf: bytearray | None = None) -> tuple[int, dict[str, str], bytes]:
    """One response off ``s`` (content-length, chunked or close-delimited)."""
    buf = buf if buf is not None else bytearray()
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, f"connection closed before a whole head: {bytes(buf)!r}"
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    del buf[:len(head) + 4]
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        assert name.lower() not in headers, f"header {name} twice"
        headers[name.lower()] = value.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(buf) < n:
            buf += s.recv(65536)
        body = bytes(buf[:n])
        del buf[:n]
        return status, headers, body
    assert headers.get("transfer-encoding") == "chunked"
    body = b""
    while True:
        while b"\r\n" not in buf:
            buf += s.recv(65536)
        size_line, _, _ = bytes(buf).partition(b"\r\n")
        size = int(size_line, 16)
        while len(buf) < len(size_line) + 2 + size + 2:
            buf += s.recv(65536)
        body += bytes(buf[len(size_line) + 2:len(size_line) + 2 + size])
        del buf[:len(size_line) + 2 + size + 2]
        if size == 0:
            return status, headers, body


def closed_by_server(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def read_until_closed(s: socket.socket, within: float = 10) -> bytes:
    """Everything until the server closes the connection (a reset ends it too)."""
    s.settimeout(within)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    return out


def answers(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The answers in ``raw``, interim 100 Continue ones skipped."""

    class Replay:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def recv(self, n: int) -> bytes:
            out, self.data = self.data[:n], self.data[n:]
            return out

    replay, buf, found = Replay(raw.replace(b"HTTP/1.1 100 Continue\r\n\r\n", b"")), bytearray(), []
    while replay.data or buf:
        found.append(read_response(replay, buf))  # type: ignore[arg-type]
    return found


def wait_for(predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)
