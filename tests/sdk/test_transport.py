"""The transport against a real HTTP server on 127.0.0.1: retries, Retry-After, errors."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from cloverleaf._errors import ConnectError, TimeoutError, TransportError
from cloverleaf._http import HttpRequest
from cloverleaf.transport import RetryPolicy, Transport
from cloverleaf.transport.retry import parse_retry_after
from tests.ports import unused_port

from .upstream import Reply


def _req(url: str, **kw) -> HttpRequest:
    return HttpRequest("POST", url + "/v1/chat/completions", {"content-type": "application/json"}, b'{"x":1}', **kw)


def fast_transport(**kw) -> Transport:
    return Transport(retry=RetryPolicy(max_retries=kw.pop("max_retries", 2), base_delay=0.01, max_delay=0.02), **kw)


def test_send_returns_status_headers_body(upstream):
    upstream.queue(Reply(200, {"content-type": "application/json", "x-request-id": "req_1"}, b'{"ok": true}'))
    t = fast_transport()
    resp = t.send(_req(upstream.url))
    assert resp.status == 200 and resp.json() == {"ok": True}
    assert resp.headers["x-request-id"] == "req_1"
    assert upstream.seen[0].body == b'{"x":1}' and upstream.seen[0].path == "/v1/chat/completions"
    t.close()


@pytest.mark.parametrize("status", [429, 500, 502, 503, 529])
def test_retryable_statuses_are_retried_then_succeed(upstream, status):
    upstream.queue(Reply(status, body=b'{"error": "busy"}'), Reply(200, body=b'{"ok": 1}'))
    resp = fast_transport().send(_req(upstream.url))
    assert resp.status == 200
    assert len(upstream.seen) == 2


def test_non_retryable_status_is_returned_at_once(upstream):
    upstream.queue(Reply(400, body=b'{"error": "bad"}'), Reply(200))
    resp = fast_transport().send(_req(upstream.url))
    assert resp.status == 400 and len(upstream.seen) == 1


def test_retries_are_bounded_by_max_retries(upstream):
    upstream.queue(*[Reply(503) for _ in range(5)])
    resp = fast_transport(max_retries=2).send(_req(upstream.url))
    assert resp.status == 503 and len(upstream.seen) == 3  # first try + 2 retries
    upstream.replies.clear()
    upstream.queue(Reply(503), Reply(200))
    assert fast_transport().send(_req(upstream.url), max_retries=0).status == 503


def test_retry_after_header_is_honoured(upstream):
    upstream.queue(Reply(429, {"retry-after": "0.3"}), Reply(200))
    t0 = time.monotonic()
    assert fast_transport().send(_req(upstream.url)).status == 200
    assert time.monotonic() - t0 >= 0.3


def test_retry_after_ms_wins_over_retry_after(upstream):
    upstream.queue(Reply(429, {"retry-after-ms": "200", "retry-after": "30"}), Reply(200))
    t0 = time.monotonic()
    assert fast_transport().send(_req(upstream.url)).status == 200
    waited = time.monotonic() - t0
    assert 0.2 <= waited < 5


def test_retry_after_beyond_the_cap_returns_the_error_instead_of_sleeping(upstream):
    upstream.queue(Reply(429, {"retry-after": "3600"}), Reply(200))
    resp = fast_transport().send(_req(upstream.url))
    assert resp.status == 429 and len(upstream.seen) == 1


def test_a_retry_after_that_is_no_usable_wait_is_no_hint():
    """``inf``, ``1e999``, ``nan``, a wait beyond a day or a date centuries ahead: no hint (None),
    never a number that breaks whatever does arithmetic with it."""
    for headers in ({"retry-after": "inf"}, {"retry-after": "1e999"}, {"retry-after": "nan"},
                    {"retry-after-ms": "1e400"}, {"retry-after": "86401"},
                    {"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}):
        assert parse_retry_after(headers) is None, headers
    assert parse_retry_after({"retry-after": "86400"}) == 86400.0
    assert parse_retry_after({"retry-after-ms": "inf", "retry-after": "7"}) is None   # the ms header speaks
    assert parse_retry_after({"retry-after": "-3"}) == 0.0


def test_x_should_retry_false_is_respected(upstream):
    upstream.queue(Reply(500, {"x-should-retry": "false"}), Reply(200))
    assert fast_transport().send(_req(upstream.url)).status == 500


def test_connection_refused_names_the_url_and_what_to_start():
    port = unused_port()
    with pytest.raises(ConnectError) as err:
        fast_transport(max_retries=1).send(_req(f"http://127.0.0.1:{port}"), hint="start it with `ollama serve`")
    msg = str(err.value)
    assert f"127.0.0.1:{port}/v1/chat/completions" in msg and "ollama serve" in msg


def test_read_timeout_becomes_timeout_error(upstream):
    upstream.queue(Reply(200, delay=1.0), Reply(200, delay=1.0))
    with pytest.raises(TimeoutError) as err:
        fast_transport(max_retries=0).send(_req(upstream.url, timeout=0.2))
    assert "timed out" in str(err.value)


def test_query_string_never_appears_in_errors():
    port = unused_port()
    with pytest.raises(ConnectError) as err:
        fast_transport(max_retries=0).send(HttpRequest("GET", f"http://127.0.0.1:{port}/x?key=SECRET123"))
    assert "SECRET123" not in str(err.value)


@pytest.mark.parametrize("http_client", ["httpx", "aiohttp", "h1"])
async def test_credentials_in_a_url_never_appear_in_errors(http_client):
    port = unused_port()
    url = f"http://admin:hunter2@127.0.0.1:{port}/x?key=SECRET123"
    with pytest.raises(ConnectError) as sync_err:
        fast_transport(max_retries=0).send(HttpRequest("GET", url))
    t = fast_transport(max_retries=0, http_client=http_client)
    with pytest.raises(ConnectError) as async_err:
        await t.asend(HttpRequest("GET", url))
    await t.aclose()
    for err in (sync_err.value, async_err.value):
        assert "hunter2" not in str(err) and "admin" not in str(err) and "SECRET123" not in str(err)
        assert f"127.0.0.1:{port}/x" in str(err)


def test_unknown_http_client_is_a_config_error():
    from cloverleaf._errors import ConfigError

    with pytest.raises(ConfigError, match="http_client"):
        Transport(http_client="curl")


def test_stream_yields_chunks_and_retries_only_before_bytes(upstream):
    upstream.queue(Reply(503), Reply(200, {"content-type": "text/event-stream"}, chunks=[b"data: 1\n\n", b"data: 2\n\n"]))
    t = fast_transport()
    with t.stream(_req(upstream.url)) as h:
        assert h.status == 200
        body = b"".join(h.chunks())
    assert body == b"data: 1\n\ndata: 2\n\n" and len(upstream.seen) == 2


def test_stream_error_status_returns_the_body(upstream):
    upstream.queue(Reply(401, body=b'{"error": {"message": "bad key"}}'))
    with fast_transport().stream(_req(upstream.url)) as h:
        assert h.status == 401
        assert json.loads(b"".join(h.chunks()))["error"]["message"] == "bad key"


def test_reset_mid_stream_raises_transport_error(upstream):
    upstream.queue(Reply(200, {"content-type": "text/event-stream"}, chunks=[b"data: 1\n\n"] * 5,
                         reset_after_chunks=2))
    with pytest.raises(TransportError) as err:
        with fast_transport().stream(_req(upstream.url)) as h:
            for _ in h.chunks():
                pass
    assert "mid-stream" in str(err.value)


@pytest.mark.parametrize("http_client", ["httpx", "aiohttp", "h1"])
async def test_async_send_and_stream(upstream, http_client):
    upstream.queue(Reply(500), Reply(200, body=b'{"a": 1}'),
                   Reply(200, {"content-type": "text/event-stream"}, chunks=[b"a", b"b"]))
    t = fast_transport(http_client=http_client)
    resp = await t.asend(_req(upstream.url))
    assert resp.json() == {"a": 1}
    async with t.astream(_req(upstream.url)) as h:
        got = [c async for c in h.chunks()]
    assert b"".join(got) == b"ab"
    await t.aclose()


@pytest.mark.parametrize("http_client", ["httpx", "aiohttp", "h1"])
async def test_async_backend_choice(upstream, http_client):
    upstream.queue(Reply(200, body=b'{"n": 1}'))
    t = fast_transport(http_client=http_client)
    assert (await t.asend(_req(upstream.url))).json() == {"n": 1}
    names = {"httpx": "HttpxBackend", "aiohttp": "AiohttpTransport", "h1": "H1Transport"}
    assert type(t.async_backend).__name__ == names[http_client]
    await t.aclose()


async def test_auto_picks_the_lean_client_when_httptools_is_installed(upstream, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    upstream.queue(Reply(200, body=b'{"n": 1}'))
    t = fast_transport()
    await t.asend(_req(upstream.url))
    assert type(t.async_backend).__name__ == "H1Transport"
    await t.aclose()


async def test_auto_is_not_put_off_the_lean_client_by_no_proxy_alone(upstream, monkeypatch):
    """NO_PROXY names hosts to reach directly; without a proxy set, there is no proxy to honour."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
    upstream.queue(Reply(200, body=b'{"n": 1}'))
    t = fast_transport()
    await t.asend(_req(upstream.url))
    assert type(t.async_backend).__name__ == "H1Transport"
    await t.aclose()


