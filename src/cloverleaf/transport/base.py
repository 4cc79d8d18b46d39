"""The transport's contract: what a backend is, what it hands back, how long it may wait.

Every backend (:mod:`.httpx`, :mod:`.aiohttp`, :mod:`.h1`) keeps the same contract, and one
test suite (``tests/sdk/test_transport_contract.py``) holds each of them to it:

- ``send``/``asend`` return an :class:`~cloverleaf._http.HttpResponse`; an error status is
  returned, not raised, with its body read;
- ``stream``/``astream`` are context managers yielding a :class:`StreamHandle`; an error status
  comes back with its whole body as the one chunk;
- header names come back lower-cased; gzip/deflate bodies come back decoded;
- failures are raised as the classes of :mod:`cloverleaf._errors` (``ConnectError``,
  ``ConnectTimeout``, ``ReadTimeout``, ``RemoteProtocolError``, ``InvalidURL``,
  ``LocalProtocolError``), each naming the URL through :func:`redact_url`;
- retries follow :mod:`.retry`; the waits follow :class:`Timeouts`.

This module imports nothing above :mod:`cloverleaf._http` and :mod:`cloverleaf._errors`:
the transport never imports a provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from .._http import HttpRequest, HttpResponse

#: The async HTTP clients a Transport can use for real network calls (see :mod:`.auto`).
HTTP_CLIENTS = ("auto", "h1", "aiohttp", "httpx")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long one call may wait, in seconds. The defaults let a gateway fail over from a
    hanging upstream in well under a minute (an upstream that accepts and never answers
    costs ``first_byte`` seconds, not the 600 s read timeout of the SDKs' defaults).

    - ``connect``: to open a connection (TCP and TLS);
    - ``first_byte``: from sending the request to the response head. Streams get their head
      at once; a one-shot call gets it when the whole answer is ready, so a long one-shot
      answer from a slow model needs a larger value (or ``stream``);
    - ``idle``: between two pieces of the body once the head came;
    - ``total``: the call's deadline, retries and backoff included, until a response head
      arrives: no attempt waits for its head past it and no retry is slept past it; the body
      then runs on ``idle`` (a long stream is not cut off by the deadline).

    A per-call ``timeout=`` (``HttpRequest.timeout``) replaces ``first_byte``, ``idle`` and
    ``total`` for that call: "this call may take up to N seconds". A head cap
    (``HttpRequest.head_timeout``: what is left of a gateway call's deadline) lowers
    ``first_byte`` and ``total`` only: once the head came, the body runs on ``idle``.
    ``total_is_left`` says the head cap became ``total``: the call's deadline is longer, and
    ``total`` is what was left of it for this attempt (a timeout then says so)."""

    connect: float = 5.0
    first_byte: float = 30.0
    idle: float = 30.0
    total: float = 600.0
    total_is_left: bool = False

    def for_request(self, req: HttpRequest) -> Timeouts:
        t = self if req.timeout is None else Timeouts(self.connect, req.timeout, req.timeout, req.timeout)
        head = req.head_timeout
        if head is None or (head >= t.first_byte and head >= t.total):
            return t
        return Timeouts(t.connect, min(t.first_byte, head), t.idle, min(t.total, head), head < t.total)


C = TypeVar("C", Iterator[bytes], AsyncIterator[bytes])


#: ``bounded(seconds)``: a context in which every read of a sync stream's body waits at most
#: until ``seconds`` from now (then ReadTimeout), for reading a body's tail without blocking.
BoundedReads = Callable[[float], AbstractContextManager[None]]


class StreamHandle(Generic[C]):
    """An open streaming response: check ``status`` first; iterate ``chunks()`` for bytes
    (an async iterator from ``astream``, a plain one from ``stream``). ``bounded`` is set on a
    sync stream whose reads can be bounded in time (a socket under the httpx backend; not a
    mount answering in-process): see :data:`BoundedReads`."""

    __slots__ = ("status", "headers", "url", "_chunks", "bounded")

    def __init__(self, status: int, headers: dict[str, str], url: str, chunks: C,
                 bounded: BoundedReads | None = None) -> None:
        self.status = status
        self.headers = headers
        self.url = url
        self._chunks: C = chunks
        self.bounded = bounded

    def chunks(self) -> C:
        return self._chunks


#: What ``stream`` yields (plain chunks) and what ``astream`` yields (async chunks).
SyncStreamHandle = StreamHandle[Iterator[bytes]]
AsyncStreamHandle = StreamHandle[AsyncIterator[bytes]]


