"""A hanging primary falls back within the first-byte timeout (issue 12, item 8).

The primary is a real server on 127.0.0.1 that accepts the connection, reads the request and
never answers: the failure that, with a 600 s read timeout and two retries, used to hold a call
for half an hour before the fallback was tried. With ``first_byte_timeout`` the call gives up on
the primary after one wait (a read timeout is not retried on the same target) and the route's
second target answers. The timeouts here are small so the test is quick; it asserts only that the
call fell back and got the second target's answer, never how long it took.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import cloverleaf
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._context import CallContext
from cloverleaf._errors import AllTargetsFailed, RateLimitError
from cloverleaf.gateway import ManualClock, SystemClock

from .conftest import Harness, chat_request, upstream


class HangingServer:
    """Accepts every connection and reads from it, and never writes a byte."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.accepted = 0
        self.conns: list[socket.socket] = []
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.05)
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            self.conns.append(conn)  # held open, never answered

    def close(self) -> None:
        self.closed.set()
        self.thread.join(2)
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    server = HangingServer()
    yield server
    server.close()


def _client(hanging: HangingServer, tmp_path: object) -> cloverleaf.Client:
    settings = Settings(
        routes={"smart": {"targets": ["hang/slow-model", "fake/echo"]}},
        providers={"hang": ProviderSettings(name="hang", kind="openai", base_url=hanging.url, api_key_env="HANG_KEY")},
        env={"HANG_KEY": "k"}, gateway=True, store={"url": f"sqlite:///{tmp_path}/t.db"},
        first_byte_timeout=0.3, idle_timeout=0.3, connect_timeout=1.0,  # max_retries stays the default 2
    )
    return cloverleaf.Client(settings)


def test_sync_chat_falls_back_from_a_hanging_primary(hanging: HangingServer, tmp_path: object) -> None:
    with _client(hanging, tmp_path) as client:
        resp = client.chat("smart", "the second target answers")
    assert resp.content == "the second target answers" and resp.metadata.target == "fake/echo"
    assert type(resp.metadata.attempts[0].error).__name__ == "ReadTimeout"
    assert hanging.accepted == 1  # the quiet primary was not asked again before falling back


def test_sync_stream_falls_back_from_a_hanging_primary(hanging: HangingServer, tmp_path: object) -> None:
    with _client(hanging, tmp_path) as client:
        text = "".join(client.stream("smart", "streamed from the fallback").text_stream)
    assert text == "streamed from the fallback" and hanging.accepted == 1


@pytest.mark.parametrize("http_client", ["h1", "aiohttp", "httpx"])
async def test_async_calls_fall_back_from_a_hanging_primary(hanging: HangingServer, tmp_path: object,
                                                            http_client: str) -> None:
    client = _client(hanging, tmp_path)
    async_client = cloverleaf.AsyncClient(Settings(**{**_settings_dict(client.settings), "http_client": http_client}))
    try:
        resp = await async_client.chat("smart", "async answer")
        assert resp.content == "async answer" and resp.metadata.target == "fake/echo"
        text = "".join([t async for t in async_client.stream("smart", "async stream").text_stream])
        assert text == "async stream"
        assert hanging.accepted == 2  # one wait per call on the primary, then the fallback
    finally:
        await async_client.aclose()
        client.close()


def _settings_dict(settings: Settings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in Settings.__dataclass_fields__}


def test_the_default_timeouts_fail_over_in_well_under_a_minute() -> None:
    """The documented defaults: a hanging upstream costs ``first_byte_timeout`` (not retried on the
    same target), a stalled stream ``idle_timeout``, an unreachable one ``connect_timeout`` per try."""
    s = Settings()
    assert (s.connect_timeout, s.first_byte_timeout, s.idle_timeout, s.timeout) == (5.0, 30.0, 30.0, 600.0)
    assert s.first_byte_timeout < 60 and s.connect_timeout * (s.max_retries + 1) < 60


def test_a_calls_own_timeout_and_max_retries_hold_through_the_gateway(tmp_path: object) -> None:
    """Per-call ``timeout=`` and ``max_retries=`` were dropped once any gateway table was set:
    the call waited the default 30 s and was tried the default three times."""
    from pathlib import Path

    store = {"url": f"sqlite:///{Path(str(tmp_path)) / 'c.db'}"}
    with cloverleaf.Client(Settings(env={}, store=store, cache={"mode": "exact"})) as client:
        assert client.settings.uses_gateway
        with pytest.raises(cloverleaf.TimeoutError, match="passed its 1 s deadline .*the call's timeout="):
            client.chat("fake/hang", "x", timeout=1)
        before = client.engine.fake.served
        with pytest.raises(cloverleaf.ServerError):
            client.chat("fake/fail-500x3", "x", max_retries=0)
        assert client.engine.fake.served - before == 1                     # tried once, as asked
        before = client.engine.fake.served
        assert client.chat("fake/fail-500x2", "x", max_retries=2).content      # and retried as asked
        assert client.engine.fake.served - before == 3


