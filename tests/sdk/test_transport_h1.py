"""The lean HTTP/1.1 client against real servers on 127.0.0.1.

Most servers here are raw ``asyncio.start_server`` handlers that write the response byte by
byte as each test needs (so they can misbehave: stall, reset, lie about lengths, answer
nothing); a few use aiohttp's web server. Nothing here asserts on elapsed time: "fast" is
shown by counting connections and attempts, and ``asyncio.wait_for`` only guards against
hangs."""

from __future__ import annotations

import asyncio
import base64
import builtins
import gzip
import hashlib
import socket
import ssl
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("httptools")

from cloverleaf._errors import ConnectError, ReadTimeout, RemoteProtocolError, TimeoutError, TransportError
from cloverleaf._http import HttpRequest
from cloverleaf.transport.base import Timeouts
from cloverleaf.transport.h1 import connection as h1_connection
from cloverleaf.transport.h1 import pool as transport_h1
from cloverleaf.transport.h1.pool import H1Transport
from cloverleaf.transport.retry import RetryPolicy
from tests.ports import unused_port

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
Handler = Callable[[Reader, Writer, int], Awaitable[None]]

#: Every guard against a hang: far above what any exchange here needs, never an assertion on speed.
HANG = 10.0


def fast(n: int = 2) -> RetryPolicy:
    return RetryPolicy(max_retries=n, base_delay=0.001, max_delay=0.01)


# -- raw servers ----------------------------------------------------------------------------
class Server:
    """An ``asyncio.start_server`` on 127.0.0.1 running ``handler(reader, writer, n)`` for the
    n-th connection (1-based), counting connections, requests and peak concurrency."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.active = 0
        self.peak = 0
        self.requests: list[tuple[int, str, dict[str, str], bytes]] = []  # (connection, line, headers, body)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.url = ""
        self.port = 0

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{self.port}"
        return self

    async def _serve(self, reader: Reader, writer: Writer) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.connections += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await self.handler(reader, writer, self.connections)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # closed at teardown (ending normally: 3.11's start_server logs a cancelled handler)
        finally:
            self.active -= 1
            writer.close()
            self.tasks.discard(task)

    async def read_request(self, reader: Reader, n: int) -> tuple[str, dict[str, str], bytes] | None:
        """One request from the connection, recorded; None when the client closed it."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for item in lines:
            if item:
                name, value = item.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((n, line, headers, body))
        return line, headers, body

    async def close(self) -> None:
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()


def response(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None,
             reason: str = "OK", length: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}\r\n"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}\r\n")
    if length:
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + body


def chunked(*parts: bytes) -> bytes:
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"


def keep_alive(answer: Callable[[str, dict[str, str], bytes, int], bytes]) -> Callable[[Server], Handler]:
    """A well-behaved keep-alive server: reads requests until the client closes, answers each
    with ``answer(request_line, headers, body, connection)``."""

    def bind(server: Server) -> Handler:
        async def handler(reader: Reader, writer: Writer, n: int) -> None:
            while (req := await server.read_request(reader, n)) is not None:
                writer.write(answer(*req, n))
                await writer.drain()

        return handler

    return bind


def reset(writer: Writer) -> None:
    """Close with an RST instead of a FIN (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    """``await serve(handler)`` or ``await serve(bind=keep_alive(...))``: a started server,
    closed at teardown."""
    servers: list[Server] = []

    async def start(handler: Handler | None = None, *, bind: Callable[[Server], Handler] | None = None,
                    ssl_context: ssl.SSLContext | None = None) -> Server:
        server = Server(handler or (lambda r, w, n: asyncio.sleep(0)))
        if bind is not None:
            server.handler = bind(server)
        servers.append(server)
        return await server.start(ssl_context)

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def h1() -> AsyncIterator[Callable[..., H1Transport]]:
    """``h1(**kw)``: an H1Transport with fast retries unless told, closed at teardown."""
    made: list[H1Transport] = []

    def make(**kw: Any) -> H1Transport:
        kw.setdefault("retry", fast())
        t = H1Transport(**kw)
        made.append(t)
        return t

    yield make
    for t in made:
        await t.aclose()


def pool_of(t: H1Transport) -> transport_h1.Pool:
    """The transport's only pool (each test talks to one origin)."""
    (pools,) = t._pools.values()
    (pool,) = pools.values()
    return pool


async def read_stream(t: H1Transport, req: HttpRequest, **kw: Any) -> tuple[int, dict[str, str], bytes]:
    async with t.astream(req, **kw) as handle:
        body = b"".join([chunk async for chunk in handle.chunks()])
    return handle.status, handle.headers, body


def get(url: str, **kw: Any) -> HttpRequest:
    return HttpRequest("GET", url, **kw)


# -- bodies, headers, pooling -----------------------------------------------------------------
async def test_body_and_lowercased_headers_and_the_request_sent(serve, h1) -> None:
    def answer(line: str, headers: dict[str, str], body: bytes, n: int) -> bytes:
        return response(201, b'{"got":' + body + b"}", {"Content-Type": "application/json", "X-Request-Id": "req-1",
                                                         "X-Auth-Seen": headers.get("authorization", "")})

    server = await serve(bind=keep_alive(answer))
    t = h1()
    req = HttpRequest("POST", f"{server.url}/v1/chat?alt=sse", headers={"Authorization": "Bearer k",
                      "Content-Type": "application/json", "Content-Length": "999"}, body=b'{"a":1}')
    resp = await t.asend(req)
    assert resp.status == 201 and resp.json() == {"got": {"a": 1}} and resp.url == req.url
    assert resp.headers["x-request-id"] == "req-1" and resp.headers["x-auth-seen"] == "Bearer k"
    assert resp.headers["content-type"] == "application/json" and all(k == k.lower() for k in resp.headers)
    (_, line, headers, body), = server.requests
    assert line == "POST /v1/chat?alt=sse HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{server.port}" and headers["content-length"] == "7"  # ours, not the caller's
    assert body == b'{"a":1}'


async def test_sequential_requests_reuse_one_connection(serve, h1) -> None:
    server = await serve(bind=keep_alive(lambda line, h, body, n: response(body=line.encode())))
    t = h1()
    bodies = [(await t.asend(get(f"{server.url}/r{i}"))).body for i in range(5)]
    assert bodies == [f"GET /r{i} HTTP/1.1".encode() for i in range(5)]
    assert server.connections == 1 and [n for n, *_ in server.requests] == [1] * 5
    pool = pool_of(t)
    assert pool.open == 1 and len(pool.idle) == 1