@dataclass(slots=True)
class OpenedStream:
    """One attempt at an async stream, as a backend opened it: an error status with its
    whole body read (its connection already let go), or a success with its chunks and
    ``release``, which lets the connection go once the caller is done (back to the pool, or
    closed mid-body)."""

    status: int
    headers: dict[str, str]
    error_body: bytes | None
    chunks: AsyncIterator[bytes] | None = None
    release: Callable[[], Awaitable[None]] | None = None


@dataclass(slots=True)
class OpenedSyncStream:
    """:class:`OpenedStream` for the sync path."""

    status: int
    headers: dict[str, str]
    error_body: bytes | None
    chunks: Iterator[bytes] | None = None
    release: Callable[[], None] | None = None
    bounded: BoundedReads | None = None


class SyncBackend(Protocol):
    """A backend for blocking calls (httpx is the one)."""

    def send(self, req: HttpRequest, *, max_retries: int | None = None,
             hint: str | None = None) -> HttpResponse: ...

    def stream(self, req: HttpRequest, *, max_retries: int | None = None,
               hint: str | None = None) -> AbstractContextManager[SyncStreamHandle]: ...

    def close(self) -> None: ...


class AsyncBackend(Protocol):
    """A backend for asyncio calls (httpx, aiohttp, h1)."""

    async def asend(self, req: HttpRequest, *, max_retries: int | None = None,
                    hint: str | None = None) -> HttpResponse: ...

    def astream(self, req: HttpRequest, *, max_retries: int | None = None,
                hint: str | None = None) -> AbstractAsyncContextManager[AsyncStreamHandle]: ...

    async def aclose(self) -> None: ...

    def close(self) -> None:
        """Close what can be closed without awaiting (pools of closed loops, other threads')."""


async def single_chunk(body: bytes) -> AsyncIterator[bytes]:
    """A body already read, as a stream's ``chunks()`` (an error status on a stream)."""
    yield body


def redact_url(url: str) -> str:
    """The URL as errors and logs may show it: no query string (it may carry a key, as
    Gemini's ``?key=`` does) and no ``user:password@`` (a base_url may carry credentials)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{netloc}{parts.path}"


def timeout_message(kind: str, where: str, seconds: float) -> str:
    """The one wording of every backend's timeouts (``kind``: connect, first_byte, idle, total,
    left: what was left of the deadline for a gateway call's later attempt)."""
    if kind == "connect":
        return f"timed out connecting to {where} after {seconds:.3g} s; is the server reachable?"
    if kind == "first_byte":
        return (f"timed out waiting for a response from {where} after {seconds:.3g} s (first_byte_timeout, or "
                "the call's own timeout= when it sets one); raise timeout= if the model is slow")
    if kind == "idle":
        return (f"timed out waiting for the next chunk of the stream from {where} after {seconds:.3g} s "
                "(idle_timeout, or the call's own timeout= when it sets one); raise timeout= if the model is slow")
    if kind == "left":
        return (f"timed out: the call to {where} passed its deadline before a response came ({seconds:.3g} s were "
                "left of it for this attempt; the call's timeout=, or [defaults] timeout, counts retries and "
                "fallbacks); raise timeout= if the model is slow")
    return (f"timed out: the call to {where} passed its {seconds:.3g} s deadline before a response came (the "
            "call's timeout=, or [defaults] timeout; retries included); raise timeout= if the model is slow")


def dropped_message(where: str, cause: str, *, mid_stream: bool) -> str:
    """The one wording of a connection lost before or during an answer."""
    what = "connection dropped mid-stream" if mid_stream else "connection dropped"
    return f"{what} by {where}: {cause}"


def connect_message(where: str, cause: object, hint: str | None) -> str:
    """The one wording of a refused or unreachable upstream, with what to start when known."""
    msg = f"could not connect to {where}: {cause}"
    return f"{msg}; {hint}" if hint else msg


def invalid_url_message(where: str) -> str:
    return f"unsupported URL {where!r}: base_url must start with http:// or https://"


def invalid_host_message(where: str, cause: object) -> str:
    """The one wording of a host name no lookup can take: the IDNA codec refused it (a label
    over 63 characters, an invalid ``xn--`` label). The clients raise the codec's
    ``UnicodeError`` for it, which every backend maps to ``InvalidURL`` with this message."""
    return f"the host of {where!r} is not a valid DNS name ({cause}); fix the base_url"