async def test_the_async_client_passes_them_on_too(tmp_path: object) -> None:
    from pathlib import Path

    store = {"url": f"sqlite:///{Path(str(tmp_path)) / 'c.db'}"}
    async with cloverleaf.AsyncClient(Settings(env={}, store=store, cache={"mode": "exact"})) as client:
        with pytest.raises(cloverleaf.TimeoutError, match="passed its 1 s deadline"):
            async for _ in client.stream("fake/hang", "x", timeout=1):
                pass


# -- the call's deadline holds in the gateway's own retries -----------------------------
_WAIT_20_S = {"retry-after": "20", "retry-after-ms": "20000"}   # the fake says 10 ms by default


async def test_a_retry_after_past_the_deadline_is_not_waited_for(harness: Harness) -> None:
    """A 503 asking for 20 s on a call with ``timeout=3`` was slept through (twice: 40 s) and
    retried; the direct SDK path gives up at once, as ``timeout`` promises ("retries included")."""
    clock = ManualClock(autojump=True)
    gw = harness.gateway(clock=clock, routes={"r": {"targets": ["fake/echo"], "retries": 2}})
    upstream(gw).script.fail(503, headers=_WAIT_20_S, times=3)
    with pytest.raises(AllTargetsFailed) as info:
        await gw.achat("r", chat_request(), CallContext(timeout=3.0))
    assert [type(a.error).__name__ for a in info.value.attempts] == ["OverloadedError"]
    assert len(upstream(gw).requests) == 1 and clock.now() < 3.0


async def test_a_retry_past_the_deadline_falls_back_to_the_next_target_at_once(harness: Harness) -> None:
    clock = ManualClock(autojump=True)
    gw = harness.gateway(clock=clock, routes={"r": {"targets": ["fake/echo", "fake/other"], "retries": 2}})
    upstream(gw).script.fail(503, headers=_WAIT_20_S)
    resp = await gw.achat("r", chat_request("next"), CallContext(timeout=3.0))
    assert resp.metadata.target == "fake/other" and [r.json["model"] for r in upstream(gw).requests] == [
        "echo", "other"]
    assert clock.now() < 3.0


async def test_without_a_timeout_argument_the_settings_timeout_is_the_deadline(harness: Harness) -> None:
    clock = ManualClock(autojump=True)   # the harness sets [defaults] timeout = 5
    gw = harness.gateway(clock=clock)
    upstream(gw).script.fail(429, headers=_WAIT_20_S, times=3)
    with pytest.raises(RateLimitError):   # a plain model id raises its target's own error
        await gw.achat("fake/echo", chat_request(), CallContext(max_retries=2))
    assert len(upstream(gw).requests) == 1 and clock.now() < 5.0


async def test_each_attempt_gets_only_the_time_left_of_the_deadline(harness: Harness) -> None:
    clock = ManualClock(autojump=True)
    gw = harness.gateway(clock=clock, routes={"r": {"targets": ["fake/echo"], "retries": 1}})
    upstream(gw).script.fail(503, headers={"retry-after": "2", "retry-after-ms": "2000"})
    given: list[float] = []
    achat = gw.engine.achat

    async def recording(target: Any, req: Any) -> Any:
        given.append((target.cfg.timeout, target.head_timeout))
        return await achat(target, req)

    gw.engine.achat = recording  # type: ignore[method-assign]
    await gw.achat("r", chat_request(), CallContext(timeout=5.0))
    # the second try came 2 s later: 3 s were left for its response head (its body's reads
    # still wait up to the call's own timeout= each)
    assert given == [(5.0, None), (5.0, 3.0)]


def test_a_sync_call_on_the_real_clock_does_not_wait_out_a_long_retry_after(harness: Harness) -> None:
    """On the real clock, through the sync bridge: a generous upper bound, never 40 s."""
    gw = harness.gateway(clock=SystemClock(), routes={"r": {"targets": ["fake/echo"], "retries": 2}})
    upstream(gw).script.fail(503, headers=_WAIT_20_S, times=3)
    started = time.monotonic()
    with pytest.raises(AllTargetsFailed):
        gw.chat("r", chat_request(), CallContext(timeout=3.0))
    assert time.monotonic() - started < 15.0
