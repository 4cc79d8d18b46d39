"""A client that hangs up on a non-stream request (issue 12 item 4): its attachment
downloads and its upstream call stop at once, and the call is booked as a stream cut off
is — recorded as cancelled, its budget reservation charged (the provider may bill what it
had started). Real server, real sockets, both APIs."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cloverleaf._config import ModelEntry
from cloverleaf.server.options import ServerOptions

from .conftest import Live, settings, start_live, stop_live

PRICED_HANG = ModelEntry(name="priced-hang", identifier="hang", provider="fake", input_cost_per_1k=1.0,
                         output_cost_per_1k=1.0)
PNG_HEAD = b"\x89PNG\r\n\x1a\n"


class DripServer(ThreadingHTTPServer):
    """Sends a PNG a byte every 50 ms for minutes; notes when its reader has gone."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _DripHandler)
        self.started = threading.Event()
        self.reader_gone = threading.Event()
        self.stopping = threading.Event()


class _DripHandler(BaseHTTPRequestHandler):
    server: DripServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = PNG_HEAD + bytes(4000)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.server.started.set()
        try:
            for i in range(len(body)):
                if self.server.stopping.wait(0.05):
                    return
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
        except OSError:
            self.server.reader_gone.set()


@pytest.fixture(scope="module")
def drip() -> Iterator[DripServer]:
    server = DripServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.stopping.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module", params=["h1", "uvicorn"])
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    """Both server protocols: under h1 the connection calls the route back when it is lost
    (the ``cloverleaf.hangup`` extension); under uvicorn a watcher task waits for
    ``http.disconnect``."""
    s = settings(models=[PRICED_HANG], routes={"hang-route": {"targets": ["priced-hang"]}},
                 budgets={"hang-route": {"limit_usd": 100.0}}, timeout=120.0,
                 attachments={"allow_networks": ["127.0.0.1/32"], "read_timeout": 120.0, "request_timeout": 120.0})
    server = start_live(s, ServerOptions(http=request.param))
    yield server
    stop_live(server)


def _send_and_hang_up(live: Live, path: str, body: dict[str, Any], trace_id: str, in_flight: Any) -> None:
    payload = json.dumps(body).encode()
    port = int(live.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"anthropic-version: 2023-06-01\r\nx-cloverleaf-trace-id: %s\r\nContent-Length: %d\r\n\r\n%s"
                     % (path.encode(), trace_id.encode(), len(payload), payload))
        assert _until(in_flight), "the request never got in flight"
    # the socket is closed here: the client has hung up without reading an answer


def _until(predicate: Any, bound: float = 15.0) -> bool:
    end = time.monotonic() + bound
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def _record(live: Live, trace_id: str) -> Any:
    store = live.state.backend.store
    found: list[Any] = []

    def recorded() -> bool:
        store.flush()
        found[:] = store.recent_calls(5, trace_id=trace_id)
        return bool(found)

    # well inside the 120 s the upstream and the download would otherwise take
    assert _until(recorded), "the call was not cancelled and recorded"
    return found[0]


def _budgets(gateway: Any) -> list[Any]:
    """The configured budgets' status (memory state, which any thread's loop may read)."""
    return asyncio.run(gateway.budgets.status())  # type: ignore[no-any-return]


def _body(api: str, model: str, content: Any) -> tuple[str, dict[str, Any]]:
    if api == "openai":
        return "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": content}]}
    return "/v1/messages", {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": content}]}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream-before-first-token"])
@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_hanging_up_cancels_the_upstream_call_and_books_it(live: Live, api: str, stream: bool) -> None:
    gateway = live.state.backend.gateway
    served = live.fake.served
    (before,) = [b.spent_usd for b in _budgets(gateway) if b.key == "route:hang-route"]
    path, body = _body(api, "hang-route", "please wait " * 50)
    body["stream"] = stream
    trace = f"hangup-upstream-{api}-{stream}"
    _send_and_hang_up(live, path, body, trace, lambda: live.fake.served > served)
    call = _record(live, trace)
    assert call.status == "cancelled" and [a.error_type for a in call.attempts] == ["CancelledError"]
    assert _until(lambda: all(b.reserved_usd == 0 for b in _budgets(gateway)))
    (after,) = [b.spent_usd for b in _budgets(gateway) if b.key == "route:hang-route"]
    assert after > before  # the reservation is charged: the provider may bill the call it had started