async def test_concurrent_requests_stay_within_max_connections(serve, h1) -> None:
    t = h1(max_connections=4)
    seen_open: list[int] = []

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while (req := await server.read_request(reader, n)) is not None:
            seen_open.append(pool_of(t).open)
            await asyncio.sleep(0.002)  # hold the connection so the others queue up
            writer.write(response(body=req[2]))
            await writer.drain()

    server = await serve(handler)
    results = await asyncio.wait_for(asyncio.gather(
        *(t.asend(HttpRequest("POST", f"{server.url}/echo", body=str(i).encode())) for i in range(50))), HANG)
    assert [r.body for r in results] == [str(i).encode() for i in range(50)]
    assert len(server.requests) == 50
    assert server.peak <= 4 and server.connections == 4  # all 50 start at once: exactly 4 are opened
    assert max(seen_open) <= 4
    pool = pool_of(t)
    assert pool.open == 4 and len(pool.idle) == 4 and not pool.waiters


async def test_content_length_and_chunked_bodies_with_extensions_and_trailers(serve, h1) -> None:
    replies = [
        response(body=b"plain body"),
        response(body=b"5;name=value\r\nhello\r\n6;a=b;c\r\n world\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n",
                 headers={"Transfer-Encoding": "chunked"}, length=False),
        response(body=b"after"),  # the same connection still parses cleanly after the trailers
    ]
    server = await serve(bind=keep_alive(lambda line, h, b, n: replies.pop(0)))
    t = h1()
    first = await t.asend(get(server.url))
    status, headers, second = await read_stream(t, get(server.url, stream=True))
    third = await t.asend(get(server.url))
    assert first.body == b"plain body" and first.headers["content-length"] == "10"
    assert status == 200 and second == b"hello world" and headers["transfer-encoding"] == "chunked"
    assert third.body == b"after" and server.connections == 1


@pytest.mark.parametrize("mode", ["asend", "astream"])
async def test_response_split_into_single_byte_writes(serve, h1, mode: str) -> None:
    payload = b"data: " + b"x" * 40 + b"\n\n"
    wire = response(body=chunked(payload[:10], payload[10:30], payload[30:]),
                    headers={"Transfer-Encoding": "chunked", "X-Long-Header": "v" * 50}, length=False)

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while await server.read_request(reader, n) is not None:
            for i in range(len(wire)):
                writer.write(wire[i:i + 1])
                await writer.drain()
                await asyncio.sleep(0)

    server = await serve(handler)
    t = h1()
    for _ in range(2):  # and the connection is reusable afterwards
        if mode == "asend":
            resp = await asyncio.wait_for(t.asend(get(server.url)), HANG)
            status, headers, body = resp.status, resp.headers, resp.body
        else:
            status, headers, body = await asyncio.wait_for(read_stream(t, get(server.url)), HANG)
        assert status == 200 and body == payload and headers["x-long-header"] == "v" * 50
    assert server.connections == 1


@pytest.mark.parametrize("mode", ["asend", "astream"])
async def test_close_delimited_body(serve, h1, mode: str) -> None:
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await server.read_request(reader, n)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        for part in (b"until ", b"the ", b"end"):
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.001)
        writer.close()

    server = await serve(handler)
    t = h1()
    for _ in range(2):
        if mode == "asend":
            resp = await t.asend(get(server.url))
            status, body = resp.status, resp.body
        else:
            status, _, body = await read_stream(t, get(server.url))
        assert status == 200 and body == b"until the end"
    assert server.connections == 2  # a close-delimited body cannot leave the connection reusable
    assert pool_of(t).open == 0


async def test_204_without_a_body_keeps_the_connection(serve, h1) -> None:
    replies = [b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", response(body=b"next")]
    server = await serve(bind=keep_alive(lambda line, h, b, n: replies.pop(0)))
    t = h1()
    empty = await asyncio.wait_for(t.asend(get(server.url)), HANG)
    status, _, streamed = await read_stream(t, get(server.url))
    assert empty.status == 204 and empty.body == b"" and empty.headers["x-a"] == "1"
    assert status == 200 and streamed == b"next" and server.connections == 1


async def test_connection_close_response_is_not_reused(serve, h1) -> None:
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while await server.read_request(reader, n) is not None:
            if n == 1:  # announce the close but keep the socket open: the client must not come back
                writer.write(response(body=b"first", headers={"Connection": "close"}))
            else:
                writer.write(response(body=f"conn {n}".encode()))
            await writer.drain()

    server = await serve(handler)
    t = h1()
    first = await t.asend(get(server.url))
    second = await asyncio.wait_for(t.asend(get(server.url)), HANG)
    assert first.body == b"first" and first.headers["connection"] == "close"
    assert second.body == b"conn 2" and server.connections == 2
    assert [n for n, *_ in server.requests] == [1, 2]


@pytest.mark.parametrize("mode", ["asend", "astream"])
async def test_interim_1xx_responses_are_skipped(serve, h1, mode: str) -> None:
    wire = (b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
            + response(200, b"final", {"X-Final": "yes"}))
    server = await serve(bind=keep_alive(lambda line, h, b, n: wire))
    t = h1()
    for _ in range(2):
        req = HttpRequest("POST", server.url, headers={"Expect": "100-continue"}, body=b"{}")
        if mode == "asend":
            resp = await asyncio.wait_for(t.asend(req), HANG)
            status, headers, body = resp.status, resp.headers, resp.body
        else:
            status, headers, body = await asyncio.wait_for(read_stream(t, req), HANG)
        assert status == 200 and body == b"final" and headers["x-final"] == "yes"
        assert "link" not in headers  # the interim response's headers do not leak into the final one
    assert server.connections == 1


async def test_an_upgrade_offer_in_an_ordinary_response_is_just_a_header(serve, h1) -> None:
    # Apache offers h2c this way on plain responses; only a 101 actually switches protocols
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(
        body=b"plain", headers={"Upgrade": "h2c", "Connection": "Upgrade"})))
    t = h1()
    first = await asyncio.wait_for(t.asend(get(server.url)), HANG)
    status, _, body = await asyncio.wait_for(read_stream(t, get(server.url)), HANG)
    assert first.body == b"plain" and first.headers["upgrade"] == "h2c" and status == 200 and body == b"plain"


async def test_expired_idle_connections_are_replaced(serve, h1, monkeypatch: pytest.MonkeyPatch) -> None:
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(body=f"conn {n}".encode())))
    t = h1()
    assert (await t.asend(get(server.url))).body == b"conn 1"
    monkeypatch.setattr(transport_h1, "KEEPALIVE_SECONDS", -1.0)  # every idle connection is now too old
    assert (await t.asend(get(server.url))).body == b"conn 2"
    pool = pool_of(t)
    assert pool.open == 1 and len(pool.idle) == 1 and server.connections == 2


