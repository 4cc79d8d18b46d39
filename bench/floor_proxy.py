"""The floor: the least a Python gateway on this stack can add, measured beside cloverleaf.

Issue 13 asks for targets that no Python process may be able to reach on this machine
(≤ 0.3 ms added at p50 with one client; ≥ 5,000 req/s on one core). Whether a miss is
cloverleaf's layers or the platform is a question for a measurement, not an opinion, so
this target does only what every gateway must and nothing else:

- an HTTP/1.1 server on uvloop with llhttp (``httptools``), keep-alive, one request at a
  time per connection (what the load generator sends);
- the request body parsed as JSON (a gateway routes on ``model`` and counts tokens), then
  sent unchanged to the upstream over a pooled keep-alive connection, on the same path;
- the answer parsed as JSON (a gateway reads ``usage`` to price the call), then written back
  in one write; a stream (``text/event-stream``) is relayed chunk by chunk as it arrives.

No keys, no limits, no records, no metrics, no error handling beyond closing a broken
connection: it is a yardstick, not a product. What cloverleaf adds over it is the cost of
its features and layers; what it adds over the direct call is the platform's share.

Run: ``python -m bench.floor_proxy --port P --upstream http://127.0.0.1:M`` (prints
``READY <port>``); ``bench/run.py --targets floor,...`` starts it pinned like the gateways.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import deque
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
import orjson

from .mock_upstream import run_until_interrupted


class Upstream(asyncio.Protocol):
    """One keep-alive connection to the upstream, serving one exchange at a time."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.client: Downstream | None = None
        self.stream = False
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)   # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.discard(self)
        if self.client is not None:
            self.client.fail()

    def send(self, client: Downstream, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        self.client, self.stream, self.body = client, False, []
        self.transport.write(head + body)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type" and value.startswith(b"text/event-stream"):
            self.stream = True

    def on_headers_complete(self) -> None:
        if self.stream and self.client is not None:
            self.client.start_stream(self.parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        if self.stream and self.client is not None:
            self.client.chunk(body)
        else:
            self.body.append(body)

    def on_message_complete(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            if self.stream:
                client.end_stream()
            else:
                body = b"".join(self.body)
                orjson.loads(body)          # a gateway reads usage from every answer
                client.answer(self.parser.get_status_code(), body)
        self.pool.release(self)


class Pool:
    """Idle keep-alive connections to one origin; a new one when none is idle."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: deque[Upstream] = deque()
        self.head = f"host: {host}:{port}\r\ncontent-type: application/json\r\n".encode()

    def request_head(self, method: bytes, path: bytes, body: bytes) -> bytes:
        return (method + b" " + path + b" HTTP/1.1\r\n" + self.head + b"content-length: "
                + str(len(body)).encode() + b"\r\n\r\n")

    async def connect_and_send(self, client: Downstream, head: bytes, body: bytes) -> None:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: Upstream(self), self.host, self.port)
        conn.send(client, head, body)

    def release(self, conn: Upstream) -> None:
        self.idle.append(conn)

    def discard(self, conn: Upstream) -> None:
        try:
            self.idle.remove(conn)
        except ValueError:
            pass

    def close(self) -> None:
        """Close the idle connections: the upstream's ``wait_closed()`` waits for them (Python 3.12+)."""
        while self.idle:
            conn = self.idle.popleft()
            if conn.transport is not None:
                conn.transport.close()


class Downstream(asyncio.Protocol):
    """One client connection: parse a request, forward it, write the answer back."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.tasks: set[asyncio.Task[Any]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)   # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.fail()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self.body)
        self.body = []
        if body:
            orjson.loads(body)              # a gateway routes on the model and counts the input
        head = self.pool.request_head(self.parser.get_method(), self.url, body)
        if self.pool.idle:                  # the common case: no task, no await
            self.pool.idle.pop().send(self, head, body)
            return
        task = asyncio.get_running_loop().create_task(self.pool.connect_and_send(self, head, body))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def answer(self, status: int, body: bytes) -> None:
        if self.transport is not None:
            self.transport.write(b"HTTP/1.1 %d OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                                 % (status, len(body), body))

    def start_stream(self, status: int) -> None:
        if self.transport is not None:
            self.transport.write(b"HTTP/1.1 %d OK\r\ncontent-type: text/event-stream\r\n"
                                 b"transfer-encoding: chunked\r\n\r\n" % status)

    def chunk(self, data: bytes) -> None:
        if self.transport is not None and data:
            self.transport.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self) -> None:
        if self.transport is not None:
            self.transport.write(b"0\r\n\r\n")

    def fail(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


async def start(port: int, upstream: str) -> tuple[asyncio.Server, Pool]:
    """Listening on 127.0.0.1:``port`` (0: any free port), relaying to ``upstream``; the pool
    of upstream connections is returned too, for the caller to close after the server."""
    origin = urlsplit(upstream)
    pool = Pool(origin.hostname or "127.0.0.1", origin.port or 80)
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: Downstream(pool), "127.0.0.1", port, backlog=1024), pool


async def serve(port: int, upstream: str) -> None:
    server, _ = await start(port, upstream)
    print(f"READY {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the mock's base URL, e.g. http://127.0.0.1:18080")
    args = parser.parse_args()
    run_until_interrupted(serve(args.port, args.upstream))


if __name__ == "__main__":
    main()
