"""One contract, every backend: the sync httpx path and the async httpx, aiohttp and h1 clients
against the same real HTTP server on 127.0.0.1 (see ``cloverleaf/transport/base.py``).

Each case states one clause of the contract; a backend that breaks it fails here by name.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cloverleaf._errors import (
    ConnectError,
    InvalidURL,
    LocalProtocolError,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
)
from cloverleaf._http import HttpRequest, HttpResponse
from cloverleaf.transport.base import Timeouts
from cloverleaf.transport.httpx import HttpxBackend
from cloverleaf.transport.retry import RetryPolicy
from tests.ports import unused_port

from .upstream import Reply, Upstream

pytest.importorskip("aiohttp")
pytest.importorskip("httptools")

BACKENDS = ["httpx-sync", "httpx", "aiohttp", "h1"]
FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02)
#: Small waits so a hanging server fails fast; the upstream's own delays are far longer.
QUICK = Timeouts(connect=1.0, first_byte=0.3, idle=0.3, total=10.0)


class Driver:
    """One backend behind one async face: ``send`` and ``stream`` (which reads the whole stream)."""

    def __init__(self, name: str, timeouts: Timeouts = QUICK) -> None:
        self.name = name
        kw: dict[str, Any] = {"timeouts": timeouts, "retry": FAST}
        if name in ("httpx-sync", "httpx"):
            self.backend: Any = HttpxBackend(**kw)
        elif name == "aiohttp":
            from cloverleaf.transport.aiohttp import AiohttpTransport

            self.backend = AiohttpTransport(**kw)
        else:
            from cloverleaf.transport.h1.pool import H1Transport

            self.backend = H1Transport(**kw)

    async def send(self, req: HttpRequest, **kw: Any) -> HttpResponse:
        if self.name == "httpx-sync":
            return await asyncio.to_thread(self.backend.send, req, **kw)
        return await self.backend.asend(req, **kw)  # type: ignore[no-any-return]

    async def stream(self, req: HttpRequest, **kw: Any) -> tuple[int, dict[str, str], list[bytes]]:
        if self.name == "httpx-sync":
            def run() -> tuple[int, dict[str, str], list[bytes]]:
                with self.backend.stream(req, **kw) as handle:
                    return handle.status, handle.headers, list(handle.chunks())

            return await asyncio.to_thread(run)
        async with self.backend.astream(req, **kw) as handle:
            return handle.status, handle.headers, [c async for c in handle.chunks()]

    async def aclose(self) -> None:
        if self.name == "httpx-sync":
            self.backend.close()
        else:
            await self.backend.aclose()


@pytest.fixture(params=BACKENDS)
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[Driver]:
    d = Driver(request.param)
    yield d
    await d.aclose()


def post(url: str, **kw: Any) -> HttpRequest:
    return HttpRequest("POST", f"{url}/v1/chat?key=SECRET", headers={"content-type": "application/json"},
                       body=b'{"q": 1}', **kw)


async def test_a_body_comes_back_with_lower_cased_headers(driver: Driver, upstream: Upstream) -> None:
    upstream.queue(Reply(200, headers={"X-Request-ID": "r1", "content-type": "application/json"}, body=b'{"a": 1}'))
    resp = await driver.send(post(upstream.url))
    assert (resp.status, resp.json(), resp.headers["x-request-id"]) == (200, {"a": 1}, "r1")
    assert upstream.seen[0].body == b'{"q": 1}' and upstream.seen[0].method == "POST"


async def test_an_error_status_is_returned_with_its_body_not_raised(driver: Driver, upstream: Upstream) -> None:
    upstream.queue(Reply(400, body=b'{"error": "bad"}'))
    resp = await driver.send(post(upstream.url))
    assert (resp.status, resp.json()) == (400, {"error": "bad"})


async def test_a_retryable_status_is_retried_then_answered(driver: Driver, upstream: Upstream) -> None:
    upstream.queue(Reply(503, body=b"busy"), Reply(200, body=b'{"ok": true}'))
    resp = await driver.send(post(upstream.url))
    assert resp.json() == {"ok": True} and len(upstream.seen) == 2


async def test_retry_after_longer_than_the_limit_hands_the_error_back(driver: Driver, upstream: Upstream) -> None:
    upstream.queue(Reply(429, headers={"retry-after": "3600"}, body=b"later"))
    resp = await driver.send(post(upstream.url))
    assert resp.status == 429 and len(upstream.seen) == 1


SPENT = b'{"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}'


async def test_a_429_that_says_the_quota_is_spent_is_handed_back_at_once(driver: Driver, upstream: Upstream) -> None:
    """OpenAI's insufficient_quota comes as a 429; the adapter makes it a QuotaExceededError (not
    retryable), so the transport must not spend max_retries calls and their backoff on it first."""
    upstream.queue(Reply(429, body=SPENT))
    resp = await driver.send(post(upstream.url))
    assert resp.status == 429 and resp.body == SPENT and len(upstream.seen) == 1
    upstream.queue(Reply(429, body=b'{"error": {"code": "billing_hard_limit_reached"}}'))
    status, _, chunks = await driver.stream(post(upstream.url, stream=True))
    assert status == 429 and b"billing_hard_limit_reached" in b"".join(chunks) and len(upstream.seen) == 2
    upstream.queue(Reply(429, body=b'{"error": {"code": "rate_limit_exceeded"}}'), Reply(200, body=b'{"ok": true}'))
    assert (await driver.send(post(upstream.url))).status == 200 and len(upstream.seen) == 4  # a rate limit is retried


async def test_no_retry_waits_past_the_calls_deadline(upstream: Upstream) -> None:
    """``Timeouts.total`` bounds a call, backoff included: a retry whose wait would pass the
    deadline is not made, and the answer so far comes back."""
    for name in BACKENDS:
        upstream.queue(Reply(503, headers={"retry-after": "2"}, body=b"busy"))
        d = Driver(name, Timeouts(connect=1.0, first_byte=0.3, idle=0.3, total=1.0))
        try:
            resp = await d.send(post(upstream.url))
        finally:
            await d.aclose()
        assert resp.status == 503, name
    assert len(upstream.seen) == len(BACKENDS)  # one attempt each, none after the deadline


#: How long the head of a stream may take in the deadline cases: a safety net for a loaded machine
#: (on loopback it comes in milliseconds; 0.3 s, and once 2 s, were missed under heavy load).
HEAD_ALLOWANCE = 4.0
#: The upstream's pause after a stream's first piece: the rest comes after any deadline of
#: HEAD_ALLOWANCE measured from before the request was sent.
PAST_THE_DEADLINE = HEAD_ALLOWANCE + 0.1


@pytest.mark.parametrize("name", BACKENDS)
async def test_the_deadline_and_a_head_cap_bound_the_head_never_the_body(name: str, upstream: Upstream) -> None:
    """``Timeouts.total`` (the call's deadline) and ``HttpRequest.head_timeout`` (what is left of a
    gateway call's) bound the wait for the response head; once it came, each piece of the body
    waits up to ``idle``, however little of the deadline is left: a long stream is not cut off.
    The body's last pieces always come after the deadline (the upstream pauses after the first
    for longer than it), so the body outliving the deadline does not depend on how fast the
    machine is; only the head has to come within HEAD_ALLOWANCE."""
    pieces = [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"]
    d = Driver(name, Timeouts(connect=HEAD_ALLOWANCE, first_byte=10.0, idle=10.0, total=HEAD_ALLOWANCE))
    try:
        upstream.queue(Reply(200, chunks=pieces, hold=PAST_THE_DEADLINE))
        assert b"".join((await d.stream(post(upstream.url, stream=True)))[2]) == b"".join(pieces)
    finally:
        await d.aclose()
    d = Driver(name, Timeouts(connect=HEAD_ALLOWANCE, first_byte=10.0, idle=10.0, total=30.0))
    try:
        upstream.queue(Reply(200, chunks=pieces, hold=PAST_THE_DEADLINE))
        streamed = await d.stream(post(upstream.url, stream=True, head_timeout=HEAD_ALLOWANCE))
        assert b"".join(streamed[2]) == b"".join(pieces)
        upstream.queue(Reply(200, delay=3.0))
        with pytest.raises(ReadTimeout) as info:   # the head itself is bounded by the cap
            await d.send(post(upstream.url, head_timeout=0.3))
        # what fired is what was left of the call's deadline, and the message says so
        assert "0.3 s were left of it" in str(info.value) and "first_byte_timeout" not in str(info.value)
    finally:
        await d.aclose()


@pytest.mark.parametrize("name", BACKENDS)
async def test_a_head_wait_the_deadline_cut_short_names_the_deadline(name: str, upstream: Upstream) -> None:
    """A call whose deadline (1 s) comes before its first_byte wait (10 s) ends at the deadline;
    its error said "after 10 s (first_byte_timeout ...)" (h1: "after 0.999 s (first_byte_timeout
    ...)"), sending the user to raise a setting that was not the one that fired. It names the
    deadline and its value now, on a call and on a stream; a first_byte wait that ends before the
    deadline is still named as first_byte's."""
    d = Driver(name, Timeouts(connect=1.0, first_byte=10.0, idle=10.0, total=1.0))
    try:
        for call in (d.send, d.stream):
            upstream.queue(Reply(200, delay=3.0))
            with pytest.raises(ReadTimeout) as info:
                await call(post(upstream.url))
            text = str(info.value)
            assert "passed its 1 s deadline" in text and "timeout=" in text, text
            assert "first_byte_timeout" not in text and "10 s" not in text and "SECRET" not in text
    finally:
        await d.aclose()
    d = Driver(name, Timeouts(connect=1.0, first_byte=0.3, idle=10.0, total=10.0))
    try:
        upstream.queue(Reply(200, delay=3.0))
        with pytest.raises(ReadTimeout) as info:
            await d.send(post(upstream.url))
        assert "after 0.3 s (first_byte_timeout" in str(info.value) and "deadline" not in str(info.value)
    finally:
        await d.aclose()


