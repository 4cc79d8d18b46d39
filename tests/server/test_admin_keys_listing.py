"""Week-two governance through the admin API, on both stores (SQLite and PostgreSQL): listing
many keys costs the same few reads however many have budgets, and each shows what it spent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import sqlalchemy as sa

from tests.gateway.stores import STORE_KINDS, store_url

from .conftest import MASTER, Live, settings, start_live, stop_live

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module", params=STORE_KINDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with store_url(request.param, tmp_path_factory.mktemp("keys")) as url:
        server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, store={"url": url}))
        try:
            yield server
        finally:
            stop_live(server)


class _Statements:
    """Counts the SQL statements the store's engine runs on this thread's request handlers
    and worker threads alike (the server answers from threads of its own)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine, self.count, self._lock = engine, 0, threading.Lock()

    def _seen(self, *_: Any) -> None:
        with self._lock:
            self.count += 1

    def __enter__(self) -> _Statements:
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_: Any) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)


def _statements_to_list(live: Live) -> tuple[int, list[dict[str, Any]]]:
    with live.http(MASTER) as http, _Statements(live.state.backend.store.engine) as seen:
        r = http.get("/admin/keys")
    assert r.status_code == 200, r.text
    return seen.count, r.json()["data"]


def test_listing_keys_reads_their_spend_at_once_not_key_by_key(live: Live) -> None:
    """``GET /admin/keys`` flushed the writer and read the ledger once per key with a budget:
    under traffic a flush waits for the writer's round trip, and a listing of 2,000 keys took
    7.5 s instead of 0.8. Now 60 more budgeted keys cost no more statements to list, and each
    key still shows what it spent in its own period."""
    with live.http(MASTER) as http:
        spender = http.post("/admin/keys", json={"name": "spender", "budget": 5, "budget_period": "day"}).json()
        monthly = http.post("/admin/keys", json={"name": "monthly", "budget": 5, "budget_period": "month"}).json()
    for key in (spender, spender, monthly):
        live.openai(key["key"]).chat.completions.create(model="priced", messages=HELLO, max_tokens=5)
    few, _ = _statements_to_list(live)
    with live.http(MASTER) as http:
        for i in range(60):
            assert http.post("/admin/keys", json={"name": f"bulk-{i}", "budget": 1.0 + i,
                                                  "budget_period": ("day", "month", None)[i % 3]}).status_code == 201
    many, listed = _statements_to_list(live)
    assert many <= few + 3, (few, many)   # + the key sync's reads of the change counter meanwhile
    by_id = {k["id"]: k for k in listed}
    with live.http(MASTER) as http:
        for key in (spender, monthly):
            one = http.get(f"/admin/keys/{key['id']}").json()
            assert one["spent"] > 0 and by_id[key["id"]]["spent"] == one["spent"], (one, by_id[key["id"]])
    assert by_id[spender["id"]]["spent"] == pytest.approx(2 * by_id[monthly["id"]]["spent"])
    assert all(k["spent"] == 0.0 for k in listed if k["name"].startswith("bulk-"))
    assert all("spent" not in k for k in listed if k["budget"] is None)


@pytest.mark.parametrize(("path", "params", "known"), [
    ("/admin/spend", {"by": "key", "key": "key_0123456789abcdef"}, "by, since, until"),
    ("/admin/spend", {"by": "model", "project": "team-a"}, "by, since, until"),
    ("/admin/keys", {"name": "ci-bot"}, "include_revoked, limit, after"),
    ("/admin/traces", {"key_id": "key_0123456789abcdef"}, "limit, model, status, trace_id, after"),
    ("/admin/breakers", {"target": "fake/echo"}, "state, limit"),
    ("/admin/models", {"provider": "fake"}, "none"),
])
def test_a_query_parameter_a_listing_does_not_read_is_a_400_naming_it(live: Live, path: str, params: dict[str, str],
                                                                      known: str) -> None:
    """``/admin/spend?by=key&key=K`` answered every key's spend, and ``/admin/keys?name=N``
    every key, as if filtered: an operator read the whole as the part asked about."""
    with live.http(MASTER) as http:
        r = http.get(path, params=params)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    unknown = next(name for name in params if name not in known)
    assert error["param"] == unknown and error["code"] == "unknown_parameter", error
    assert known in error["message"], error


