"""The ``h1`` server protocol on raw sockets: HTTP/1.1 framing, and the connection rules of
``server/connections.py`` (header timeout, idle timeout, the cap that evicts idle connections
before it refuses with 503). A tiny ASGI app stands in for cloverleaf's (the live-server tests
run cloverleaf's own app on this protocol)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import select
import socket
import time
import weakref
from collections.abc import Iterator

import pytest

from cloverleaf.server import h1_server
from cloverleaf.server.connections import ConnectionLimits

from .h1_support import (
    ROOMY_LIMITS,
    SHORT_LIMITS,
    App,
    closed_by_server,
    connect,
    read_response,
    read_until_closed,
    served_app,
    serving,
    wait_for,
)


@pytest.fixture
def served() -> Iterator[tuple[int, App]]:
    with served_app() as both:
        yield both


def test_keep_alive_pipelining_query_and_http10(served: tuple[int, App]) -> None:
    port, _ = served
    with connect(port) as s:
        s.sendall(b"GET /a?x=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")  # two at once
        buf = bytearray()
        first, second = read_response(s, buf), read_response(s, buf)
        assert json.loads(first[2]) == {"method": "GET", "path": "/a", "query": "x=1", "body": "",
                                        "http_version": "1.1", "client": "127.0.0.1", "scheme": "http"}
        assert json.loads(second[2])["body"] == "abc"
        assert "date" in first[1] and "connection" not in first[1]
        s.sendall(b"GET /c HTTP/1.1\r\nHost: t\r\n\r\n")  # the same connection again
        assert json.loads(read_response(s, buf)[2])["path"] == "/c"
    with connect(port) as s:
        s.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        status, headers, body = read_response(s)
        assert status == 200 and headers["connection"] == "close" and json.loads(body)["http_version"] == "1.0"
        assert closed_by_server(s, 2)


def test_chunked_upload_expect_continue_head_and_percent_path(served: tuple[int, App]) -> None:
    port, _ = served
    with connect(port) as s:
        s.sendall(b"POST /up%20load HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        status, _, body = read_response(s)
        assert status == 200 and json.loads(body)["body"] == "abcde" and json.loads(body)["path"] == "/up load"
        s.sendall(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n")
        s.settimeout(2)
        head = s.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")  # no body after a HEAD
        s.sendall(b"GET /after-head HTTP/1.1\r\nHost: t\r\n\r\n")
        assert json.loads(read_response(s)[2])["path"] == "/after-head"


@pytest.mark.parametrize("query", ["", "?watched"])
def test_streamed_response_is_chunked_and_the_app_hears_the_client_leave(served: tuple[int, App], query: str) -> None:
    """With ``?watched`` an earlier ``receive()`` was cancelled mid-wait: the stream's own wait
    for the disconnect is not cancelled with it (it was, with one shared future)."""
    port, app = served
    s = connect(port)
    s.sendall(b"GET /stream%s HTTP/1.1\r\nHost: t\r\n\r\n" % query.encode())
    data = b""
    while b"part2;" not in data:
        data += s.recv(65536)
    assert b"transfer-encoding: chunked" in data and b"6\r\npart0;\r\n" in data
    s.close()
    deadline = time.monotonic() + 5
    while not app.disconnects and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.disconnects == ["http.disconnect"]


def test_bad_requests_and_app_errors(served: tuple[int, App]) -> None:
    port, _ = served
    for raw in (b"NOT HTTP AT ALL\r\n\r\n",
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: ab\r\n\r\n{}"):
        with connect(port) as s:
            s.sendall(raw)
            status, headers, body = read_response(s)
        assert status == 400 and headers["connection"] == "close", raw
        assert headers["content-type"] == "application/json" and "x-cloverleaf-overhead-ms" in headers
        error = json.loads(body)["error"]     # the API's error shape, saying what was wrong
        assert error["code"] == "bad_http_request" and error["message"].startswith("malformed HTTP request (")
    with connect(port) as s:
        s.sendall(b"GET /boom HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = read_response(s)
        assert status == 500 and body == b"Internal Server Error" and headers["connection"] == "close"


@pytest.fixture
def short_served() -> Iterator[tuple[int, App]]:
    """Served with :data:`SHORT_LIMITS`, for the tests of the limits themselves."""
    with served_app(SHORT_LIMITS) as both:
        yield both


def test_header_timeout_closes_slowloris_and_idle_connections(short_served: tuple[int, App]) -> None:
    port, _ = short_served
    silent = connect(port)  # sends nothing at all
    slow = connect(port)
    slow.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")  # a head that never ends
    assert closed_by_server(silent, 3) and closed_by_server(slow, 3)
    with connect(port) as s:  # after a response, the keep-alive idle timeout applies
        s.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(s)[0] == 200
        assert closed_by_server(s, 3)


@pytest.fixture
def capped_served() -> Iterator[tuple[int, App]]:
    """At most four connections, and no timeout a slow run can reach: with SHORT_LIMITS' 0.5 s
    header timeout the sweep could close the idle ones before the newcomer evicted one."""
    with served_app(dataclasses.replace(ROOMY_LIMITS, max_connections=4)) as both:
        yield both


def test_at_the_cap_idle_connections_are_evicted_then_busy_ones_get_503(capped_served: tuple[int, App]) -> None:
    """The server is waited for, not slept on: a busy connection whose request it had not read
    yet still counted as idle, and the newcomer evicted it instead of being answered 503. The
    oldest connection is made older than the others on the clock the server reads: uvloop's
    loop time is a coarse monotonic clock in whole milliseconds, read once per round, so
    connections opened together tie and any of them may go (idle[0] was seen closed only
    because SHORT_LIMITS' header timeout closed them all); 20 ms is more than its tick."""
    port, app = capped_served
    state = app.server_state  # type: ignore[attr-defined]
    idle = [connect(port)]
    wait_for(lambda: state.connections, "the server never took the first idle connection")
    (oldest,) = state.connections
    wait_for(lambda: time.monotonic() > oldest.idle_since + 0.02, "the monotonic clock stood still")
    idle += [connect(port) for _ in range(3)]
    wait_for(lambda: len(state.connections) == 4, "the server never took the four idle connections")
    with connect(port) as s:  # evicts the oldest idle one
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(s)[0] == 200
    assert closed_by_server(idle[0], 2)
    assert select.select(idle[1:], [], [], 0)[0] == [], "a younger idle connection was closed too"
    for c in idle:
        c.close()
    wait_for(lambda: not state.connections, "the server kept closed connections")
    busy = [connect(port) for _ in range(4)]
    for c in busy:
        c.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
    wait_for(lambda: len(app.scopes) == 5, "the four held requests never reached the app")  # and /ok
    with connect(port) as s:
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = read_response(s)
        assert status == 503 and headers["retry-after"] == "1" and headers["connection"] == "close"
        assert json.loads(body)["error"]["code"] == "too_many_connections"
    guard = app.server_state.cloverleaf_guard  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while guard.lingering and time.monotonic() < deadline:  # the refused socket is let go
        time.sleep(0.02)
    assert guard.lingering == 0 and guard.refused == 1 and guard.evicted == 1
    app.release.set()
    for c in busy:
        assert read_response(c)[0] == 200
        c.close()


def test_the_seam_chooses_the_protocol_and_carries_the_connection_rules() -> None:
    from cloverleaf._errors import ConfigError
    from cloverleaf.server.cli_serve import H1_PROTOCOL, UVICORN_PROTOCOL, resolve_http, server_kwargs
    from cloverleaf.server.options import ServerOptions

    saved = h1_server.LIMITS
    try:
        opts = ServerOptions.from_settings({"header_timeout_seconds": 3, "keepalive_timeout_seconds": 2.5,
                                            "max_connections": 50}, {})
        assert resolve_http(opts.http) == "h1"
        kwargs = server_kwargs(opts)
        assert kwargs["http"] == H1_PROTOCOL and "limit_concurrency" not in kwargs
        assert h1_server.LIMITS == ConnectionLimits(header_timeout=3.0, keepalive_timeout=2.5, max_connections=50)
        uv = server_kwargs(ServerOptions.from_settings({"http": "uvicorn", "max_connections": 50}, {}))
        # uvicorn's own protocol (kept to h1's answers) and its own 503, no header timeout
        assert uv["http"] == UVICORN_PROTOCOL and uv["limit_concurrency"] == 50
        assert ServerOptions.from_settings({}, {}, http="uvicorn").http == "uvicorn"  # --http wins
        with pytest.raises(ConfigError, match="http must be one of"):
            ServerOptions.from_settings({"http": "h3"}, {})
        with pytest.raises(ConfigError, match="above 0"):
            ServerOptions.from_settings({"header_timeout_seconds": 0}, {})
        with pytest.raises(ConfigError, match="number of seconds"):
            ServerOptions.from_settings({"keepalive_timeout_seconds": "soon"}, {})
    finally:
        h1_server.configure(saved)


def test_the_open_file_limit_is_raised_to_the_hard_limit() -> None:
    import resource
    import subprocess
    import sys

    code = ("import resource; from cloverleaf.server.connections import raise_nofile_limit; "
            "print(raise_nofile_limit()[0], resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 512:
        pytest.skip("the hard open-file limit is too low to lower the soft one below it")

    def lowered() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    out = subprocess.run([sys.executable, "-c", code], preexec_fn=lowered, capture_output=True, text=True,
                         check=True).stdout.split()
    want = min(hard if hard != resource.RLIM_INFINITY else 1 << 20, 1 << 20)
    assert out == [str(want), str(want)]


def test_the_guard_evicts_the_longest_idle_and_never_a_busy_connection() -> None:
    from cloverleaf.server.connections import ConnectionGuard

    class Conn:
        def __init__(self, idle_since: float | None) -> None:
            self.idle_since = idle_since or 0.0
            self.deadline = None if idle_since is None else idle_since + 10
            self.expired = False
            self.write_paused = False

        def expire(self) -> bool:
            self.expired = True
            return True

    loop = asyncio.new_event_loop()
    try:
        guard = ConnectionGuard(ConnectionLimits(max_connections=3), loop)
        answered_just_now, busy, flood = Conn(100.0), Conn(None), Conn(50.0)
        for conn in (answered_just_now, busy, flood):
            assert guard.admit(conn)
        assert guard.admit(Conn(101.0))  # the flood's connection makes way, not the fresh one
        assert flood.expired and not answered_just_now.expired and not busy.expired
        assert guard.evicted == 1
        guard.connections = {busy, Conn(None), Conn(None)}
        assert not guard.admit(Conn(102.0)) and guard.refused == 1  # all busy: the newcomer gets 503
        guard.close()
    finally:
        loop.close()


def test_forwarded_headers_from_a_trusted_proxy_still_apply(served: tuple[int, App]) -> None:
    """uvicorn's proxy-headers rules (127.0.0.1 trusted by default) hold on h1, which skips
    that layer only for requests without X-Forwarded-* headers."""
    port, _ = served
    with connect(port) as s:
        s.sendall(b"GET /p HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n\r\n")
        buf = bytearray()
        seen = json.loads(read_response(s, buf)[2])
        assert (seen["client"], seen["scheme"]) == ("203.0.113.7", "https")
        s.sendall(b"GET /p HTTP/1.1\r\nHost: t\r\n\r\n")
        seen = json.loads(read_response(s, buf)[2])
        assert (seen["client"], seen["scheme"]) == ("127.0.0.1", "http")


def test_the_hangup_extension_calls_back_once_and_is_taken_back_when_the_request_ends(
        served: tuple[int, App]) -> None:
    port, app = served
    with connect(port) as s:
        s.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(s)[0] == 200
        # the extension refers to the request's cycle, and the cycle to the scope: left in place,
        # every request would be garbage only the collector could free
        deadline = time.monotonic() + 5
        while "extensions" in app.scopes[-1]:
            assert time.monotonic() < deadline, "the hang-up extension outlived its request"
            time.sleep(0.01)
    s = connect(port)
    s.sendall(b"GET /hangup HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 5
    while not (app.scopes and app.scopes[-1]["path"] == "/hangup"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.05)
    s.close()                                   # the client hangs up mid-request
    assert app.hung_up.wait(5), "the hang-up callback was not called"


@pytest.mark.parametrize("path", ["/plain", "/hangup"])
def test_a_closed_connection_is_freed_without_the_garbage_collector(served: tuple[int, App], path: str) -> None:
    """A connection lives long enough to reach the collector's oldest generation, so anything
    a reference cycle keeps after it closes waits for a full collection: its protocol, transport,
    last request and buffers (640 connections' worth, found in a memory probe after the load
    matrix). Closed, nothing may hold them but reference counts."""
    port, app = served
    state = app.server_state  # type: ignore[attr-defined]
    gc.disable()
    try:
        s = connect(port)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        if path == "/plain":
            assert read_response(s)[0] == 200
        deadline = time.monotonic() + 5
        while not state.connections or not app.scopes:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        protocol = weakref.ref(next(iter(state.connections)))
        time.sleep(0.05)
        s.close()                                   # at rest, or hanging up mid-request
        deadline = time.monotonic() + 5
        while state.connections or state.tasks:
            assert time.monotonic() < deadline, "the server kept the closed connection"
            time.sleep(0.01)
        time.sleep(0.05)
        assert protocol() is None, "only the garbage collector would free the closed connection"
    finally:
        gc.enable()




@pytest.mark.parametrize("segments", [1, 40])
def test_a_request_head_over_64_kib_is_431_and_a_url_over_8_kib_414(served: tuple[int, App], segments: int) -> None:
    """httptools joins the pieces of a header value with ``+=``: an endless one made every
    segment copy all the previous ones (seconds of a stalled event loop, hundreds of MiB).
    The head is bounded, whether it comes at once or over many segments."""
    port, app = served

    def refused(head: bytes) -> tuple[int, dict[str, str], bytes]:
        with connect(port) as s:
            step = -(-len(head) // segments)
            with contextlib.suppress(OSError):  # the server may refuse before the head is all sent
                for i in range(0, len(head), step):
                    s.sendall(head[i:i + step])
                    if segments > 1:
                        time.sleep(0.002)
            status, headers, body = read_response(s)
            assert closed_by_server(s, 2)
        assert headers["connection"] == "close" and headers["content-type"] == "application/json"
        return status, headers, body

    status, _, body = refused(b"GET /h HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    assert status == 431 and json.loads(body)["error"]["code"] == "headers_too_large"
    status, _, body = refused(b"GET /" + b"u" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status == 414 and json.loads(body)["error"]["code"] == "url_too_long"
    assert not app.scopes
    with connect(port) as s:  # within the bounds, with a body larger than them in the same segments
        s.sendall(b"POST /ok?" + b"q" * 8000 + b" HTTP/1.1\r\nHost: t\r\nX-Fair: " + b"b" * 50_000
                  + b"\r\nContent-Length: 200000\r\n\r\n" + b"c" * 200_000)
        status, _, body = read_response(s)
        assert status == 200 and len(json.loads(body)["body"]) == 200_000


def test_an_endless_header_is_cut_off_without_stalling_other_clients(served: tuple[int, App]) -> None:
    port, _ = served
    with connect(port) as attacker:
        attacker.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: ")
        sent = 0
        with pytest.raises(OSError):  # reset or broken pipe once the server has refused it
            while sent < 64 * 1024 * 1024:
                attacker.sendall(b"a" * 65536)
                sent += 65536
        assert sent < 4 * 1024 * 1024
    with connect(port) as s:
        s.sendall(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(s)[0] == 200


def test_an_upgrade_header_is_ignored_and_the_body_is_never_parsed_as_a_request(served: tuple[int, App]) -> None:
    """``curl --http2`` sends ``Upgrade: h2c``: llhttp stops after the head, and httptools went
    on parsing the body as the next request (a body arriving in a later segment was served as
    a request of its own: smuggling), while the request itself got an empty body."""
    port, app = served
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
    with connect(port) as s:
        s.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                  b"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Length: %d\r\n\r\n" % len(smuggled))
        time.sleep(0.1)
        s.sendall(smuggled)
        time.sleep(0.1)
        s.sendall(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")  # not served: the connection closes
        out = read_until_closed(s)
    status, headers, body = read_response(Replay(out))  # type: ignore[arg-type]
    assert status == 200 and headers["connection"] == "close"
    assert json.loads(body)["body"] == smuggled.decode() and out.count(b"HTTP/1.1 ") == 1
    assert [sc["path"] for sc in app.scopes] == ["/up"]
    for raw in (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
                b"POST /up HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"):
        with connect(port) as s:
            s.sendall(raw)
            status, headers, body = read_response(s)
            assert status == 400 and json.loads(body)["error"]["code"] == "bad_http_request", raw
            assert closed_by_server(s, 2)


class Replay:
    """Bytes already read, as read_response reads a socket."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def recv(self, n: int) -> bytes:
        out, self.data = self.data[:n], self.data[n:]
        return out


def test_a_malformed_request_is_answered_400_after_the_ones_before_it(served: tuple[int, App]) -> None:
    """A parse error closed the connection at once: the request in progress was cancelled as
    if the client had hung up, and neither it nor the bad one got an answer."""
    port, app = served
    with connect(port) as s:
        s.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        deadline = time.monotonic() + 5
        while not app.scopes:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        s.sendall(b"GET /bad HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        time.sleep(0.2)
        app.release.set()
        buf = bytearray()
        first, second = read_response(s, buf), read_response(s, buf)
        assert first[0] == 200 and json.loads(first[2])["path"] == "/hold"
        assert second[0] == 400 and json.loads(second[2])["error"]["code"] == "bad_http_request"
        assert closed_by_server(s, 2)
    with connect(port) as s:  # two good ones and a bad one in one segment: two answers, then the 400
        s.sendall(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        buf = bytearray()
        assert [read_response(s, buf)[0] for _ in range(3)] == [200, 200, 400]
        assert closed_by_server(s, 2)
    with connect(port) as s:  # a bad chunk size in the body of the request in progress
        s.sendall(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        time.sleep(0.1)
        s.sendall(b"zz\r\n")
        status, _, body = read_response(s)
        assert status == 400 and "chunk size" in json.loads(body)["error"]["message"]
        assert closed_by_server(s, 2)


def test_a_client_that_never_reads_is_cut_off_after_the_write_timeout(short_served: tuple[int, App]) -> None:
    """With a request in progress a connection had no deadline: a client that sent requests
    and read nothing held it (and a stream's upstream call) for ever, never swept nor evicted."""
    port, app = short_served  # write_timeout = 1 s
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    with s:
        s.sendall(b"GET /flood HTTP/1.1\r\nHost: t\r\n\r\n")
        deadline = time.monotonic() + 10
        while not app.disconnects:  # the stream hears a hang-up, its work stops
            assert time.monotonic() < deadline, "the stalled stream was never cut off"
            time.sleep(0.05)
        assert app.disconnects == ["flood"]
        state = app.server_state  # type: ignore[attr-defined]
        while state.connections:
            assert time.monotonic() < deadline, "the connection was not aborted"
            time.sleep(0.05)


def test_http10_gets_an_unframed_stream_and_no_100_continue(served: tuple[int, App]) -> None:
    port, app = served
    with connect(port) as s:   # /pausedstream ends by itself (/stream waits for a hang-up, which a
        # 1.0 client's close only becomes at the answer's next write: nothing may be written before it)
        s.sendall(b"GET /pausedstream HTTP/1.0\r\n\r\n")
        out = s.recv(65536)
        while b"part0;" not in out:
            out += s.recv(65536)
        app.release.set()
        while chunk := s.recv(65536):   # ended by the close
            out += chunk
        head, _, body = out.partition(b"\r\n\r\n")
        assert b"transfer-encoding" not in head.lower() and b"connection: close" in head
        assert body == b"part0;part1;part2;"
    with connect(port) as s:
        s.sendall(b"POST /e HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        s.settimeout(0.3)
        with pytest.raises(TimeoutError):  # no interim answer to a 1.0 client
            s.recv(100)
        s.sendall(b"hi")
        status, headers, body = read_response(s)
        assert status == 200 and json.loads(body)["body"] == "hi"


def test_a_request_cut_by_the_shutdown_gets_a_503_not_a_500(caplog: pytest.LogCaptureFixture) -> None:
    """uvicorn cancels what still runs when the graceful shutdown period ends: that is the
    server's doing, not an error of the app nor a client hanging up."""
    app = App()
    with serving(app, timeout_graceful_shutdown=0.5) as (port, server), connect(port) as s:
        s.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        deadline = time.monotonic() + 5
        while not app.scopes:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with caplog.at_level("INFO", logger="cloverleaf.server"):
            server.should_exit = True
            status, headers, body = read_response(s)
    assert status == 503 and headers["retry-after"] == "1" and headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "server_shutting_down"
    assert not [r for r in caplog.records if r.levelname == "ERROR" and r.name == "cloverleaf.server"]
    assert any("graceful shutdown period ended" in r.getMessage() for r in caplog.records)