async def test_a_stream_yields_its_chunks_in_order(driver: Driver, upstream: Upstream) -> None:
    upstream.queue(Reply(200, headers={"content-type": "text/event-stream"}, chunks=[b"data: 1\n\n", b"data: 2\n\n"]))
    status, headers, chunks = await driver.stream(post(upstream.url, stream=True))
    assert status == 200 and headers["content-type"] == "text/event-stream"
    assert b"".join(chunks) == b"data: 1\n\ndata: 2\n\n"


async def test_an_error_status_on_a_stream_is_its_whole_body_once(driver: Driver, upstream: Upstream) -> None:
    upstream.queue(Reply(401, body=b'{"error": "key"}'))
    status, _, chunks = await driver.stream(post(upstream.url, stream=True))
    assert status == 401 and chunks == [b'{"error": "key"}']


async def test_a_gzip_body_comes_back_decoded(driver: Driver, upstream: Upstream) -> None:
    upstream.queue(Reply(200, headers={"content-encoding": "gzip"}, body=gzip.compress(b'{"z": 1}')))
    assert (await driver.send(post(upstream.url))).json() == {"z": 1}


async def test_a_gzip_stream_comes_back_decoded(driver: Driver, upstream: Upstream) -> None:
    packed = gzip.compress(b"data: 1\n\ndata: 2\n\n")
    upstream.queue(Reply(200, headers={"content-encoding": "gzip"}, chunks=[packed[:10], packed[10:]]))
    _, _, chunks = await driver.stream(post(upstream.url, stream=True))
    assert b"".join(chunks) == b"data: 1\n\ndata: 2\n\n"