def test_hanging_up_with_a_request_pipelined_cancels_the_call_in_flight_and_never_sends_the_other(
        live: Live, request: pytest.FixtureRequest) -> None:
    """Reading used to pause while the pipelined request waited, so the hang-up went unseen:
    the call in flight ran to its end, and the waiting one was then sent to the provider for
    a client long gone (and booked cancelled, its reservation charged)."""
    if request.node.callspec.params["live"] != "h1":
        pytest.skip("uvicorn's protocol pauses reading behind a pipelined request (README: --http uvicorn)")
    served = live.fake.served
    raw = b""
    for model, trace in (("hang-route", "hangup-pipelined-first"), ("fake/echo", "hangup-pipelined-second")):
        path, body = _body("openai", model, "please wait")
        payload = json.dumps(body).encode()
        raw += (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"x-cloverleaf-trace-id: %s\r\nContent-Length: %d\r\n\r\n%s"
                % (path.encode(), trace.encode(), len(payload), payload))
    port = int(live.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(raw)
        assert _until(lambda: live.fake.served > served), "the first request never got in flight"
        time.sleep(0.2)  # the second one waits behind it
    assert _record(live, "hangup-pipelined-first").status == "cancelled"
    time.sleep(0.3)
    store = live.state.backend.store
    store.flush()
    assert live.fake.served == served + 1 and store.recent_calls(5, trace_id="hangup-pipelined-second") == []


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_hanging_up_cancels_the_downloads(live: Live, drip: DripServer, api: str) -> None:
    drip.started.clear()
    drip.reader_gone.clear()
    url = f"http://127.0.0.1:{drip.server_address[1]}/slow.png"
    content: Any = ([{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": url}}]
                    if api == "openai" else
                    [{"type": "text", "text": "what is this?"}, {"type": "image", "source": {"type": "url", "url": url}}])
    served = live.fake.served
    path, body = _body(api, "fake/echo", content)
    _send_and_hang_up(live, path, body, f"hangup-download-{api}", drip.started.is_set)
    assert drip.reader_gone.wait(15), "the download went on after the client hung up"
    call = _record(live, f"hangup-download-{api}")
    assert call.status == "cancelled"
    assert live.fake.served == served  # nothing reached the provider


def test_a_stream_the_server_stops_at_shutdown_is_recorded_503_not_499() -> None:
    """uvicorn cancels the request task when its graceful shutdown period ends: the client did
    not hang up, so the stream is not a 499; it is told why the stream ends, in-band."""
    import asyncio as aio
    from types import SimpleNamespace

    from cloverleaf._types import StreamEvent
    from cloverleaf.server.streaming import EventStream

    recorded: list[tuple[int, str | None]] = []
    metrics = SimpleNamespace(record=lambda *a, code=None, **kw: recorded.append((a[3], code)))

    class Encoder:
        usage = None

        def start(self) -> bytes:
            return b"start;"

        def encode(self, ev: StreamEvent) -> bytes | None:
            return None

        def finish(self) -> bytes:
            return b"end;"

        def error(self, payload: dict[str, object]) -> bytes:
            return b"error:" + payload["error"]["code"].encode()  # type: ignore[index]

    async def forever() -> Any:
        await aio.sleep(3600)
        yield  # pragma: no cover

    async def main() -> list[dict[str, object]]:
        sent: list[dict[str, object]] = []

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        async def receive() -> dict[str, object]:
            await aio.sleep(3600)   # the client never leaves
            return {"type": "http.disconnect"}

        stream = EventStream(SimpleNamespace(metrics=metrics), "openai", "m", forever(), [], Encoder(),  # type: ignore[arg-type]
                             0.0, 0.0)
        task = aio.ensure_future(stream({}, receive, send))
        await aio.sleep(0.05)
        task.cancel()   # what uvicorn does past the graceful shutdown period
        with pytest.raises(aio.CancelledError):
            await task
        return sent

    sent = aio.run(main())
    assert recorded == [(503, "server_shutting_down")]
    assert sent[-1] == {"type": "http.response.body", "body": b"error:server_shutting_down", "more_body": False}
