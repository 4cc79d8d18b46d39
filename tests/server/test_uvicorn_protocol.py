"""``--http uvicorn`` gives the answers README promises of the server, as h1 does
(:mod:`cloverleaf.server.uvicorn_protocol`): a request cut by the shutdown is a 503 (a
stream ends with its error event), a request with ``Upgrade: h2c`` is served with its body,
and an HTTP/1.0 client never gets a chunked body. Raw sockets, so the bytes on the wire are
what is checked."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf.server.options import ServerOptions

from .conftest import Live, settings, start_live, stop_live

UVICORN = ServerOptions(http="uvicorn")


@pytest.fixture(scope="module")
def uv() -> Iterator[Live]:
    live = start_live(settings(), UVICORN)
    yield live
    stop_live(live)


class Records(logging.Handler):
    """What uvicorn logs: its "uvicorn" loggers do not reach the root logger caplog watches,
    and each server's start configures them afresh (dropping handlers added before)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _port(live: Live) -> int:
    return int(live.url.rsplit(":", 1)[1])


def _request(path: str, body: dict[str, Any], version: bytes = b"1.1", extra: bytes = b"") -> bytes:
    payload = json.dumps(body).encode()
    return (b"POST %s HTTP/%s\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s"
            % (path.encode(), version, extra, len(payload), payload))


def _read_until(sock: socket.socket, done: Any) -> bytes:
    out = b""
    while not done(out):
        data = sock.recv(65536)
        if not data:
            break
        out += data
    return out