async def test_a_refused_connection_is_a_connect_error_naming_the_url_without_its_query(driver: Driver) -> None:
    port = unused_port()
    with pytest.raises(ConnectError) as info:
        await driver.send(post(f"http://127.0.0.1:{port}"), hint="start it with `thing serve`")
    text = str(info.value)
    assert f"127.0.0.1:{port}/v1/chat" in text and "SECRET" not in text and "thing serve" in text
    assert info.value.retryable


async def test_a_silent_upstream_is_a_read_timeout_after_the_first_byte_timeout_and_not_retried(
        driver: Driver, upstream: Upstream) -> None:
    upstream.queue(Reply(200, delay=3.0), Reply(200, delay=3.0), Reply(200, delay=3.0))
    with pytest.raises(ReadTimeout) as info:
        await driver.send(post(upstream.url))
    assert "first_byte_timeout" in str(info.value) and "SECRET" not in str(info.value)
    assert len(upstream.seen) == 1  # a target that went quiet is left to the fallback, not asked again


async def test_a_stream_that_stalls_is_a_read_timeout_after_the_idle_timeout(driver: Driver, upstream: Upstream) -> None:
    upstream.queue(Reply(200, chunks=[b"data: 1\n\n", b"data: 2\n\n"], chunk_delay=3.0))
    got: list[bytes] = []
    with pytest.raises(ReadTimeout) as info:
        if driver.name == "httpx-sync":
            await driver.stream(post(upstream.url, stream=True))
        else:
            async with driver.backend.astream(post(upstream.url, stream=True)) as handle:
                async for chunk in handle.chunks():
                    got.append(chunk)
    assert "idle_timeout" in str(info.value)
    assert driver.name == "httpx-sync" or b"".join(got) == b"data: 1\n\n"