@pytest.mark.parametrize(("body", "param"), [
    ({"allowed_models": [f"model-{i}" for i in range(1_001)]}, "allowed_models"),
    ({"allowed_models": ["fake/*", "m" * 257]}, "allowed_models[1]"),
    ({"allowed_models": ["fake/echo", "fake/\u0000echo"]}, "allowed_models[1]"),
    ({"metadata": {"notes": "x" * 20_000}}, "metadata"),
])
def test_a_key_too_large_to_keep_is_a_400_and_nothing_is_written(live: Live, body: dict[str, Any],
                                                                 param: str) -> None:
    """A key took 200,000 allowed models or 5 MB of metadata (up to the body cap): every call with
    it was checked against each model, and every listing and key cache carried it all. A model
    name no request may send (over 256 characters, a NUL) matched no call. Refused on create and
    on change, naming the field, and the key is left as it was."""
    with live.http(MASTER) as http:
        before = {k["id"] for k in http.get("/admin/keys").json()["data"]}
        made = http.post("/admin/keys", json={"name": "too-large", **body})
        assert made.status_code == 400 and made.json()["error"]["param"] == param, made.text
        assert {k["id"] for k in http.get("/admin/keys").json()["data"]} == before
        key = http.post("/admin/keys", json={"name": "kept", "allowed_models": ["fake/*"], "metadata": {"a": 1}})
        changed = http.patch(f"/admin/keys/{key.json()['id']}", json={"name": "renamed", **body})
        assert changed.status_code == 400 and changed.json()["error"]["param"] == param, changed.text
        kept = http.get(f"/admin/keys/{key.json()['id']}").json()
    assert (kept["name"], kept["allowed_models"], kept["metadata"]) == ("kept", ["fake/*"], {"a": 1})


def test_a_key_at_its_bounds_is_kept(live: Live) -> None:
    models = ["m" * 256, *(f"team/{i}-*" for i in range(999))]
    metadata = {"notes": "x" * 16_000}
    with live.http(MASTER) as http:
        made = http.post("/admin/keys", json={"name": "roomy", "allowed_models": models, "metadata": metadata})
        assert made.status_code == 201, made.text[:300]
        got = http.get(f"/admin/keys/{made.json()['id']}").json()
    assert got["allowed_models"] == models and got["metadata"] == metadata


def test_a_key_created_already_expired_is_a_400_and_an_update_may_expire_one_now(live: Live) -> None:
    """``expires_at`` in the past made a key dead from birth (a 201 for a key that never worked,
    while ``expires_in_seconds: 0`` was refused). On create it is a 400 saying so; on update it
    expires the key now, which a later ``expires_at`` (or ``null``) undoes — revoking is final."""
    import time

    with live.http(MASTER) as http:
        before = len(http.get("/admin/keys").json()["data"])
        r = http.post("/admin/keys", json={"name": "dead-at-birth", "expires_at": time.time() - 60})
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["param"] == "expires_at" and "in the past" in error["message"], error
        assert len(http.get("/admin/keys").json()["data"]) == before   # nothing was stored
        key = http.post("/admin/keys", json={"name": "paused", "expires_at": time.time() + 3600}).json()
    client = live.openai(key["key"])
    assert client.chat.completions.create(model="fake/echo", messages=HELLO, max_tokens=5).choices
    with live.http(MASTER) as http:
        paused = http.patch(f"/admin/keys/{key['id']}", json={"expires_at": time.time() - 1})
        assert paused.status_code == 200 and paused.json()["expires_at"] is not None, paused.text
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="fake/echo", messages=HELLO, max_tokens=5)
    with live.http(MASTER) as http:
        assert http.patch(f"/admin/keys/{key['id']}", json={"expires_at": None}).status_code == 200
    assert client.chat.completions.create(model="fake/echo", messages=HELLO, max_tokens=5).choices
