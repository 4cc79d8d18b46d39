"""The aiohttp backend keeps the transport's contract: bodies and lower-cased headers,
retries on 429/5xx honouring Retry-After, error statuses returned with their body, streams
handed out chunk by chunk, and network failures mapped into cloverleaf's error tree."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402

from cloverleaf._errors import ConnectError, TimeoutError  # noqa: E402
from cloverleaf._http import HttpRequest  # noqa: E402
from cloverleaf.transport.aiohttp import AiohttpTransport  # noqa: E402
from cloverleaf.transport.retry import RetryPolicy  # noqa: E402


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, dict[str, int]]]:
    hits = {"flaky": 0, "echo": 0}

    async def echo(request: web.Request) -> web.Response:
        hits["echo"] += 1
        body = await request.read()
        return web.Response(body=b'{"got":' + body + b"}", content_type="application/json",
                            headers={"X-Request-Id": "req-1", "X-Auth-Seen": request.headers.get("authorization", "")})

    async def flaky(request: web.Request) -> web.Response:
        hits["flaky"] += 1
        if hits["flaky"] == 1:
            return web.Response(status=429, text="slow down", headers={"retry-after-ms": "10"})
        return web.Response(text="ok")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=400, text='{"error":{"message":"bad"}}', content_type="application/json")

    async def sse(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(3):
            await resp.write(f"data: {i}\n\n".encode())
            await asyncio.sleep(0.005)
        await resp.write_eof()
        return resp

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_get("/flaky", flaky)
    app.router.add_get("/broken", broken)
    app.router.add_post("/sse", sse)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", hits
    finally:
        await runner.cleanup()


def fast_retries(n: int = 2) -> RetryPolicy:
    return RetryPolicy(max_retries=n, base_delay=0.001, max_delay=0.01)


async def test_asend_returns_body_and_lowercased_headers(upstream: tuple[str, dict[str, int]]) -> None:
    base, hits = upstream
    t = AiohttpTransport(retry=fast_retries())
    try:
        req = HttpRequest("POST", f"{base}/echo", headers={"authorization": "Bearer k", "content-type":
                                                             "application/json"}, body=b'{"a":1}')
        first = await t.asend(req)
        second = await t.asend(req)  # the pooled connection is reused
    finally:
        await t.aclose()
    assert first.status == 200 and first.json() == {"got": {"a": 1}}
    assert first.headers["x-request-id"] == "req-1" and first.headers["x-auth-seen"] == "Bearer k"
    assert first.url == f"{base}/echo"
    assert second.json() == {"got": {"a": 1}} and hits["echo"] == 2


async def test_retries_429_then_succeeds(upstream: tuple[str, dict[str, int]]) -> None:
    base, hits = upstream
    t = AiohttpTransport(retry=fast_retries())
    try:
        resp = await t.asend(HttpRequest("GET", f"{base}/flaky"))
    finally:
        await t.aclose()
    assert resp.status == 200 and resp.body == b"ok" and hits["flaky"] == 2


async def test_no_retries_returns_the_error_response(upstream: tuple[str, dict[str, int]]) -> None:
    base, hits = upstream
    t = AiohttpTransport(retry=fast_retries())
    try:
        resp = await t.asend(HttpRequest("GET", f"{base}/flaky"), max_retries=0)
        bad = await t.asend(HttpRequest("GET", f"{base}/broken"))
    finally:
        await t.aclose()
    assert resp.status == 429 and resp.body == b"slow down" and hits["flaky"] == 1
    assert bad.status == 400 and bad.json()["error"]["message"] == "bad"


async def test_astream_hands_out_chunks(upstream: tuple[str, dict[str, int]]) -> None:
    base, _ = upstream
    t = AiohttpTransport(retry=fast_retries())
    try:
        async with t.astream(HttpRequest("POST", f"{base}/sse", body=b"{}", stream=True)) as handle:
            assert handle.status == 200 and handle.headers["content-type"] == "text/event-stream"
            body = b"".join([c async for c in handle.chunks()])
        async with t.astream(HttpRequest("GET", f"{base}/broken", stream=True)) as err:
            err_body = b"".join([c async for c in err.chunks()])
    finally:
        await t.aclose()
    assert body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert err.status == 400 and b'"bad"' in err_body


async def test_abandoned_stream_does_not_poison_the_pool(upstream: tuple[str, dict[str, int]]) -> None:
    base, _ = upstream
    t = AiohttpTransport(retry=fast_retries())
    try:
        async with t.astream(HttpRequest("POST", f"{base}/sse", body=b"{}", stream=True)) as handle:
            async for _ in handle.chunks():
                break  # the caller went away after the first chunk
        after = await t.asend(HttpRequest("POST", f"{base}/echo", body=b"2"))
    finally:
        await t.aclose()
    assert after.json() == {"got": 2}


async def test_refused_connection_is_connect_error_with_hint() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = AiohttpTransport(retry=fast_retries(0))
    try:
        with pytest.raises(ConnectError) as info:
            await t.asend(HttpRequest("GET", f"http://127.0.0.1:{port}/v1/x?key=secret"), hint="start ollama")
    finally:
        await t.aclose()
    message = str(info.value)
    assert f"127.0.0.1:{port}/v1/x" in message and "start ollama" in message and "secret" not in message


async def test_read_timeout_is_timeout_error(upstream: tuple[str, dict[str, int]]) -> None:
    base, _ = upstream
    t = AiohttpTransport(retry=fast_retries(0))
    try:
        with pytest.raises(TimeoutError) as info:
            await t.asend(HttpRequest("GET", f"{base}/slow", timeout=0.1))
    finally:
        await t.aclose()
    assert "passed its 0.1 s deadline before a response came" in str(info.value)   # timeout=0.1
