"""The h1 connection's exchange as explicit states, driven byte by byte without a socket.

``READY -> SENT -> HEAD -> BODY -> DONE -> IDLE`` (parked) and ``FAILED`` from anywhere; the
pool and the transport read nothing else (see ``transport/h1/parser.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cloverleaf._errors import ReadTimeout, RemoteProtocolError
from cloverleaf.transport.h1.connection import Connection, Stale
from cloverleaf.transport.h1.head import Origin
from cloverleaf.transport.h1.parser import BODY, DONE, FAILED, HEAD, IDLE, READY, SENT

pytest.importorskip("httptools")


class FakeSocket:
    """An asyncio transport that records what is written and whether reading is paused."""

    def __init__(self) -> None:
        self.written = b""
        self.paused = False
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def writelines(self, parts: Any) -> None:
        self.written += b"".join(parts)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def close(self) -> None:
        self.closed = True


class Owner:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.origin = Origin("http://upstream.test/v1")
        self.forgotten: list[Connection] = []

    def forget(self, conn: Connection) -> None:
        self.forgotten.append(conn)


def connect() -> tuple[Connection, FakeSocket, Owner]:
    owner = Owner(asyncio.get_running_loop())
    conn = Connection(owner)
    sock = FakeSocket()
    conn.connection_made(sock)  # type: ignore[arg-type]
    return conn, sock, owner


async def test_one_exchange_walks_the_states_in_order() -> None:
    conn, sock, _ = connect()
    assert conn.state == READY
    conn.send(b"GET /v1 HTTP/1.1\r\n\r\n", None, first_byte=5.0, idle=5.0)
    assert conn.state == SENT and sock.written.startswith(b"GET /v1")
    conn.data_received(b"HTTP/1.1 200 OK\r\ncontent-le")
    assert conn.state == HEAD
    conn.data_received(b"ngth: 5\r\n\r\nhe")
    assert conn.state == BODY and conn.status == 200 and conn.take() == b"he"
    conn.data_received(b"llo")
    assert conn.state == DONE and conn.take() == b"llo" and conn.reusable()
    conn.park()
    assert conn.state == IDLE
    conn.unpark()
    assert conn.state == READY and conn.reused


async def test_an_interim_response_stays_in_head() -> None:
    conn, _, _ = connect()
    conn.send(b"POST / HTTP/1.1\r\n\r\n", b"{}", first_byte=5.0, idle=5.0)
    conn.data_received(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert conn.state == HEAD
    conn.data_received(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert conn.state == DONE and conn.status == 204


async def test_bytes_on_a_parked_connection_close_it_and_it_leaves_the_pool() -> None:
    conn, sock, owner = connect()
    conn.park()
    conn.data_received(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    assert sock.closed
    conn.connection_lost(None)
    assert owner.forgotten == [conn]


async def test_garbage_fails_the_exchange() -> None:
    conn, sock, _ = connect()
    conn.send(b"GET / HTTP/1.1\r\n\r\n", None, first_byte=5.0, idle=5.0)
    conn.data_received(b"NOT HTTP AT ALL\r\n\r\n")
    assert conn.state == FAILED and isinstance(conn.error, RemoteProtocolError) and sock.closed
    with pytest.raises(RemoteProtocolError):
        await conn.wait()


async def test_a_reused_connection_closed_before_any_byte_is_stale() -> None:
    conn, _, _ = connect()
    conn.park()
    conn.unpark()
    conn.send(b"GET / HTTP/1.1\r\n\r\n", None, first_byte=5.0, idle=5.0)
    conn.connection_lost(None)
    assert conn.state == FAILED and isinstance(conn.error, Stale)


async def test_a_close_delimited_body_ends_at_the_close() -> None:
    conn, _, _ = connect()
    conn.send(b"GET / HTTP/1.1\r\n\r\n", None, first_byte=5.0, idle=5.0)
    conn.data_received(b"HTTP/1.1 200 OK\r\n\r\npartial")
    assert conn.state == BODY and conn.until_eof
    conn.connection_lost(None)
    assert conn.state == DONE and conn.take() == b"partial" and not conn.reusable()


async def test_the_first_byte_and_idle_waits_are_separate() -> None:
    conn, _, _ = connect()
    conn.send(b"GET / HTTP/1.1\r\n\r\n", None, first_byte=0.05, idle=5.0)
    with pytest.raises(ReadTimeout, match="first_byte_timeout"):
        await asyncio.wait_for(conn.wait(), 5)
    conn2, _, _ = connect()
    conn2.send(b"GET / HTTP/1.1\r\n\r\n", None, first_byte=5.0, idle=0.05)
    conn2.data_received(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    assert conn2.state == BODY
    with pytest.raises(ReadTimeout, match="idle_timeout"):
        await asyncio.wait_for(conn2.wait(), 5)