def _answer(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def _exchange(live: Live, raw: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send ``raw``, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", _port(live)), timeout=30) as sock:
        sock.sendall(raw)
        return _answer(_read_until(sock, lambda out: False))


def _cut_by_shutdown(raw: bytes, in_flight: Any) -> tuple[str, dict[str, str], bytes]:
    """Send ``raw`` to a server of its own, stop the server once ``in_flight(socket, fake
    upstream)`` has returned (the bytes it read), and read the answer to the end."""
    s = settings(timeout=120.0)
    live = start_live(s, UVICORN, timeout_graceful_shutdown=0.5)
    log, logger = Records(), logging.getLogger("uvicorn.error")
    logger.addHandler(log)
    try:
        fake = live.fake
        with socket.create_connection(("127.0.0.1", _port(live)), timeout=30) as sock:
            sock.sendall(raw)
            first = in_flight(sock, fake)
            live.server.should_exit = True
            out = first + _read_until(sock, lambda out: False)
    finally:
        stop_live(live)
        logger.removeHandler(log)
    assert "Cancel 1 running task(s)" in {r.getMessage().split(",")[0] for r in log.records}  # it was cut
    assert not [r for r in log.records if r.exc_info or "Exception in ASGI" in r.getMessage()]
    return _answer(out)


def _upstream_called(sock: socket.socket, fake: Any) -> bytes:
    deadline = time.monotonic() + 20
    while fake.served == 0:
        assert time.monotonic() < deadline, "the request never reached the upstream"
        time.sleep(0.01)
    return b""


def _first_event(sock: socket.socket, fake: Any) -> bytes:
    return _read_until(sock, lambda out: b"data:" in out)


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_request_cut_by_the_shutdown_is_a_503_in_the_apis_shape(api: str) -> None:
    """uvicorn cancels what still runs when the graceful shutdown period ends: a 503 with
    Retry-After, as under h1, not uvicorn's text/plain 500 and a traceback in the log."""
    messages = [{"role": "user", "content": "wait"}]
    path, body = (("/v1/chat/completions", {"model": "fake/hang", "messages": messages}) if api == "openai" else
                  ("/v1/messages", {"model": "fake/hang", "max_tokens": 20, "messages": messages}))
    status, headers, raw = _cut_by_shutdown(_request(path, body), _upstream_called)
    assert status == "HTTP/1.1 503 Service Unavailable"
    assert headers["retry-after"] == "1" and headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    error = json.loads(raw)
    code = error["error"]["code"] if api == "openai" else error["error"]["details"]["error_code"]
    assert code == "server_shutting_down"


def test_a_stream_cut_by_the_shutdown_ends_with_its_error_event() -> None:
    """The stream sends its own error event (:class:`~cloverleaf.server.streaming.EventStream`);
    the cancellation that follows is not logged as an exception of the app."""
    # the head goes out with the first piece of text (the second chunk, 3 s in); the next
    # comes 3 s later, well after the 0.5 s shutdown period has cut the stream
    body = {"model": "fake/echo+drip-3s", "stream": True,
            "messages": [{"role": "user", "content": "one two three four five six"}]}
    status, headers, raw = _cut_by_shutdown(_request("/v1/chat/completions", body),
                                            _first_event)
    assert status == "HTTP/1.1 200 OK" and headers["transfer-encoding"] == "chunked"
    assert b"server_shutting_down" in raw and raw.endswith(b"0\r\n\r\n")  # the error event, then a proper end


def test_a_post_with_upgrade_h2c_is_served_with_its_body(uv: Live) -> None:
    """``curl --http2`` sends ``Upgrade: h2c``; llhttp skips the body of such a request. It is
    read per Content-Length, the request served over HTTP/1.1, the connection closed after
    it, and bytes after the body are not parsed as another request."""
    body = {"model": "fake/echo", "messages": [{"role": "user", "content": "upgraded"}]}
    raw = _request("/v1/chat/completions", body,
                   extra=b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n")
    status, headers, answer = _exchange(uv, raw + b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == "HTTP/1.1 200 OK" and headers["connection"] == "close"
    assert json.loads(answer)["choices"][0]["message"]["content"] == "upgraded"  # one answer only


@pytest.mark.parametrize("request_head", [
    b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
], ids=["connect", "chunked-upgrade"])
def test_connect_and_a_chunked_body_with_upgrade_are_a_400(uv: Live, request_head: bytes) -> None:
    """As under h1. (A CONNECT's authority-form target fails uvicorn's URL parsing first: its
    own text/plain 400, as for every request it cannot parse.)"""
    status, headers, answer = _exchange(uv, request_head)
    assert status == "HTTP/1.1 400 Bad Request" and headers["connection"] == "close"
    if not request_head.startswith(b"CONNECT"):
        assert headers["content-type"] == "application/json" and b"malformed HTTP request" in answer


def test_an_http10_client_gets_a_stream_unframed(uv: Live) -> None:
    """RFC 9112 §6.1: no Transfer-Encoding to an HTTP/1.0 client; the body ends with the close."""
    body = {"model": "fake/echo", "stream": True, "messages": [{"role": "user", "content": "old client"}]}
    status, headers, answer = _exchange(uv, _request("/v1/chat/completions", body, version=b"1.0"))
    assert status == "HTTP/1.1 200 OK" and "transfer-encoding" not in headers and "content-length" not in headers
    assert headers["connection"] == "close"
    assert answer.startswith(b"data: {") and answer.endswith(b"data: [DONE]\n\n")  # plain SSE, no chunk sizes
    status, headers, answer = _exchange(uv, _request("/v1/chat/completions", {**body, "stream": False},
                                                     version=b"1.0"))
    assert status == "HTTP/1.1 200 OK" and int(headers["content-length"]) == len(answer)


def test_the_installed_uvicorn_has_what_the_subclass_builds_on() -> None:
    """A uvicorn whose internals moved runs its own protocol unchanged (serve falls back); this
    says so here, loudly, instead of the fixes above quietly lapsing."""
    from cloverleaf.server.cli_serve import UVICORN_PROTOCOL, server_kwargs
    from cloverleaf.server.options import ServerOptions
    from cloverleaf.server.uvicorn_protocol import fits_this_uvicorn

    assert fits_this_uvicorn()
    assert server_kwargs(ServerOptions(http="uvicorn"))["http"] == UVICORN_PROTOCOL