async def test_idle_connections_are_closed_after_the_keep_alive_period_without_another_request(
        serve, h1, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pool used to shrink only when asked for a connection: after a burst, a gateway that
    went quiet kept every upstream connection open. A timer now closes them once idle for the
    keep-alive period, the oldest first, and comes back for the rest."""
    closed: list[int] = []

    def bind(server: Server) -> Handler:
        async def handler(reader: Reader, writer: Writer, n: int) -> None:
            while await server.read_request(reader, n) is not None:
                writer.write(response(body=b"ok"))
                await writer.drain()
            closed.append(n)

        return handler

    server = await serve(bind=bind)
    monkeypatch.setattr(transport_h1, "KEEPALIVE_SECONDS", 0.2)
    t = h1()
    first, second = await asyncio.gather(*(asyncio.wait_for(t.asend(get(server.url)), HANG) for _ in range(2)))
    assert first.body == second.body == b"ok"
    pool = pool_of(t)
    assert pool.open == 2 and len(pool.idle) == 2 and pool.sweep is not None
    await asyncio.sleep(0.1)
    assert (await asyncio.wait_for(t.asend(get(server.url)), HANG)).body == b"ok"   # one is used again
    async def settled() -> None:
        while pool.open or len(closed) < 2:
            await asyncio.sleep(0.02)
    await asyncio.wait_for(settled(), HANG)
    assert sorted(closed) == [1, 2] and not pool.idle and pool.sweep is None and server.connections == 2


# -- compressed bodies ------------------------------------------------------------------------
def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


ENCODERS = {"gzip": ("gzip", gzip.compress), "deflate": ("deflate", zlib.compress),
            "raw-deflate": ("deflate", _raw_deflate), "x-gzip": ("x-gzip", gzip.compress)}


@pytest.mark.parametrize("encoding", list(ENCODERS))
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_compressed_bodies_are_decoded(serve, h1, encoding: str, framing: str) -> None:
    name, encode = ENCODERS[encoding]
    plain = b"".join(b"data: {\"n\": %d}\n\n" % i for i in range(2000))
    packed = encode(plain)

    def answer(line: str, headers: dict[str, str], body: bytes, n: int) -> bytes:
        if framing == "chunked":
            parts = [packed[i:i + 97] for i in range(0, len(packed), 97)]
            return response(body=chunked(*parts), headers={"Content-Encoding": name, "Transfer-Encoding": "chunked"},
                            length=False)
        return response(body=packed, headers={"Content-Encoding": name})

    server = await serve(bind=keep_alive(answer))
    t = h1()
    resp = await t.asend(get(server.url))
    status, headers, streamed = await read_stream(t, get(server.url))
    assert resp.status == 200 and resp.body == plain
    assert status == 200 and streamed == plain and headers["content-encoding"] == name
    assert server.connections == 1


async def test_aiohttp_compressed_stream_is_decoded(h1) -> None:
    web = pytest.importorskip("aiohttp.web")

    async def handler(request: Any) -> Any:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        resp.enable_compression(force=web.ContentCoding.gzip if request.query.get("c") == "gzip"
                                else web.ContentCoding.deflate)
        await resp.prepare(request)
        for i in range(50):
            await resp.write(b"data: %d\n\n" % i)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/sse", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        t = h1()
        for coding in ("gzip", "deflate"):
            status, headers, body = await read_stream(t, get(f"http://127.0.0.1:{port}/sse?c={coding}"))
            resp = await t.asend(get(f"http://127.0.0.1:{port}/sse?c={coding}"))
            assert headers["content-encoding"] == coding and status == 200
            assert body == resp.body == b"".join(b"data: %d\n\n" % i for i in range(50))
    finally:
        await runner.cleanup()


async def test_corrupt_compressed_body_is_a_transport_error(serve, h1) -> None:
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(body=b"not gzip at all",
                                                                           headers={"Content-Encoding": "gzip"})))
    t = h1(retry=fast(0))
    with pytest.raises(TransportError, match="undecodable compressed body"):
        await t.asend(get(f"{server.url}/x?key=secret"))
    assert pool_of(t).open == 0


# -- retries ------------------------------------------------------------------------------------
async def test_429_with_retry_after_ms_then_200(serve, h1) -> None:
    replies = [response(429, b"slow down", {"retry-after-ms": "5"}), response(body=b"ok")]
    server = await serve(bind=keep_alive(lambda line, h, b, n: replies.pop(0)))
    resp = await h1().asend(get(server.url))
    assert resp.status == 200 and resp.body == b"ok" and len(server.requests) == 2
    assert server.connections == 1  # the error response's body was read: the connection is reusable


async def test_500_twice_then_200(serve, h1) -> None:
    replies = [response(500, b"oops"), response(500, b"oops"), response(body=b"ok")]
    server = await serve(bind=keep_alive(lambda line, h, b, n: replies.pop(0)))
    resp = await h1(retry=fast(2)).asend(HttpRequest("POST", server.url, body=b"same"))
    assert resp.status == 200 and resp.body == b"ok"
    assert [body for *_, body in server.requests] == [b"same"] * 3


async def test_no_retries_returns_the_error_response_with_its_body(serve, h1) -> None:
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(429, b'{"error":"slow down"}')))
    t = h1(retry=fast(3))
    resp = await t.asend(get(server.url), max_retries=0)
    bad = await h1(retry=fast(0)).asend(get(server.url))
    assert resp.status == 429 and resp.json() == {"error": "slow down"}
    assert bad.status == 429 and bad.body == b'{"error":"slow down"}'
    assert len(server.requests) == 2


async def test_exhausted_retries_return_the_last_error_response(serve, h1) -> None:
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(503, f"busy {len(server.requests)}".encode())))
    resp = await h1(retry=fast(2)).asend(get(server.url))
    assert resp.status == 503 and resp.body == b"busy 3" and len(server.requests) == 3


async def test_stream_retries_an_error_status_before_handing_out_bytes(serve, h1) -> None:
    replies = [response(503, b"overloaded", {"retry-after-ms": "1"}),
               response(body=chunked(b"data: 1\n\n", b"data: 2\n\n"), headers={"Transfer-Encoding": "chunked"},
                        length=False)]
    server = await serve(bind=keep_alive(lambda line, h, b, n: replies.pop(0)))
    t = h1()
    async with t.astream(HttpRequest("POST", server.url, body=b"{}", stream=True)) as handle:
        assert handle.status == 200
        chunks = [chunk async for chunk in handle.chunks()]
    assert b"".join(chunks) == b"data: 1\n\ndata: 2\n\n" and b"overloaded" not in b"".join(chunks)
    assert len(server.requests) == 2 and server.connections == 1


async def test_stream_error_status_returns_the_body_through_chunks(serve, h1) -> None:
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(
        400, b'{"error":{"message":"bad"}}', {"Content-Type": "application/json"})))
    t = h1()
    status, headers, body = await read_stream(t, get(server.url, stream=True))
    assert status == 400 and body == b'{"error":{"message":"bad"}}' and headers["content-type"] == "application/json"
    assert len(server.requests) == 1  # 400 is not retried
    after = await t.asend(get(server.url))
    assert after.status == 400 and server.connections == 1


# -- the keep-alive race -------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["fin", "rst"])
@pytest.mark.parametrize("mode", ["asend", "astream"])
async def test_reused_connection_closed_by_the_server_is_resent_at_once(serve, h1, how: str, mode: str) -> None:
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        answered = 0
        while await server.read_request(reader, n) is not None:
            if n == 1 and answered == 1:  # the idle timeout raced the next request: close, answer nothing
                if how == "rst":
                    reset(writer)
                return
            answered += 1
            writer.write(response(body=f"conn {n}".encode()))
            await writer.drain()

    server = await serve(handler)
    t = h1(retry=fast(0))  # no retries: only the silent resend can save the second request
    first = await t.asend(get(server.url))
    if mode == "asend":
        second = await asyncio.wait_for(t.asend(get(server.url)), HANG)
        status, body = second.status, second.body
    else:
        status, _, body = await asyncio.wait_for(read_stream(t, get(server.url)), HANG)
    assert first.body == b"conn 1" and status == 200 and body == b"conn 2"
    assert server.connections == 2 and [n for n, *_ in server.requests] == [1, 1, 2]
    assert pool_of(t).open == 1


async def test_idle_connection_closed_by_the_server_is_dropped_from_the_pool(serve, h1) -> None:
    closed = asyncio.Event()

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await server.read_request(reader, n)
        writer.write(response(body=f"conn {n}".encode()))
        await writer.drain()
        if n == 1:
            writer.close()  # answer, then close the idle connection right after
            await writer.wait_closed()
            closed.set()
        else:
            await server.read_request(reader, n)

    server = await serve(handler)
    t = h1(retry=fast(0))
    assert (await t.asend(get(server.url))).body == b"conn 1"
    await closed.wait()
    pool = pool_of(t)
    for _ in range(100):  # the client sees the FIN on its next loop iterations
        if not pool.idle:
            break
        await asyncio.sleep(0.001)
    second = await t.asend(get(server.url))
    assert second.body == b"conn 2" and server.connections == 2 and pool.open == 1


async def test_bytes_on_an_idle_connection_are_never_taken_for_the_next_response(serve, h1) -> None:
    stray = asyncio.Event()

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while (req := await server.read_request(reader, n)) is not None:
            writer.write(response(body=f"conn {n}: {req[0]}".encode()))
            await writer.drain()
            if n == 1:  # some servers say 408 on an idle connection before they close it
                await asyncio.sleep(0.005)
                writer.write(response(408, b"idle", {"Connection": "close"}, reason="Request Timeout"))
                await writer.drain()
                stray.set()

    server = await serve(handler)
    t = h1(retry=fast(0))
    assert (await t.asend(get(f"{server.url}/a"))).body == b"conn 1: GET /a HTTP/1.1"
    await stray.wait()
    await asyncio.sleep(0.02)  # let the stray response reach the client
    second = await asyncio.wait_for(t.asend(get(f"{server.url}/b")), HANG)
    assert second.status == 200 and second.body == b"conn 2: GET /b HTTP/1.1"
    assert server.connections == 2 and pool_of(t).open == 1


async def test_a_second_response_in_the_same_write_never_replaces_the_first(serve, h1) -> None:
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while (req := await server.read_request(reader, n)) is not None:
            body = f"conn {n}: {req[0]}".encode()
            if len(server.requests) == 1:  # one answer, and (in the same write) part of another
                writer.write(response(body=body, headers={"X-First": "1"})
                             + b"HTTP/1.1 500 Oops\r\nX-Stray: 1\r\nContent-Length: 10\r\n\r\nabc")
            else:
                writer.write(response(body=body))
            await writer.drain()

    server = await serve(handler)
    t = h1(retry=fast(0))
    first = await asyncio.wait_for(t.asend(get(f"{server.url}/a")), HANG)
    assert (first.status, first.body) == (200, b"conn 1: GET /a HTTP/1.1")
    assert first.headers.get("x-first") == "1" and "x-stray" not in first.headers
    second = await asyncio.wait_for(t.asend(get(f"{server.url}/b")), HANG)
    assert (second.status, second.body) == (200, b"conn 2: GET /b HTTP/1.1")
    assert server.connections == 2 and pool_of(t).open == 1


async def test_bytes_after_a_complete_body_do_not_fail_it_or_resend_the_request(serve, h1) -> None:
    """A server that sends more than its Content-Length (in a later read than the head): the
    response stands, nothing is sent again, the connection is not reused."""
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while await server.read_request(reader, n) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.02)  # the client is waiting for the body now
            writer.write(b"hello, world")
            await writer.drain()

    server = await serve(handler)
    t = h1(retry=fast(2))
    resp = await asyncio.wait_for(t.asend(HttpRequest("POST", server.url, body=b"{}")), HANG)
    assert (resp.status, resp.body) == (200, b"hello")
    assert len(server.requests) == 1  # not re-sent
    second = await asyncio.wait_for(t.asend(get(server.url)), HANG)
    assert second.body == b"hello" and server.connections == 2
    assert pool_of(t).open == 0 and not pool_of(t).idle  # each connection was closed, and uncounted


@pytest.mark.parametrize("when", ["after-the-request", "on-accept", "reset-after-the-request"])
async def test_fresh_connection_closed_without_an_answer_goes_through_the_retry_policy(serve, h1, when: str) -> None:
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        if when != "on-accept":
            await server.read_request(reader, n)  # read it all, then hang up without a word
        if when.startswith("reset"):
            reset(writer)

    server = await serve(handler)
    t = h1(retry=fast(2))
    with pytest.raises(TransportError) as info:
        await asyncio.wait_for(t.asend(get(f"{server.url}/v1/x?key=secret")), HANG)
    assert type(info.value) is RemoteProtocolError and info.value.retryable
    assert "connection dropped" in str(info.value) and f"{server.url}/v1/x" in str(info.value)
    assert "secret" not in str(info.value)
    assert server.connections == 3  # 1 try + 2 retries, each on a new connection
    assert len(server.requests) == (0 if when == "on-accept" else 3)
    assert pool_of(t).open == 0


async def test_a_server_that_drops_every_reused_connection_still_gets_an_answer(serve, h1) -> None:
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await server.read_request(reader, n)
        writer.write(response(body=f"conn {n}".encode()))
        await writer.drain()
        await server.read_request(reader, n)  # the next request on this connection: hang up

    server = await serve(handler)
    t = h1(retry=fast(0))
    bodies = [(await asyncio.wait_for(t.asend(get(server.url)), HANG)).body for _ in range(4)]
    assert bodies == [b"conn 1", b"conn 2", b"conn 3", b"conn 4"]
    assert server.connections == 4


# -- failures ----------------------------------------------------------------------------------
async def test_refused_connection_is_connect_error_with_url_and_hint(h1) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = h1(retry=fast(1))
    with pytest.raises(ConnectError) as info:
        await t.asend(get(f"http://127.0.0.1:{port}/v1/x?key=secret"), hint="start ollama")
    message = str(info.value)
    assert f"could not connect to http://127.0.0.1:{port}/v1/x" in message and "start ollama" in message
    assert "secret" not in message and info.value.url == f"http://127.0.0.1:{port}/v1/x"
    with pytest.raises(ConnectError):
        async with t.astream(get(f"http://127.0.0.1:{port}/v1/x?key=secret")):
            pass  # pragma: no cover
    assert pool_of(t).open == 0


async def test_connect_timeout_is_a_timeout_error(h1) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue: the kernel drops further SYNs, connects hang
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            try:
                filler.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
        try:
            async with asyncio.timeout(0.2):
                probe = await asyncio.open_connection("127.0.0.1", port)
            probe[1].close()
            pytest.skip("this kernel accepts connections beyond the backlog")
        except builtins.TimeoutError:
            pass
        t = h1(timeouts=Timeouts(connect=0.1), retry=fast(1))
        with pytest.raises(TimeoutError) as info:
            await asyncio.wait_for(t.asend(get(f"http://127.0.0.1:{port}/v1?key=secret")), HANG)
        assert "timed out connecting to" in str(info.value) and f"127.0.0.1:{port}/v1" in str(info.value)
        assert "secret" not in str(info.value) and pool_of(t).open == 0
    finally:
        for sock in fillers:
            sock.close()
        listener.close()


async def _silent(server: Server, reader: Reader, writer: Writer, n: int) -> None:
    await server.read_request(reader, n)
    await asyncio.sleep(HANG)


async def _head_then_stall(server: Server, reader: Reader, writer: Writer, n: int) -> None:
    await server.read_request(reader, n)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst bytes")
    await writer.drain()
    await asyncio.sleep(HANG)


async def _chunked_then_stall(server: Server, reader: Reader, writer: Writer, n: int) -> None:
    await server.read_request(reader, n)
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
    await writer.drain()
    await asyncio.sleep(HANG)


async def _cut_short(server: Server, reader: Reader, writer: Writer, n: int) -> None:
    await server.read_request(reader, n)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst bytes")
    await writer.drain()


async def _reset_mid_body(server: Server, reader: Reader, writer: Writer, n: int) -> None:
    await _cut_short(server, reader, writer, n)
    await asyncio.sleep(0.01)
    reset(writer)


async def _garbage(server: Server, reader: Reader, writer: Writer, n: int) -> None:
    await server.read_request(reader, n)
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\nthis is not HTTP\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(HANG)


async def _huge_head(server: Server, reader: Reader, writer: Writer, n: int) -> None:
    await server.read_request(reader, n)
    writer.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (70 * 1024) + b"\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()
    await asyncio.sleep(HANG)


async def _huge_head_trickled(server: Server, reader: Reader, writer: Writer, n: int) -> None:
    await server.read_request(reader, n)
    writer.write(b"HTTP/1.1 200 OK\r\n")
    for i in range(100):  # many ordinary headers, each its own write: 100 KiB in all, never ending
        writer.write(b"X-H%d: " % i + b"b" * 1024 + b"\r\n")
        await writer.drain()
        await asyncio.sleep(0)
    await asyncio.sleep(HANG)


async def _upgrade(server: Server, reader: Reader, writer: Writer, n: int) -> None:
    await server.read_request(reader, n)
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello")
    await writer.drain()
    await asyncio.sleep(HANG)


# (server, error type, words the message must contain (asend, astream), whether the stream opens first)
FAILURES: dict[str, tuple[Any, type[TransportError], str, str, bool]] = {
    "silent": (_silent, ReadTimeout, "passed its 0.2 s deadline", "passed its 0.2 s deadline", False),   # timeout=0.2
    "head-then-stall": (_head_then_stall, ReadTimeout, "timed out", "waiting for the next chunk of the stream", True),
    "chunked-then-stall": (_chunked_then_stall, ReadTimeout, "timed out", "next chunk of the stream", True),
    "cut-short": (_cut_short, RemoteProtocolError, "connection dropped", "connection dropped mid-stream", True),
    "reset-mid-body": (_reset_mid_body, RemoteProtocolError, "connection dropped", "connection dropped mid-stream", True),
    "garbage": (_garbage, RemoteProtocolError, "invalid HTTP response", "invalid HTTP response", False),
    "huge-head": (_huge_head, RemoteProtocolError, "exceeds 65536 bytes", "exceeds 65536 bytes", False),
    "huge-head-trickled": (_huge_head_trickled, RemoteProtocolError, "exceeds 65536 bytes", "exceeds 65536 bytes", False),
    "upgrade": (_upgrade, RemoteProtocolError, "switch protocols", "switch protocols", False),
}


@pytest.mark.parametrize("case", list(FAILURES))
async def test_misbehaving_servers_fail_with_a_clear_error(serve, h1, case: str) -> None:
    behave, kind, in_send, in_stream, stream_opens = FAILURES[case]
    server = await serve(lambda r, w, n: behave(server, r, w, n))
    t = h1(retry=fast(0))
    url = f"{server.url}/v1/chat?key=secret"

    with pytest.raises(kind) as sent:
        await asyncio.wait_for(t.asend(get(url, timeout=0.2)), HANG)
    assert in_send in str(sent.value)

    received: list[bytes] = []
    with pytest.raises(kind) as streamed:
        async with t.astream(get(url, timeout=0.2, stream=True)) as handle:
            assert stream_opens and handle.status == 200
            async for chunk in handle.chunks():
                received.append(chunk)
    assert in_stream in str(streamed.value)
    if stream_opens:
        assert received and b"".join(received).startswith(b"first")  # what came is handed out, then the error

    for err in (sent.value, streamed.value):
        assert type(err) is kind and "secret" not in str(err) and err.url == f"{server.url}/v1/chat"
        assert f"{server.url}/v1/chat" in str(err)
    assert server.connections == 2  # max_retries=0: one connection per call, nothing resent
    pool = pool_of(t)
    assert pool.open == 0 and not pool.idle


async def test_retryable_failures_are_retried_by_the_policy(serve, h1) -> None:
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await server.read_request(reader, n)
        if n < 3:
            writer.write(b"garbage\r\n\r\n")
        else:
            writer.write(response(body=b"third time"))
        await writer.drain()
        await server.read_request(reader, n)

    server = await serve(handler)
    resp = await asyncio.wait_for(h1(retry=fast(2)).asend(get(server.url)), HANG)
    assert resp.body == b"third time" and server.connections == 3


async def test_read_timeout_applies_to_a_reused_connection(serve, h1) -> None:
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await server.read_request(reader, n)
        writer.write(response(body=b"once"))
        await writer.drain()
        await _silent(server, reader, writer, n)

    server = await serve(handler)
    t = h1(retry=fast(0))
    assert (await t.asend(get(server.url))).body == b"once"
    with pytest.raises(TimeoutError, match="passed its 0.2 s deadline before a response came"):
        await asyncio.wait_for(t.asend(get(server.url, timeout=0.2)), HANG)
    assert server.connections == 1 and pool_of(t).open == 0


@pytest.mark.parametrize("failure", ["timeout", "drop", "refused"])
async def test_an_error_names_the_url_of_the_request_that_failed_not_the_pools_first(serve, h1, failure: str) -> None:
    """One pool serves every path of a host and port (two Azure deployments on one resource):
    a timeout, a drop or a refused connection on the second deployment names that deployment,
    never the first URL the pool was opened for."""

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while (req := await server.read_request(reader, n)) is not None:
            if "/eu/" not in req[0]:
                writer.write(response(body=b"ok", headers={"Connection": "close"} if failure == "refused" else None))
                await writer.drain()
                continue
            if failure == "drop":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst bytes")
                await writer.drain()
                return
            await asyncio.sleep(HANG)

    server = await serve(handler)
    t = h1(retry=fast(0))
    first, second = f"{server.url}/deployments/prod/chat", f"{server.url}/deployments/eu/chat"
    assert (await asyncio.wait_for(t.asend(get(first + "?key=secret")), HANG)).body == b"ok"
    if failure == "refused":
        await server.close()  # the next request needs a new connection, and none is accepted
    kind = {"timeout": ReadTimeout, "drop": RemoteProtocolError, "refused": ConnectError}[failure]
    with pytest.raises(kind) as info:
        await asyncio.wait_for(t.asend(get(second + "?key=secret", timeout=0.3)), HANG)
    assert info.value.url == second and second in str(info.value)
    assert "/prod/" not in str(info.value) and "secret" not in str(info.value)


async def test_read_timeout_is_per_read_not_per_response(serve, h1) -> None:
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await server.read_request(reader, n)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(12):  # 12 x 0.05 s: longer than the timeout in all, never a 0.5 s gap
            await asyncio.sleep(0.05)
            writer.write(chunked(b"%d" % i)[:-5])
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await server.read_request(reader, n)

    server = await serve(handler)
    status, _, body = await asyncio.wait_for(read_stream(h1(retry=fast(0)), get(server.url, timeout=0.5)), HANG)
    assert status == 200 and body == b"".join(b"%d" % i for i in range(12))


# -- leaving early ------------------------------------------------------------------------------
async def test_abandoned_stream_does_not_poison_the_pool(serve, h1) -> None:
    eofs: list[int] = []

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while (req := await server.read_request(reader, n)) is not None:
            if req[0].startswith("POST"):
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for i in range(1000):
                    writer.write(chunked(b"data: %d\n\n" % i)[:-5])
                    await writer.drain()
                    await asyncio.sleep(0.001)
                writer.write(b"0\r\n\r\n")
            else:
                writer.write(response(body=b"fine"))
            await writer.drain()
        eofs.append(n)

    server = await serve(handler)
    t = h1()
    async with t.astream(HttpRequest("POST", server.url, body=b"{}", stream=True)) as handle:
        async for chunk in handle.chunks():
            assert chunk.startswith(b"data: 0")
            break  # the caller went away after the first chunk
    pool = pool_of(t)
    assert pool.open == 0 and not pool.idle
    after = await asyncio.wait_for(t.asend(get(server.url)), HANG)
    assert after.body == b"fine" and server.connections == 2 and pool.open == 1


async def test_unread_complete_stream_returns_its_connection_to_the_pool(serve, h1) -> None:
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(body=b"x" * 1000)))
    t = h1()
    async with t.astream(get(server.url)) as handle:
        assert handle.status == 200  # looked at the status only
        await asyncio.sleep(0.02)
    again = await asyncio.wait_for(t.asend(get(server.url)), HANG)
    assert again.body == b"x" * 1000 and server.connections == 1 and pool_of(t).open == 1


async def test_unread_stream_paused_for_backpressure_does_not_hang_the_next_request(serve, h1) -> None:
    written = asyncio.Event()
    head = 250 * 1024  # below the high-water mark on its own...
    tail = 10 * 1024  # ...above it once the last piece and the end of the body land together

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while await server.read_request(reader, n) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(b"h" * head)[:-5])
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(chunked(b"t" * tail))
            await writer.drain()
            written.set()

    server = await serve(handler)
    t = h1(retry=fast(0))
    async with t.astream(get(server.url)) as handle:
        assert handle.status == 200
        await written.wait()
        await asyncio.sleep(0.05)  # the whole body is in; the consumer never read it
    resp = await asyncio.wait_for(t.asend(get(server.url, timeout=1.0)), HANG)
    assert resp.body == b"h" * head + b"t" * tail


async def test_cancelled_requests_leave_the_pool_usable(serve, h1) -> None:
    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while (req := await server.read_request(reader, n)) is not None:
            if req[0].startswith("GET /slow"):
                await asyncio.sleep(HANG)
            writer.write(response(body=b"quick"))
            await writer.drain()

    server = await serve(handler)
    t = h1(max_connections=1)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(t.asend(get(f"{server.url}/slow")), 0.05)  # cancelled waiting for the head
    pool = pool_of(t)
    assert pool.open == 0 and not pool.idle and not pool.waiters

    # one request holds the only connection; a second, queued for it, is cancelled
    slow = asyncio.create_task(t.asend(get(f"{server.url}/slow")))
    await asyncio.sleep(0.01)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(t.asend(get(f"{server.url}/quick")), 0.05)
    assert pool.open == 1
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert pool.open == 0

    # and a stream cancelled mid-body
    async def stream_slowly() -> None:
        async with t.astream(get(f"{server.url}/quick")) as handle:
            async for _ in handle.chunks():
                await asyncio.sleep(HANG)

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(stream_slowly(), 0.05)
    assert pool.open in (0, 1) and len(pool.idle) == pool.open

    results = await asyncio.wait_for(asyncio.gather(*(t.asend(get(f"{server.url}/q{i}")) for i in range(5))), HANG)
    assert [r.body for r in results] == [b"quick"] * 5
    assert pool.open == 1 and len(pool.idle) == 1


async def test_aclose_while_requests_are_in_flight_closes_their_connections_when_done(serve, h1) -> None:
    answer = asyncio.Event()
    hung_up = asyncio.Event()

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await server.read_request(reader, n)
        await answer.wait()
        writer.write(response(body=b"done"))
        await writer.drain()
        if await reader.read(1) == b"":  # the client closed the connection
            hung_up.set()

    server = await serve(handler)
    t = h1()
    in_flight = asyncio.create_task(t.asend(get(server.url)))
    while not server.requests:
        await asyncio.sleep(0.001)
    pool = pool_of(t)
    await t.aclose()
    answer.set()
    assert (await asyncio.wait_for(in_flight, HANG)).body == b"done"
    # not parked in a pool nobody will close again: the socket would stay open for good
    await asyncio.wait_for(hung_up.wait(), HANG)
    assert pool.open == 0 and not pool.idle


async def test_churn_never_mixes_up_responses_or_the_pool_count(serve, h1) -> None:
    """Many concurrent requests over connections the server drops (idle, or as a request
    arrives), some of them slow and abandoned: every answer belongs to its request, and the
    pool's books balance at the end."""
    seen_open: list[int] = []

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        answered = 0
        while (req := await server.read_request(reader, n)) is not None:
            seen_open.append(pool_of(t).open)
            if answered == 1 + n % 3:  # this connection has had enough: hang up on the request
                if n % 2:
                    reset(writer)
                return
            answered += 1
            if "/slow" in req[0]:
                await asyncio.sleep(0.05)
            writer.write(response(body=req[0].encode(), headers={"Connection": "close"} if n % 5 == 0 else None))
            await writer.drain()

    server = await serve(handler)
    t = h1(max_connections=8, retry=fast(3))

    async def one(i: int) -> bytes | None:
        path = f"/slow{i}" if i % 7 == 0 else f"/r{i}"
        try:
            resp = await asyncio.wait_for(t.asend(get(server.url + path)), 0.02 if i % 7 == 0 else HANG)
        except builtins.TimeoutError:  # asyncio's, from wait_for: the slow ones are abandoned
            return None
        assert resp.body == f"GET {path} HTTP/1.1".encode()
        return resp.body

    for _ in range(3):
        results = await asyncio.gather(*(one(i) for i in range(150)))
        assert sum(r is not None for r in results) >= 150 - 150 // 7 - 1
    pool = pool_of(t)
    assert pool.open == len(pool.idle) and pool.open <= 8 and not pool.waiters
    # (the server's own count of live connections lags: it notices a cancelled request's close late)
    assert max(seen_open) <= 8 and server.connections > 8


# -- backpressure -------------------------------------------------------------------------------
BIG = 4 * 1024 * 1024


def _big_body() -> bytes:
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB of non-repeating-looking bytes
    return b"".join(bytes([i]) + block[1:] for i in range(BIG // len(block)))


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_slow_consumer_gets_every_byte_in_order(serve, h1, framing: str) -> None:
    body = _big_body()

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while await server.read_request(reader, n) is not None:
            if framing == "chunked":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for i in range(0, BIG, 65536):
                    writer.write(chunked(body[i:i + 65536])[:-5])
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
                for i in range(0, BIG, 65536):
                    writer.write(body[i:i + 65536])
                    await writer.drain()
            await writer.drain()

    server = await serve(handler)
    t = h1(retry=fast(0))
    digest, sizes = hashlib.sha256(), []
    async with t.astream(get(server.url, timeout=2.0)) as handle:
        async for chunk in handle.chunks():
            digest.update(chunk)
            sizes.append(len(chunk))
            await asyncio.sleep(0.01 if len(sizes) < 5 else 0)  # slow at first: the server gets far ahead
    assert digest.digest() == hashlib.sha256(body).digest() and sum(sizes) == BIG
    # reading paused near the high-water mark: the client never held the whole body at once
    assert max(sizes) < 2 * h1_connection.HIGH_WATER + 256 * 1024
    resp = await asyncio.wait_for(t.asend(get(server.url, timeout=2.0)), HANG)  # a body above the mark, whole
    assert hashlib.sha256(resp.body).digest() == hashlib.sha256(body).digest()
    assert server.connections == 1


async def test_a_consumer_slower_than_the_read_timeout_is_not_a_timeout_nor_a_busy_timer(
        serve, h1, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paused for our own consumer, the connection waits on us, not on the server: no
    timeout, and the timer is not re-armed every few milliseconds meanwhile."""
    body = _big_body()
    checks = 0
    original = h1_connection.Connection._check_timeout

    def counting(self: Any) -> None:
        nonlocal checks
        checks += 1
        original(self)

    monkeypatch.setattr(h1_connection.Connection, "_check_timeout", counting)

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        while await server.read_request(reader, n) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
            writer.write(body)
            await writer.drain()

    server = await serve(handler)
    t = h1(retry=fast(0))
    got = bytearray()
    async with t.astream(get(server.url, timeout=0.2)) as handle:
        async for chunk in handle.chunks():
            got += chunk
            if len(got) == len(chunk):
                await asyncio.sleep(0.6)  # three read timeouts, with the socket paused for us
    assert bytes(got) == body
    assert checks < 10


# -- refused before sending ---------------------------------------------------------------------
@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer sk-123\r\nX-Injected: 1"},
    {"X-Api-Key": "sk-123\n"},
    {"X-Evil\r\nX-Injected": "1"},
])
async def test_header_with_a_line_break_is_refused_and_nothing_is_sent(serve, h1, headers: dict[str, str]) -> None:
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(body=b"should not happen")))
    t = h1(retry=fast(3))
    with pytest.raises(TransportError) as sent:
        await t.asend(HttpRequest("POST", f"{server.url}/v1?key=secret", headers=headers, body=b"{}"))
    with pytest.raises(TransportError) as streamed:
        async with t.astream(HttpRequest("POST", f"{server.url}/v1?key=secret", headers=headers, stream=True)):
            pass  # pragma: no cover
    for err in (sent.value, streamed.value):
        assert not err.retryable and "line break" in str(err)
        assert "sk-123" not in str(err) and "secret" not in str(err)
    await asyncio.sleep(0.01)
    assert server.connections == 0 and not server.requests


async def test_a_header_value_that_is_not_latin_1_is_refused_and_nothing_is_sent(serve, h1) -> None:
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(body=b"should not happen")))
    t = h1(retry=fast(3))
    with pytest.raises(TransportError) as info:
        await t.asend(HttpRequest("POST", f"{server.url}/v1", headers={"x-api-key": "sk-\u2603"}, body=b"{}"))
    assert not info.value.retryable and "Latin-1" in str(info.value) and "sk-" not in str(info.value)
    await asyncio.sleep(0.01)
    assert server.connections == 0


async def test_credentials_in_the_url_become_basic_auth_and_stay_out_of_errors(serve, h1) -> None:
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(body=h.get("authorization", "").encode())))
    t = h1(retry=fast(0))
    resp = await t.asend(HttpRequest("POST", f"http://us%40er:p%3Ass@127.0.0.1:{server.port}/v1", body=b"{}"))
    assert base64.b64decode(resp.body.removeprefix(b"Basic ")) == b"us@er:p:ss"
    # an explicit Authorization header wins over the URL's credentials
    resp = await t.asend(HttpRequest("POST", f"http://user:pw@127.0.0.1:{server.port}/v1",
                                     headers={"Authorization": "Bearer k"}, body=b"{}"))
    assert resp.body == b"Bearer k"
    with pytest.raises(ConnectError) as info:
        await t.asend(HttpRequest("POST", f"http://user:hunter2@127.0.0.1:{unused_port()}/v1", body=b"{}"))
    assert "hunter2" not in str(info.value) and "user" not in str(info.value)


async def test_head_requests_are_refused_clearly(serve, h1) -> None:
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(body=b"x")))
    t = h1(retry=fast(3))
    with pytest.raises(TransportError) as info:
        await t.asend(HttpRequest("HEAD", f"{server.url}/v1?key=secret"))
    assert "HEAD" in str(info.value) and "httpx" in str(info.value) and "secret" not in str(info.value)
    assert not info.value.retryable  # it will never work: not worth a retry
    await asyncio.sleep(0.01)
    assert server.connections == 0


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "127.0.0.1:8080/x", "http://127.0.0.1:99999/x"])
async def test_unusable_urls_are_refused(h1, url: str) -> None:
    with pytest.raises(TransportError) as info:
        await h1(retry=fast(3)).asend(get(url))
    assert not info.value.retryable


# -- TLS ---------------------------------------------------------------------------------------
@pytest.fixture
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context with a cert for 127.0.0.1, client context trusting its test CA)."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


async def test_tls_untrusted_certificate_is_a_connect_error(serve, h1, tls) -> None:
    server_ctx, _ = tls
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(body=b"secure")), ssl_context=server_ctx)
    t = h1(retry=fast(2))
    with pytest.raises(ConnectError) as info:
        await asyncio.wait_for(t.asend(get(f"{server.url}/v1?key=secret")), HANG)
    message = str(info.value)
    assert "TLS" in message and "CERTIFICATE_VERIFY_FAILED" in message and f"{server.url}/v1" in message
    assert "secret" not in message and not info.value.retryable  # a certificate problem is not retried
    assert pool_of(t).open == 0 and not server.requests


async def test_tls_with_a_trusted_certificate(serve, h1, tls) -> None:
    server_ctx, client_ctx = tls
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(body=b"secure " + line.encode())),
                         ssl_context=server_ctx)
    t = h1()
    t._ssl = client_ctx
    first = await asyncio.wait_for(t.asend(get(f"{server.url}/a")), HANG)
    status, _, streamed = await asyncio.wait_for(read_stream(t, get(f"{server.url}/b")), HANG)
    assert first.body == b"secure GET /a HTTP/1.1" and status == 200 and streamed == b"secure GET /b HTTP/1.1"
    assert server.connections == 1
    host = [h for _, _, h, _ in server.requests][0]["host"]
    assert host == f"127.0.0.1:{server.port}"


async def test_tls_keep_alive_race_is_resent_at_once(serve, h1, tls) -> None:
    server_ctx, client_ctx = tls

    async def handler(reader: Reader, writer: Writer, n: int) -> None:
        await server.read_request(reader, n)
        writer.write(response(body=f"conn {n}".encode()))
        await writer.drain()
        await server.read_request(reader, n)  # the next request on this connection: hang up

    server = await serve(handler, ssl_context=server_ctx)
    t = h1(retry=fast(0))
    t._ssl = client_ctx
    bodies = [(await asyncio.wait_for(t.asend(get(server.url)), HANG)).body for _ in range(3)]
    assert bodies == [b"conn 1", b"conn 2", b"conn 3"] and server.connections == 3


async def test_ipv6_literal_host(h1) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    seen: list[bytes] = []

    async def handler(reader: Reader, writer: Writer) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        writer.write(response(body=b"v6"))
        await writer.drain()
        writer.close()

    try:
        server = await asyncio.start_server(handler, "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback")
    port = server.sockets[0].getsockname()[1]
    try:
        resp = await asyncio.wait_for(h1().asend(get(f"http://[::1]:{port}/x")), HANG)
    finally:
        server.close()
        await server.wait_closed()
    assert resp.body == b"v6" and f"host: [::1]:{port}\r\n".encode() in seen[0]


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
async def test_tls_trusts_ssl_cert_file_and_dir_as_httpx_does(serve, h1, tmp_path, monkeypatch, variable: str) -> None:
    """A private CA named by SSL_CERT_FILE or SSL_CERT_DIR is trusted by the httpx client (the
    sync path, and the async one when a proxy is set): the default async client must agree."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    if variable == "SSL_CERT_DIR":  # OpenSSL looks a CA up by its subject hash
        import subprocess

        digest = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", str(pem)], capture_output=True,
                                text=True, check=False).stdout.strip()
        if not digest:
            pytest.skip("no openssl command to name the CA file")
        (tmp_path / f"{digest}.0").write_bytes(pem.read_bytes())
        monkeypatch.setenv(variable, str(tmp_path))
    else:
        monkeypatch.setenv(variable, str(pem))
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(body=b"private ca")), ssl_context=server_ctx)
    t = h1()
    assert (await asyncio.wait_for(t.asend(get(server.url)), HANG)).body == b"private ca"


async def test_an_unreadable_ssl_cert_file_is_a_clear_error_not_a_dropped_connection(h1, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    t = h1(retry=fast(2))
    with pytest.raises(TransportError) as info:
        await asyncio.wait_for(t.asend(get("https://127.0.0.1:9/v1")), HANG)
    assert "SSL_CERT_FILE" in str(info.value) and not info.value.retryable


async def test_a_user_agent_is_sent_unless_the_request_has_one(serve, h1) -> None:
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(body=h.get("user-agent", "").encode())))
    t = h1(retry=fast(0))
    default = await t.asend(HttpRequest("POST", f"{server.url}/v1", body=b"{}"))
    own = await t.asend(HttpRequest("POST", f"{server.url}/v1", headers={"User-Agent": "mine/1"}, body=b"{}"))
    assert default.body.startswith(b"cloverleaf/") and own.body == b"mine/1"


async def test_a_path_outside_ascii_is_percent_encoded_and_never_raises_with_the_query(serve, h1) -> None:
    server = await serve(bind=keep_alive(lambda line, h, b, n: response(body=line.encode())))
    t = h1(retry=fast(0))
    resp = await t.asend(HttpRequest("POST", f"{server.url}/models/caf\u00e9-\u2603:generate?key=sk-secret", body=b"{}"))
    assert resp.body == b"POST /models/caf%C3%A9-%E2%98%83:generate?key=sk-secret HTTP/1.1"
