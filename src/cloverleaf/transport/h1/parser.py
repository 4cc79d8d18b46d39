"""The response side of HTTP/1.1: a state machine over llhttp's callbacks.

llhttp (through ``httptools``) does the byte-level parsing; this class keeps what it reports
for the one exchange in progress, and says where that exchange is in one ``state`` instead of
a set of flags::

    READY ──send──▶ SENT ──first byte──▶ HEAD ──head complete──▶ BODY ──end──▶ DONE
      ▲                                                                          │
      └────────── IDLE (parked in the pool) ◀──────── release, if reusable ───────┘
    any state ──error──▶ FAILED (the connection is closed; ``error`` says why)

A 1xx interim response is skipped inside HEAD. A body with neither Content-Length nor
Transfer-Encoding ends when the connection closes (``until_eof``). gzip and deflate bodies are
decoded here, so every consumer gets plain bytes. The asyncio side (flow control, timeouts,
waking the consumer) is :class:`~cloverleaf.transport.h1.connection.Connection`, which
inherits these callbacks: no extra call per piece of the body.
"""

from __future__ import annotations

import zlib
from typing import Any

from ..._errors import RemoteProtocolError

#: The states of one connection's exchange (plain ints: compared on every read).
FAILED, READY, IDLE, SENT, HEAD, BODY, DONE = -1, 0, 1, 2, 3, 4, 5
#: Response heads larger than this are refused (a hostile or broken upstream).
MAX_HEAD_BYTES = 64 * 1024
_DECODED = ("gzip", "x-gzip", "deflate")


class Inflate:
    """A ``deflate`` body: zlib-wrapped as RFC 9110 says, or raw deflate as some servers send it
    (httpx and aiohttp accept both). The first byte decides: a zlib (or gzip) header, or not."""

    __slots__ = ("obj",)

    def __init__(self) -> None:
        self.obj: Any = None

    def decompress(self, data: bytes) -> bytes:
        if not data:
            return b""
        if self.obj is None:
            wrapped = data[0] & 0x0F == 8 or data[0] == 0x1F  # zlib's CM=8 nibble, or gzip's magic
            self.obj = zlib.decompressobj(zlib.MAX_WBITS | 32 if wrapped else -zlib.MAX_WBITS)
        out: bytes = self.obj.decompress(data)
        return out

    def flush(self) -> bytes:
        out: bytes = self.obj.flush() if self.obj is not None else b""
        return out


class Stray(Exception):
    """A second response began on a connection whose response is complete."""


class ResponseParser:
    """llhttp's callbacks for one exchange at a time; the subclass supplies the hooks."""

    state: int
    error: BaseException | None
    parser: Any
    where: str

    def _begin_exchange(self) -> None:
        """Ready for the next exchange. llhttp's parser is kept: it starts on the next message
        by itself after a complete one, and a connection that failed is never reused."""
        self.state = READY
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.keep_alive = False
        self.error = None
        self.head_bytes = 0
        self.parsed_head_bytes = 0
        self.until_eof = False
        self.decoder: Any = None

    # -- hooks the connection provides --------------------------------------------------------
    def _deliver(self, body: bytes) -> None:
        raise NotImplementedError

    def _wake(self) -> None:
        raise NotImplementedError

    def _fail(self, error: BaseException) -> None:
        raise NotImplementedError

    def _finished(self) -> None:
        raise NotImplementedError

    def _head_complete(self) -> None:
        raise NotImplementedError

    # -- llhttp's callbacks -------------------------------------------------------------------
    # The size check on reads only sees heads that span reads; a head that arrives whole in one
    # read (reads are up to 256 KiB) is measured here, as the parser reports it.
    def on_message_begin(self) -> None:
        if self.state == DONE:  # parsed further, it would overwrite this response's status and headers
            raise Stray()  # stops the parser: the connection closes

    def on_status(self, status: bytes) -> None:
        self._count_head(len(status) + 16)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def _count_head(self, size: int) -> None:
        self.parsed_head_bytes += size
        if self.parsed_head_bytes > MAX_HEAD_BYTES and self.error is None:
            self._head_too_large()

    def _head_too_large(self) -> None:
        self._fail(RemoteProtocolError(f"response head from {self.where} exceeds {MAX_HEAD_BYTES} bytes",
                                       url=self.where))

    def on_headers_complete(self) -> None:
        if self.state == FAILED:  # the head was refused while llhttp finished it
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.headers = []  # an interim response: the real one follows
            return
        self.status = status
        self.state = BODY
        names = {name for name, _ in self.headers}
        self.until_eof = "content-length" not in names and "transfer-encoding" not in names
        for name, value in self.headers:
            if name == "content-encoding" and value.strip().lower() in _DECODED:
                if value.strip().lower() == "deflate":
                    self.decoder = Inflate()
                else:
                    self.decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, by its header
        self._head_complete()

    def on_body(self, body: bytes) -> None:
        if self.decoder is not None and body:
            try:
                body = self.decoder.decompress(body)
            except zlib.error as exc:
                self._fail(RemoteProtocolError(f"undecodable compressed body from {self.where}: {exc}",
                                               url=self.where))
                return
            if not body:
                return
        self._deliver(body)

    def on_message_complete(self) -> None:
        if self.state != BODY:
            return  # the end of an interim (1xx) response, or of a response that already failed
        if self.decoder is not None:
            rest = self.decoder.flush()
            if rest:
                self._deliver(rest)
        self.state = DONE
        self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it once the call returns
        self._finished()
