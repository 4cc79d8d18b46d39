"""A live cloverleaf server on 127.0.0.1 (uvicorn in a thread, a free port), backed by the
offline fake provider and an in-memory SQLite store, driven by the official SDKs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest
import uvicorn

from cloverleaf._config import ModelEntry, ProviderSettings, Settings
from cloverleaf.server.app import create_app
from cloverleaf.server.cli_serve import H1_PROTOCOL, UVICORN_PROTOCOL, resolve_http
from cloverleaf.server.options import ServerOptions
from cloverleaf.server.state import ServerState

from ..sdk.upstream import Upstream

MASTER = "test-master-key-0123456789abcdef"
ROUTES = {"smart": {"targets": ["fake/fail-503", "fake/echo"]},
          "doomed": {"targets": ["fake/fail-500", "fake/garbage"]}}
PRICED = ModelEntry(name="priced", identifier="echo", provider="fake", input_cost_per_1k=1.0,
                    output_cost_per_1k=1.0)


@dataclass
class Live:
    url: str
    app: Any
    server: uvicorn.Server

    @property
    def state(self) -> ServerState:
        return self.app.state.cloverleaf  # type: ignore[no-any-return]

    @property
    def fake(self) -> Any:
        """The fake upstream behind ``fake/...`` models (script replies and faults)."""
        return self.state.backend.engine.fake

    def openai(self, key: str = "unused", **kw: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, **kw)

    def anthropic(self, key: str = "unused", **kw: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=0, **kw)

    def http(self, key: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start_live(settings: Settings, options: ServerOptions | None = None, **config: Any) -> Live:
    """``config``: more of uvicorn's settings (``timeout_graceful_shutdown=0.5``)."""
    app = create_app(settings, options=options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # the protocol `cloverleaf serve` runs (h1 unless [server] http says otherwise)
    http = H1_PROTOCOL if resolve_http(options.http if options else "auto") == "h1" else UVICORN_PROTOCOL
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", http=http, **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    live = Live(f"http://127.0.0.1:{port}", app, server)
    live._thread = thread  # type: ignore[attr-defined]
    return live


def stop_live(live: Live) -> None:
    live.server.should_exit = True
    live._thread.join(timeout=20)  # type: ignore[attr-defined]


def _store_url() -> str:
    """A fresh SQLite file per server: the default store users get, with WAL and a connection
    per thread (an in-memory ``sqlite://`` shares one connection across the writer thread and
    the server's readers, which SQLite does not support)."""
    import tempfile

    return f"sqlite:///{tempfile.mkdtemp(prefix='cloverleaf-test-')}/store.db"


def settings(env: dict[str, str] | None = None, **kw: Any) -> Settings:
    base: dict[str, Any] = {"store": {"url": _store_url()}, "max_retries": 0, "timeout": 2.0,
                            "models": [PRICED], "routes": ROUTES}
    base.update(kw)
    return Settings(env=env or {}, **base)


@pytest.fixture(scope="module")
def open_server() -> Iterator[Live]:
    """No master key, no virtual keys: open to loopback. Small body cap for the 413 test."""
    s = settings()
    live = start_live(s, ServerOptions.from_settings({"max_body_mb": 0.25}, s.env))
    yield live
    stop_live(live)


@pytest.fixture(scope="module")
def secured_server() -> Iterator[Live]:
    s = settings(env={"CLOVERLEAF_MASTER_KEY": MASTER})
    live = start_live(s)
    yield live
    stop_live(live)


def create_key(live: Live, **fields: Any) -> dict[str, Any]:
    with live.http(MASTER) as http:
        r = http.post("/admin/keys", json=fields)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    """A mock provider on 127.0.0.1 for one test module's live server (a module's own fixture of
    this name wins)."""
    up = Upstream()
    yield up
    up.close()


@pytest.fixture(scope="module")
def two_upstreams_live(upstream: Upstream) -> Iterator[Live]:
    """A live server whose ``anth/...`` models answer from ``upstream`` as Anthropic's API and
    ``oai/...`` as OpenAI's (helpers for reading it: ``two_upstreams.py``)."""
    providers = {"anth": ProviderSettings("anth", kind="anthropic", base_url=upstream.url, api_key="sk-ant-mock"),
                 "oai": ProviderSettings("oai", kind="openai", base_url=f"{upstream.url}/v1", api_key="sk-mock")}
    server = start_live(settings(providers=providers))
    yield server
    stop_live(server)