async def test_a_per_call_timeout_replaces_the_waits(driver: Driver, upstream: Upstream) -> None:
    """``timeout=`` on a call lets a slow model answer past ``first_byte_timeout``."""
    upstream.queue(Reply(200, delay=0.6, body=b'{"slow": true}'))
    resp = await driver.send(post(upstream.url, timeout=5.0))
    assert resp.json() == {"slow": True}


async def test_a_connection_cut_mid_stream_is_a_remote_protocol_error(driver: Driver, upstream: Upstream) -> None:
    upstream.queue(Reply(200, chunks=[b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"], reset_after_chunks=1))
    with pytest.raises(RemoteProtocolError) as info:
        await driver.stream(post(upstream.url, stream=True))
    assert info.value.retryable and "SECRET" not in str(info.value)


async def test_a_url_that_cannot_be_sent_is_invalid_and_not_retried(driver: Driver) -> None:
    with pytest.raises(InvalidURL) as info:
        await driver.send(HttpRequest("POST", "ftp://example.invalid/v1?key=SECRET", body=b"{}"))
    assert not info.value.retryable and "SECRET" not in str(info.value)


@pytest.mark.parametrize("name", ["httpx-sync", "aiohttp", "h1"])
async def test_a_host_name_the_idna_codec_refuses_is_invalid_and_not_retried(name: str) -> None:
    """A DNS label over 63 characters: the clients' resolvers raise the IDNA codec's
    ``UnicodeError`` (before any lookup), which the backends let through raw (the server's
    500). It is an InvalidURL naming the host, never retried, on a call and on a stream.
    (httpx's async client hands the name to the system resolver as ASCII bytes instead: a
    lookup, which these tests may not make; that one answers a ConnectError like any unknown name.)"""
    host = "a" * 64 + ".lab.internal"
    driver = Driver(name)
    try:
        for call in (driver.send, driver.stream):
            with pytest.raises(InvalidURL) as info:
                await call(post(f"http://{host}:8000"))
            text = str(info.value)
            assert not info.value.retryable and host in text and "not a valid DNS name" in text
            assert "SECRET" not in text
    finally:
        await driver.aclose()


async def test_a_header_with_a_line_break_is_refused_before_sending(driver: Driver, upstream: Upstream) -> None:
    req = HttpRequest("POST", f"{upstream.url}/v1", headers={"authorization": "Bearer k\r\nx-evil: 1"}, body=b"{}")
    with pytest.raises(TransportError) as info:
        await driver.send(req)
    assert isinstance(info.value, LocalProtocolError) and not info.value.retryable
    assert upstream.seen == []


def test_unused_port_is_closed() -> None:
    """The helper the refused-connection case relies on gives a port nobody listens on."""
    port = unused_port()
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))
