"""The server while its PostgreSQL store is away: every request that needs the store gets a
503 ``store_unavailable`` in its API's own error shape, with Retry-After, soon — whether the
database is down (refusing connections) or has stopped answering (SIGSTOP, a partition) —
and the log has one line for it, without a traceback or the URL's password. ``/ready`` says
"unreachable" instead of hanging. Once the database is back, so is everything else.

The database goes away behind a proxy (``tests/gateway/postgres_faults.py``), never the shared
test server; the store's deadlines are shortened (the defaults are seconds long)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cloverleaf.gateway.store import postgres
from cloverleaf.server import backend, keys
from cloverleaf.server.options import ServerOptions
from tests.gateway.postgres_faults import FaultProxy, proxied_postgres

from .conftest import MASTER, Live, create_key, settings, start_live, stop_live

pytestmark = pytest.mark.postgres

PASSWORD = "pg-password-never-shown"
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


@pytest.fixture
def outage(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Live, FaultProxy]]:
    """A server on a PostgreSQL store behind a proxy, budgets counted in the store
    (``[state] budgets = "store"``) with one on the route ``smart``."""
    monkeypatch.setattr(postgres, "STATEMENT_TIMEOUT_SECONDS", 2.0)
    monkeypatch.setattr(postgres, "PING_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT_SECONDS", 2)
    monkeypatch.setattr(backend, "READY_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(keys, "LOOKUP_TIMEOUT_SECONDS", 1.0)
    with proxied_postgres(password=PASSWORD) as (url, proxy):
        s = settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, store={"url": url}, state={"budgets": "store"},
                     budgets={"smart": {"limit_usd": 100.0}})
        live = start_live(s, ServerOptions.from_settings({}, s.env))
        try:
            yield live, proxy
        finally:
            proxy.restore()
            stop_live(live)


def _requests(live: Live, key: str) -> dict[str, tuple[str, str, dict[str, Any] | None, str]]:
    """What needs the store, by name: (method, path, body, bearer key)."""
    return {
        "a virtual key not cached yet": ("POST", "/v1/chat/completions", {"model": "fake/echo", **CHAT}, key),
        "an unknown key": ("POST", "/v1/chat/completions", {"model": "fake/echo", **CHAT}, "sk-cl-unknown"),
        "a budgeted call": ("POST", "/v1/chat/completions", {"model": "smart", **CHAT}, MASTER),
        "a budgeted Anthropic call": ("POST", "/v1/messages", {"model": "smart", **CHAT}, MASTER),
        "a stored Response": ("POST", "/v1/responses", {"model": "fake/echo", "input": "hi"}, MASTER),
        "reading a Response": ("GET", "/v1/responses/resp_0123456789abcdef01234567", None, MASTER),
        "the admin API": ("GET", "/admin/keys", None, MASTER),
    }


def _ask(live: Live, method: str, path: str, body: dict[str, Any] | None, key: str) -> httpx.Response:
    # generous: without a bound on the store's waits these never came back at all
    with httpx.Client(base_url=live.url, timeout=60) as http:
        return http.request(method, path, json=body, headers={"authorization": f"Bearer {key}"})


def _check_503(name: str, r: httpx.Response) -> None:
    assert r.status_code == 503, (name, r.status_code, r.text)
    assert int(r.headers["retry-after"]) >= 1, name
    body = r.json()
    if r.request.url.path == "/v1/messages":   # Anthropic's shape
        assert body["type"] == "error" and body["error"]["type"] == "overloaded_error", name
        assert body["error"]["details"]["error_code"] == "store_unavailable", name
        message = body["error"]["message"]
    else:
        assert body["error"]["code"] == "store_unavailable", name
        message = body["error"]["message"]
    assert "store" in message and PASSWORD not in r.text, name


def _serves_again(live: Live, key: str) -> None:
    deadline = time.monotonic() + 60
    while _ask(live, "GET", "/ready", None, MASTER).status_code != 200:
        assert time.monotonic() < deadline, "the server did not recover"
        time.sleep(0.2)
    for name, (method, path, body, bearer) in _requests(live, key).items():
        r = _ask(live, method, path, body, bearer)
        assert r.status_code in (200, 401, 404), (name, r.status_code, r.text)   # unknown key 401, no Response 404


def test_postgres_down_is_a_503_on_every_surface(outage: tuple[Live, FaultProxy],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    live, proxy = outage
    key = create_key(live, name="team")["key"]   # created, never used: not in the key cache
    proxy.down()
    with caplog.at_level(logging.WARNING):
        for name, (method, path, body, bearer) in _requests(live, key).items():
            _check_503(name, _ask(live, method, path, body, bearer))
    logged = caplog.text
    assert "Traceback" not in logged and "incident" not in logged and PASSWORD not in logged
    assert logged.count("store is unavailable") >= len(_requests(live, key))
    proxy.restore()
    _serves_again(live, key)


@pytest.mark.slow
def test_postgres_that_stops_answering_gets_503s_not_a_hang(outage: tuple[Live, FaultProxy]) -> None:
    live, proxy = outage
    key = create_key(live, name="team")["key"]
    assert _ask(live, "POST", "/v1/chat/completions", {"model": "smart", **CHAT}, MASTER).status_code == 200
    proxy.freeze()
    ready = _ask(live, "GET", "/ready", None, MASTER)
    assert ready.status_code == 503 and ready.json()["store"] == "unreachable"
    for name, (method, path, body, bearer) in _requests(live, key).items():
        _check_503(name, _ask(live, method, path, body, bearer))
    proxy.restore()
    _serves_again(live, key)