async def test_async_pool_is_reused_across_concurrent_calls(upstream):
    upstream.queue(*[Reply(200, body=b'{"n": 1}') for _ in range(20)])
    t = fast_transport(http_client="httpx")
    results = await asyncio.gather(*(t.asend(_req(upstream.url)) for _ in range(20)))
    assert all(r.status == 200 for r in results)
    clients = t._httpx._async.peek()
    assert clients is not None and len(clients) == 1
    client = clients[asyncio.get_running_loop()]
    await t.asend(_req(upstream.url))
    assert t._httpx._async.peek() == {asyncio.get_running_loop(): client}
    await t.aclose()


def test_resolve_http_client_says_what_auto_means_and_why(monkeypatch):
    from cloverleaf.transport import resolve_http_client

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "NO_PROXY",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert resolve_http_client("auto") == ("h1", "httptools is installed and no proxy is set")
    monkeypatch.setenv("NO_PROXY", "localhost")
    assert resolve_http_client("auto")[0] == "h1"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    client, why = resolve_http_client("auto")
    assert client == "httpx" and "https" in why and "proxy.internal" not in why  # no proxy URL (it may hold a password)
    assert resolve_http_client("aiohttp") == ("aiohttp", "set by http_client")


def test_the_async_backend_is_chosen_once_however_many_threads_ask_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loops in several threads asking at once got a backend each (each with its own pools)."""
    import threading

    transport = Transport(http_client="h1")
    chosen: list[object] = []
    original = Transport._choose_async

    def slow_choice(self: Transport) -> object:
        time.sleep(0.05)   # widen the window two threads used to race through
        backend = original(self)
        chosen.append(backend)
        return backend

    monkeypatch.setattr(Transport, "_choose_async", slow_choice)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(transport.async_backend)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(chosen) == 1 and all(b is chosen[0] for b in seen)
