"""The ``h1`` protocol telling a client that hangs up from one that half-closes, on raw sockets.

A client that pipelines a request behind a slow one and hangs up was never heard (reading was
paused while the second waited): the first ran to its end and the second was then started for
a client long gone. A client that half-closed while a stream was being answered had the stream
cut after its first chunk (a FIN mid-answer was taken for a hang-up). Now the bytes behind a
waiting request are read but held unparsed (past a cap, reading pauses and the socket's TCP
state is watched), and a FIN is a hang-up only once the client answers a harmless write with
a reset.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from cloverleaf.server.h1_peer import PAUSED_PROBES
from cloverleaf.server.h1_standins import HELD_CAP

from .h1_support import App, answers, connect, read_until_closed, served_app, wait_for


@pytest.fixture
def served() -> Iterator[tuple[int, App]]:
    with served_app() as both:
        yield both


def _paths(app: App) -> list[str]:
    return [scope["path"] for scope in app.scopes]


@pytest.mark.parametrize("size", [0, 4 * HELD_CAP], ids=["held", "past-the-cap"])
def test_a_client_that_hangs_up_with_a_request_pipelined_is_heard_and_the_queued_one_never_runs(
        served: tuple[int, App], size: int) -> None:
    """``past-the-cap``: the waiting request's body is more than is held, so reading pauses and
    the FIN waits unread behind it (in the client's send queue): the 100 Continue the server
    writes meanwhile draws the reset of a client that closed its socket."""
    port, app = served
    s = connect(port)
    s.sendall(b"GET /hangup HTTP/1.1\r\nHost: t\r\n\r\n"
              b"POST /after HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (size, b"x" * size))
    wait_for(lambda: app.scopes, "the first request never reached the app")
    time.sleep(0.2)  # the second one is queued behind it
    s.close()
    assert app.hung_up.wait(5), "a client that hung up with a request pipelined was not heard"
    time.sleep(0.2)
    assert _paths(app) == ["/hangup"], "a request pipelined by a client that had gone was started"


def test_a_client_pipelining_past_the_cap_that_stays_gets_every_answer(served: tuple[int, App]) -> None:
    port, app = served
    with connect(port) as s:
        s.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"POST /big-body HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s"
                  % (4 * HELD_CAP, b"x" * 4 * HELD_CAP))
        wait_for(lambda: app.scopes, "the first request never reached the app")
        time.sleep(2.5)  # some 25 rounds of the paused connection's check
        app.release.set()
        s.sendall(b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        raw = read_until_closed(s)
        got = answers(raw)
    assert [json.loads(body)["path"] for _, _, body in got] == ["/hold", "/big-body", "/last"]
    # a few interim answers ask whether it is still there, not one every round: Go's client before
    # 1.24 refuses a sixth
    assert 1 <= raw.count(b"HTTP/1.1 100 Continue\r\n") <= PAUSED_PROBES
    assert len(json.loads(got[1][2])["body"]) == 4 * HELD_CAP


def test_bytes_held_behind_a_waiting_request_are_parsed_when_it_starts(served: tuple[int, App]) -> None:
    """A head cut at the end of a segment, the rest of it and a body over 64 KiB held: the held
    bytes do not count as that head (they made it a 431)."""
    port, app = served
    body = b"y" * 70_000
    with connect(port) as s:
        s.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\nGET /a HTTP/1.1\r\nHost: t\r\n\r\nPOST /b HT")
        wait_for(lambda: app.scopes, "the first request never reached the app")
        time.sleep(0.1)
        s.sendall(b"TP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        time.sleep(0.1)
        app.release.set()
        got = answers(read_until_closed(s))  # past the held cap: 100 Continues ask whether it is still there
    assert [json.loads(b)["path"] for _, _, b in got] == ["/hold", "/a", "/b"]
    assert json.loads(got[2][2])["body"] == body.decode()
    with connect(port) as s:  # held bytes, then the half-close: parsed and answered too
        s.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\nGET /c HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.1)
        s.sendall(b"GET /d HTTP/1.1\r\nHost: t\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        got = answers(read_until_closed(s))
    assert [json.loads(b)["path"] for _, _, b in got] == ["/hold", "/c", "/d"]


def test_a_half_close_during_a_streamed_answer_is_not_a_hang_up(served: tuple[int, App]) -> None:
    """The client shuts its side after the first chunk has reached it (``nc -N`` whose input
    ended a moment after the request): the stream goes on to its end, then the close."""
    port, app = served
    with connect(port) as s:
        s.sendall(b"GET /pausedstream HTTP/1.1\r\nHost: t\r\n\r\n")
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ") and b"part0;" in first
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.3)  # the FIN is in while the stream waits
        assert not app.hung_up.is_set(), "a half-close mid-answer was taken for a hang-up"
        app.release.set()
        out = first + read_until_closed(s)
    [(status, headers, body)] = answers(out)
    assert status == 200 and headers["transfer-encoding"] == "chunked" and body == b"part0;part1;part2;"


def test_a_client_that_closes_during_a_silent_stream_is_heard_at_once(served: tuple[int, App]) -> None:
    """It read all there was, so its close sends a FIN, not a reset: the leading zero written
    ahead of the next chunk's size draws the reset, with no chunk of the stream's own."""
    port, app = served
    s = connect(port)
    s.sendall(b"GET /pausedstream HTTP/1.1\r\nHost: t\r\n\r\n")
    assert b"part0;" in s.recv(65536)
    s.close()
    assert app.hung_up.wait(5), "a client that closed its socket mid-stream was not heard"
    assert not app.release.is_set()
