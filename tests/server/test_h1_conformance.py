"""The ``h1`` protocol keeping HTTP/1.1's promises, on raw sockets: a large answer reaches a
slow reader whole (the idle timeout starts only once it is sent), a client that half-closes
after its request gets its answer, a request without exactly one Host or with a transfer
coding other than chunked is refused saying what to send, and the server's own error answers
carry a Date like every other."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from cloverleaf.server.connections import ConnectionLimits

from .h1_support import (
    App,
    answers,
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


# --------------------------------------------------------------------------- large answers


@pytest.mark.parametrize("path", ["/big", "/bigstream"])
def test_a_large_answer_to_a_slow_reader_arrives_whole_and_its_connection_is_not_evicted(path: str) -> None:
    """The keep-alive countdown started when the app finished, with most of the answer still
    in the server's buffer: a client downloading longer than the idle timeout got a clean EOF
    mid-body (7.8 of 13.1 MB), and at the cap the download was evicted as an idle connection."""
    size = 4 * 1024 * 1024
    limits = ConnectionLimits(header_timeout=5.0, keepalive_timeout=0.2, max_connections=3, write_timeout=2.0)
    app = App()
    with serving(app, limits, sndbuf=16384) as (port, _):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        s.connect(("127.0.0.1", port))
        s.settimeout(10)
        s.sendall(b"GET %s?%d HTTP/1.1\r\nHost: t\r\n\r\n" % (path.encode(), size))
        got, steps, idle = b"", 0, []
        while True:
            head, sep, body = got.partition(b"\r\n\r\n")
            if sep and (len(body) >= size if path == "/big" else body.endswith(b"\r\n0\r\n\r\n")):
                break
            chunk = s.recv(16384)
            assert chunk, f"the answer was cut off after {len(body)} of {size} body bytes"
            got += chunk
            steps += 1
            if steps == 40:  # at the cap (3): a newcomer evicts an idle connection, not the download
                idle = [connect(port), connect(port)]
                with connect(port) as newcomer:
                    newcomer.sendall(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
                    assert read_response(newcomer)[0] == 200
            time.sleep(0.01)  # a slow reader: the download lasts several idle timeouts
        assert steps > 40 and closed_by_server(idle[0], 5)
        status, headers, body = read_response(s, bytearray(got))
        assert status == 200 and len(body) == size and set(body) == {ord("b" if path == "/big" else "s")}
        assert closed_by_server(s, 5)  # sent: now idle, and the idle timeout applies
        for c in idle:
            c.close()
        s.close()


def test_a_client_that_stops_reading_a_finished_answer_is_cut_off_by_the_write_timeout() -> None:
    limits = ConnectionLimits(header_timeout=5.0, keepalive_timeout=30.0, max_connections=8, write_timeout=1.0)
    app = App()
    with serving(app, limits, sndbuf=16384) as (port, _):
        state = app.server_state  # type: ignore[attr-defined]
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        s.connect(("127.0.0.1", port))
        with s:
            s.sendall(b"GET /big?%d HTTP/1.1\r\nHost: t\r\n\r\n" % (4 * 1024 * 1024))
            assert s.recv(16384).startswith(b"HTTP/1.1 200 ")  # then it reads nothing more
            wait_for(lambda: not state.connections, "a client that reads nothing held its connection")


# --------------------------------------------------------------------------- half-close


def test_a_client_that_half_closes_after_its_request_gets_the_answer(served: tuple[int, App]) -> None:
    """``shutdown(SHUT_WR)`` after the request (``nc -N``, ``socat``, health checks) was taken
    for a hang-up: the request was cancelled and the client read nothing but the close."""
    port, app = served
    with connect(port) as s:
        s.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        wait_for(lambda: app.scopes, "the request never reached the app")
        time.sleep(0.1)  # the FIN is in before the answer
        app.release.set()
        out = read_until_closed(s)
    [(status, headers, body)] = answers(out)
    assert status == 200 and headers["connection"] == "close" and json.loads(body)["path"] == "/hold"
    with connect(port) as s:  # pipelined requests, then the half-close: every one answered
        s.sendall(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nPOST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi")
        s.shutdown(socket.SHUT_WR)
        got = answers(read_until_closed(s))
    assert [json.loads(body)["path"] for _, _, body in got] == ["/a", "/b"]  # and then the close
    with connect(port) as s:  # HTTP/1.0: no interim answer at all
        s.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        out = read_until_closed(s)
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and json.loads(answers(out)[0][2])["path"] == "/old"
    with connect(port) as s:  # a body cut short by the half-close: a 400 that says so
        s.sendall(b"POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        s.shutdown(socket.SHUT_WR)
        [(status, headers, body)] = answers(read_until_closed(s))
    assert status == 400 and json.loads(body)["error"]["code"] == "incomplete_request"


def test_a_client_that_closes_its_socket_is_still_a_hang_up(served: tuple[int, App]) -> None:
    port, app = served
    s = connect(port)
    s.sendall(b"GET /hangup HTTP/1.1\r\nHost: t\r\n\r\n")
    wait_for(lambda: app.scopes, "the request never reached the app")
    time.sleep(0.05)
    s.close()
    assert app.hung_up.wait(5), "a client that closed its socket was not heard hanging up"


# --------------------------------------------------------------------------- refused heads


def _refused(port: int, raw: bytes) -> tuple[int, dict[str, str], dict[str, str]]:
    with connect(port) as s:
        s.sendall(raw)
        status, headers, body = read_response(s)
        assert closed_by_server(s, 2), raw
    assert headers["connection"] == "close" and headers["content-type"] == "application/json", raw
    assert "date" in headers, f"no Date on the server's own {status} answer"
    return status, headers, json.loads(body)["error"]


def test_an_http11_request_needs_exactly_one_host(served: tuple[int, App]) -> None:
    port, app = served
    status, _, error = _refused(port, b"GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status == 400 and error["code"] == "bad_host_header" and "must have a Host header" in error["message"]
    status, _, error = _refused(port, b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n")
    assert status == 400 and error["code"] == "bad_host_header" and "more than one Host" in error["message"]
    assert not app.scopes
    with connect(port) as s:  # HTTP/1.0 may omit it
        s.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        assert read_response(s)[0] == 200


def test_a_transfer_coding_other_than_chunked_is_501(served: tuple[int, App]) -> None:
    """llhttp took the chunked framing off ``gzip, chunked`` and the app got the body still
    gzipped (a misleading 400 "not valid UTF-8")."""
    port, app = served
    for coding in (b"gzip, chunked", b"gzip"):
        status, _, error = _refused(port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: "
                                          b"application/json\r\nTransfer-Encoding: %s\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                                    % coding)
        assert status == 501 and error["code"] == "unsupported_transfer_encoding", coding
    assert not app.scopes


def test_protocol_errors_carry_a_date_and_say_what_is_wrong(served: tuple[int, App]) -> None:
    port, _ = served
    for raw, status in ((b"GET /h HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n", 400),
                        (b"GET /h?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
                        (b"GET /h HTTP/1.1\r\nHost: t\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n", 431)):
        assert _refused(port, raw)[0] == status
    for raw in (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
                b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n"):
        status, _, error = _refused(port, raw)
        assert status == 400 and "User callback error" not in error["message"], raw
        assert "send origin-form requests like 'POST /v1/chat/completions'" in error["message"], raw
    with connect(port) as s:  # an absolute-form target is still served
        s.sendall(b"GET http://t/abs?q=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        seen = json.loads(read_response(s)[2])
        assert (seen["path"], seen["query"]) == ("/abs", "q=1")
