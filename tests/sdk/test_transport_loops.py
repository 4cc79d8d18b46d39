"""The async backends' pools across event loops and forks, against a real server on 127.0.0.1.

Each ``asyncio.run()`` makes a loop and closes it. The module-level ``cloverleaf.achat()`` kept
one client per loop that was never let go (its pools held the loop), and a client reused across
runs kept every finished loop's pool: an open upstream socket per run, for good (httpx's, used
when a proxy is set, until a collection found it and warned). A forked child
reused its parent's pooled connection (answers cross between processes). Connections are
counted on the server's side; nothing here asserts on elapsed time."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import warnings
import weakref
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import cloverleaf
from cloverleaf._http import HttpRequest
from cloverleaf.transport.aiohttp import AiohttpTransport
from cloverleaf.transport.h1.pool import H1Transport
from cloverleaf.transport.httpx import HttpxBackend

pytest.importorskip("httptools")
pytest.importorskip("aiohttp")

BACKENDS = ["h1", "aiohttp"]
ANSWER = b'{"id": "c1", "object": "chat.completion", "model": "m", "choices": [{"index": 0, "message": ' \
         b'{"role": "assistant", "content": "hello"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, ' \
         b'"completion_tokens": 1, "total_tokens": 2}}'


class Counting:
    """An OpenAI-shaped server counting the connections it accepted and those still open."""

    def __init__(self) -> None:
        self.accepted = 0
        self.open = 0
        self.peers: list[tuple[str, int]] = []   # the client's address per request
        self.paths: list[str] = []               # the request target per request
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        counter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with counter.lock:
                    counter.accepted += 1
                    counter.open += 1

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    with counter.changed:
                        counter.open -= 1
                        counter.changed.notify_all()

            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with counter.lock:
                    counter.peers.append(self.client_address)
                    counter.paths.append(self.path)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(ANSWER)))
                self.end_headers()
                self.wfile.write(ANSWER)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def settles_at(self, most: int) -> int:
        """The connections still open once the server has seen every close (bounded wait)."""
        with self.changed:
            self.changed.wait_for(lambda: self.open <= most, timeout=10)
            return self.open

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def counting() -> Iterator[Counting]:
    server = Counting()
    yield server
    server.close()


@pytest.fixture
def isolated(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No cloverleaf.toml nor CLOVERLEAF_* of the developer's; default clients of this test only."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in [n for n in os.environ if n.startswith("CLOVERLEAF_") or n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)   # and no proxy: "auto" then takes the h1 client
    monkeypatch.setattr(cloverleaf, "_default_async", {})


def _kw(server: Counting) -> dict[str, Any]:
    return {"base_url": f"{server.url}/v1", "api_key": "sk-test-loops", "max_retries": 0}


def test_module_level_achat_under_repeated_asyncio_run_keeps_one_client_and_one_connection(
        counting: Counting, isolated: None) -> None:
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def one() -> str:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        return (await cloverleaf.achat("openai/m", "hi", **_kw(counting))).content

    gc.collect()   # what earlier tests left for the collector warns now, not inside the window below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(12):
            assert asyncio.run(one()) == "hello"
        gc.collect()
    assert len(cloverleaf._default_async) == 1
    assert [ref() is None for ref in loops] == [True] * 11 + [False]   # finished loops are let go
    assert counting.accepted == 12 and counting.settles_at(1) == 1       # their sockets closed, not left open
    assert not [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]   # closed by us, not the GC
    (client,) = cloverleaf._default_async.values()
    asyncio.run(client.aclose())
    assert counting.settles_at(0) == 0


def test_module_level_achat_through_a_proxy_closes_the_sockets_of_finished_loops(
        counting: Counting, isolated: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy set makes ``auto`` take httpx, whose client of a closed loop was only let go: its
    connection to the proxy stayed open until a collection, which warned of it."""
    monkeypatch.setenv("HTTP_PROXY", counting.url)   # the server answers the proxied request itself

    async def one() -> str:
        return (await cloverleaf.achat("openai/m", "hi", **_kw(counting))).content

    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(6):
            assert asyncio.run(one()) == "hello"
        assert counting.accepted == 6 and counting.settles_at(1) == 1   # closed at once, not by the GC
        gc.collect()
    assert not [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    (client,) = cloverleaf._default_async.values()
    assert isinstance(client.engine.transport.async_backend, HttpxBackend)
    assert all(path.startswith("http://") for path in counting.paths)   # absolute: sent to the proxy
    asyncio.run(client.aclose())
    assert counting.settles_at(0) == 0


def test_the_gateway_of_a_finished_loops_default_client_stops_its_threads(
        counting: Counting, isolated: None, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a gateway configured (a route and a store), each default client of a finished loop
    left its gateway's cleanup thread and store writer running: two threads per
    ``asyncio.run()``, for good. Only the live loop's client keeps its own."""
    monkeypatch.setenv("LOOPS_KEY", "sk-test-loops")
    (tmp_path / "cloverleaf.toml").write_text(
        f'[providers.up]\nkind = "openai"\nbase_url = "{counting.url}/v1"\napi_key_env = "LOOPS_KEY"\n'
        f'[routes.r]\ntargets = ["up/m"]\n[store]\nurl = "sqlite:///{tmp_path}/store.db"\n')

    def ours() -> list[str]:
        return sorted(t.name for t in threading.enumerate() if t.name.startswith("cloverleaf-"))

    before = ours()

    async def one() -> str:
        return (await cloverleaf.achat("r", "hi", max_retries=0)).content

    for _ in range(50):
        assert asyncio.run(one()) == "hello"
    (client,) = cloverleaf._default_async.values()
    assert client._gateway is not None   # the calls did go through a gateway
    assert ours() == sorted([*before, "cloverleaf-gateway-cleanup", "cloverleaf-store-writer"])
    asyncio.run(client.aclose())
    assert ours() == before


def _pools(backend: Any) -> Any:
    if isinstance(backend, H1Transport):
        return backend._pools
    return backend._sessions if isinstance(backend, AiohttpTransport) else backend._async.get()


@pytest.mark.parametrize("backend", [*BACKENDS, "httpx"])
def test_one_client_across_asyncio_runs_keeps_only_the_live_loops_pool(counting: Counting, backend: str) -> None:
    client = cloverleaf.AsyncClient(http_client=backend)
    gc.collect()   # as below: only this test's sockets are judged
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(8):
            assert asyncio.run(client.chat("openai/m", "hi", **_kw(counting))).content == "hello"
        assert len(_pools(client.engine.transport.async_backend)) == 1
        assert counting.accepted == 8 and counting.settles_at(1) == 1   # before any collection
        gc.collect()
    assert not [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    asyncio.run(client.aclose())   # on a loop of its own: the last run's pool is another loop's
    assert counting.settles_at(0) == 0


@pytest.mark.parametrize("backend", [*BACKENDS, "httpx"])
def test_provider_close_closes_the_pools_of_finished_loops(counting: Counting, backend: str) -> None:
    provider = cloverleaf.get_provider("openai", model="m", base_url=f"{counting.url}/v1", api_key="sk-test-loops",
                                       http_client=backend)
    gc.collect()   # as above: only this test's sockets are judged
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(3):
            assert asyncio.run(provider.achat("hi")).content == "hello"
        provider.close()
        assert counting.settles_at(0) == 0   # at once, not when the GC finds them
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.filterwarnings(  # 3.12+ warns on every fork with threads running; forking one is what these tests test
    "ignore:This process .* is multi-threaded, use of fork\\(\\) may lead to deadlocks:DeprecationWarning")
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_forked_child_opens_its_own_connections(counting: Counting, backend: str) -> None:
    """One loop, used before and after a fork (the inherited pool holds a kept-alive connection):
    the child's call goes on a connection of its own, and the parent's pool still works."""
    transport = H1Transport() if backend == "h1" else AiohttpTransport()
    loop = asyncio.new_event_loop()

    def call() -> int:
        got = loop.run_until_complete(asyncio.wait_for(transport.asend(HttpRequest("GET", counting.url + "/")), 10))
        return got.status

    try:
        assert call() == 200
        pid = os.fork()
        if pid == 0:   # the child: report through the exit code only, never back into pytest
            code = 1
            try:
                code = 0 if call() == 200 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert call() == 200
        parent, child, parent_again = counting.peers
        assert child != parent            # the child did not write on the parent's connection
        assert parent_again == parent     # and the parent's connection is still its own, still pooled
    finally:
        loop.run_until_complete(transport.aclose())
        loop.close()
