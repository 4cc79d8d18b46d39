"""One kept-alive HTTP/1.1 connection as an asyncio protocol: flow control and timeouts.

The response parsing and the exchange's states are :class:`~.parser.ResponseParser`'s; the
request head is :mod:`.head`'s; pools and the transport contract are :mod:`.pool`'s. This
class adds what needs the event loop: writing the request, pausing the socket when the
consumer falls behind (``HIGH_WATER``), waking the one consumer waiting on ``waiter``, and
the two read timeouts: ``first_byte`` until the response head is complete, ``idle`` between
pieces of the body afterwards (a paused socket waits on us, not the server: its clock
restarts on resume). One timer per exchange, re-armed lazily, so a stream costs no timer
operation per chunk.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from ..._errors import ReadTimeout, RemoteProtocolError
from ..base import dropped_message, timeout_message
from .head import Origin
from .parser import BODY, DONE, FAILED, HEAD, IDLE, MAX_HEAD_BYTES, READY, SENT, ResponseParser, Stray


class Owner(Protocol):
    """What a connection needs of its pool (:class:`~.pool.Pool`): the loop, where it goes, and
    to be told when the server closes it while idle. A protocol keeps the import one way."""

    loop: asyncio.AbstractEventLoop
    origin: Origin

    def forget(self, conn: Connection) -> None: ...

#: Unread stream bytes above this pause reading from the socket until the consumer catches up.
HIGH_WATER = 256 * 1024


class Stale(Exception):
    """A reused connection was closed by the server before any byte of the response came."""


class Connection(ResponseParser, asyncio.Protocol):
    """One kept-alive connection, serving one exchange at a time. Everything the response
    parser reports lands on the current exchange; the consumer waits on ``waiter``."""

    def __init__(self, pool: Owner) -> None:
        import httptools

        self._httptools = httptools
        self.pool = pool
        self.loop = pool.loop
        #: The redacted URL of the exchange in progress, named by its errors. The transport sets
        #: it per request: a pool serves every path of its (tls, host, port), so the URL that
        #: opened the connection may be another deployment's (this is only its first value).
        self.where = pool.origin.where
        self.transport: asyncio.Transport | None = None
        #: The socket is gone (closed by either side); the state says how far the exchange got.
        self.closed = False
        #: Taken from the pool at least once: a close before any response byte is the keep-alive race.
        self.reused = False
        #: Reading is paused until the consumer takes what is buffered.
        self.paused = False
        self.idle_since = 0.0
        self.last_io = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._first_byte = 0.0
        self._idle = 0.0
        self.parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self._begin_exchange()
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.waiter: asyncio.Future[None] | None = None

    # -- states, as the pool reads them ---------------------------------------------------------
    @property
    def head_done(self) -> bool:
        return self.state >= BODY

    @property
    def complete(self) -> bool:
        return self.state == DONE

    def park(self) -> None:
        """Into the pool's idle deque: any byte now answers nothing we asked."""
        self._reset()
        self.state = IDLE
        self.idle_since = self.loop.time()

    def unpark(self) -> None:
        self.state = READY
        self.reused = True

    # -- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def peer_address(self) -> str:
        """The IP address this connection reached ("" when the socket does not say)."""
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return str(peer[0]) if isinstance(peer, tuple) and peer else ""

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state == IDLE:
            # Bytes on an idle connection answer nothing we asked (often a 408 before a close);
            # parsed, they would be taken for the next request's response. The connection goes.
            self.close()
            return
        if state == SENT or state == READY:
            self.state = state = HEAD
        self.last_io = self.loop.time()
        if state == HEAD:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except self._httptools.HttpParserUpgrade:
            self._fail(RemoteProtocolError(f"{self.where} asked to switch protocols; only HTTP/1.1 is spoken here",
                                           url=self.where))
        except (self._httptools.HttpParserError, Stray) as exc:
            if self.state == DONE:
                # Bytes after the response (a second response, or more than Content-Length):
                # the response stands (it may be waited on already), the connection does not.
                self.close()
                return
            self._fail(RemoteProtocolError(f"invalid HTTP response from {self.where}: {exc}", url=self.where))
        if self.state == HEAD and self.head_bytes > MAX_HEAD_BYTES and self.error is None:
            self._head_too_large()

    def eof_received(self) -> bool:
        return False  # close our side too: HTTP/1.1 has no half-closed use here

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        state = self.state
        if state == IDLE:
            self.pool.forget(self)  # the server closed an idle connection
            return
        if state == DONE or state == FAILED:
            return
        if state == BODY and self.until_eof:
            self.on_message_complete()  # a close-delimited body ends here
            return
        if state <= SENT and self.reused:
            self._fail(Stale())
        elif state == BODY:
            self._fail(RemoteProtocolError(dropped_message(self.where, "the body was cut short", mid_stream=True),
                                           url=self.where))
        elif state == HEAD or state == SENT:
            cause = type(exc).__name__ if exc else "closed before a response"
            self._fail(RemoteProtocolError(dropped_message(self.where, cause, mid_stream=False), url=self.where))

    def pause_writing(self) -> None:  # request bodies are written whole; the kernel drains them
        pass

    def resume_writing(self) -> None:
        pass

    # -- ResponseParser's hooks ---------------------------------------------------------------
    def _deliver(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def _finished(self) -> None:
        self._cancel_timer()
        self._wake()

    def _head_complete(self) -> None:
        if self._idle < self._first_byte and self._timer is not None:
            # the body's wait is shorter than the head's: the armed timer would notice a stall late
            self._timer.cancel()
            self._timer = self.loop.call_at(self.last_io + self._idle, self._check_timeout)
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.state = FAILED
        self._cancel_timer()
        self.close()
        self._wake()

    # -- the exchange -----------------------------------------------------------------------
    def send(self, head: bytes, body: bytes | None, first_byte: float, idle: float) -> None:
        if self.closed or self.transport is None:
            raise Stale()  # closed by the server between the pool and here
        self.state = SENT
        self.last_io = self.loop.time()
        self._first_byte = first_byte
        self._idle = idle
        self._timer = self.loop.call_at(self.last_io + first_byte, self._check_timeout)
        if body:
            self.transport.writelines((head, body))
        else:
            self.transport.write(head)

    async def wait(self) -> None:
        """Until something new happened (head, body bytes, the end, an error)."""
        if self.error is not None:
            raise self.error
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None
        if self.error is not None:
            raise self.error

    def take(self) -> bytes:
        """Everything buffered, resuming the socket if it was paused for the consumer."""
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.last_io = self.loop.time()
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return self.state == DONE and self.keep_alive and not self.closed

    def _check_timeout(self) -> None:
        self._timer = None
        state = self.state
        if state == DONE or state == FAILED:
            return
        now = self.loop.time()
        limit = self._idle if state == BODY else self._first_byte
        if self.paused:  # waiting on our consumer, not the server: the clock restarts on resume
            self._timer = self.loop.call_at(now + limit, self._check_timeout)
            return
        due = self.last_io + limit
        if due > now:  # bytes came since: wait for the rest
            self._timer = self.loop.call_at(max(due, now + 0.01), self._check_timeout)
            return
        kind = "idle" if state == BODY else "first_byte"
        self._fail(ReadTimeout(timeout_message(kind, self.where, limit), url=self.where))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
