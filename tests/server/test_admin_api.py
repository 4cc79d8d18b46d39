"""The admin API's writes on both stores (SQLite and PostgreSQL): a GET-then-PUT keeps the
stored provider key, a name created by several requests at once is created once, every text
field fits its column (a 400 naming the field, never a 500), and cloverleaf.toml's own
providers may be named by entries made here and on the dashboard."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings
from cloverleaf.gateway.store import ModelEntryRow, TraceRecord, open_store
from cloverleaf.server.secrets import SecretBox
from tests.gateway.stores import STORE_KINDS, store_url

from .conftest import MASTER, Live, settings, start_live, stop_live
from .ui_support import csrf_of, sign_in

HELLO = [{"role": "user", "content": "hello"}]
#: a provider of the configuration's own, OpenAI-compatible (never called here)
MYLAB = ProviderSettings("mylab", kind="openai", base_url="http://127.0.0.1:9/v1", api_key_env="MYLAB_KEY")


@pytest.fixture(scope="module", params=STORE_KINDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with store_url(request.param, tmp_path_factory.mktemp("admin")) as url:
        server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER, "MYLAB_KEY": "sk-lab"},
                                     store={"url": url}, providers={"mylab": MYLAB}))
        try:
            yield server
        finally:
            stop_live(server)


def _at_once(live: Live, n: int, method: str, path: str, body: dict[str, Any]) -> list[int]:
    """The statuses of ``n`` requests sent together, each on its own connection."""
    ready = threading.Barrier(n)

    def one(_: int) -> int:
        with live.http(MASTER) as http:
            http.get("/health")             # connected before the barrier: the requests leave together
            ready.wait()
            return http.request(method, path, json=body).status_code

    with ThreadPoolExecutor(n) as pool:
        return sorted(pool.map(one, range(n)))


# --------------------------------------------------------------------------- the stored key stays put


def test_a_stored_key_goes_nowhere_new_without_being_sent_again(live: Live) -> None:
    """An edit that moves an entry to another host or provider would have sent its stored
    provider key, which the editor never sees, to a server of the editor's choosing."""
    with live.http(MASTER) as http:
        made = http.post("/admin/models", json={"name": "moved", "provider": "mylab", "identifier": "qwen",
                                                "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-KEEP-ME"})
        assert made.status_code == 201, made.text
        for change in ({"base_url": "http://127.0.0.2:9/v1"}, {"base_url": "https://127.0.0.1:9/v1"},
                       {"base_url": "http://127.0.0.1:10/v1"}, {"provider": "fake", "identifier": "echo"}):
            refused = http.patch("/admin/models/moved", json=change)
            assert refused.status_code == 400 and refused.json()["error"]["param"] == "api_key", refused.text
            put = http.put("/admin/models/moved", json={"provider": "mylab", "identifier": "qwen", **change})
            assert put.status_code == 400, put.text
        same_host = http.patch("/admin/models/moved", json={"base_url": "http://127.0.0.1:9/other/v1"})
        assert same_host.status_code == 200 and same_host.json()["has_api_key"] is True, same_host.text
        resent = http.patch("/admin/models/moved", json={"base_url": "http://127.0.0.2:9/v1", "api_key": "sk-new"})
        assert resent.status_code == 200 and resent.json()["has_api_key"] is True, resent.text
        removed = http.patch("/admin/models/moved", json={"base_url": "http://127.0.0.3:9/v1", "api_key": ""})
        assert removed.status_code == 200 and removed.json()["has_api_key"] is False, removed.text
    stored = live.state.backend.store.get_model_entry("moved")
    assert stored.base_url == "http://127.0.0.3:9/v1" and stored.api_key_encrypted is None


# --------------------------------------------------------------------------- PUT keeps the key


def test_a_get_then_put_keeps_the_stored_provider_key(live: Live) -> None:
    """PUT used to rebuild the entry from the body alone, and GET shows no key: the round trip
    answered 200 with has_api_key false, and calls went out without the key."""
    with live.http(MASTER) as http:
        made = http.post("/admin/models", json={"name": "keyed", "provider": "fake", "identifier": "echo",
                                                "api_key": "sk-upstream-SECRET", "input_cost_per_1k": 1.0})
        assert made.status_code == 201 and made.json()["has_api_key"] is True, made.text
        shown = http.get("/admin/models/keyed").json()
        put = http.put("/admin/models/keyed", json=shown)   # exactly what GET returned, has_api_key and all
        assert put.status_code == 200 and put.json()["has_api_key"] is True, put.text
        patched = http.patch("/admin/models/keyed", json=put.json())
        assert patched.status_code == 200 and patched.json() == put.json(), patched.text
        assert http.get("/admin/models/keyed").json()["has_api_key"] is True
        # PUT still replaces every other field: one left out is reset
        assert http.put("/admin/models/keyed", json={"provider": "fake", "identifier": "echo"}).json()[
            "input_cost_per_1k"] is None
    stored = live.state.backend.store.get_model_entry("keyed")
    assert SecretBox(MASTER).decrypt(stored.api_key_encrypted) == "sk-upstream-SECRET"
    live.openai(MASTER).chat.completions.create(model="keyed", messages=HELLO)
    assert live.fake.requests[-1].headers["authorization"] == "Bearer sk-upstream-SECRET"
    with live.http(MASTER) as http:   # only an explicit "" or null removes it
        for removal in ("", None):
            http.patch("/admin/models/keyed", json={"api_key": "sk-again"})
            gone = http.put("/admin/models/keyed", json={"provider": "fake", "identifier": "echo", "api_key": removal})
            assert gone.status_code == 200 and gone.json()["has_api_key"] is False, (removal, gone.text)
        assert http.delete("/admin/models/keyed").status_code == 200


# --------------------------------------------------------------------------- concurrent creates


def test_creating_one_model_name_at_once_creates_it_once(live: Live) -> None:
    """Check-then-insert: several requests for one name answered 201 (each overwriting the last)
    and some 500 (the unique constraint), instead of one 201 and 409s."""
    for trial in range(4):
        name = f"race-{trial}"
        codes = _at_once(live, 8, "POST", "/admin/models", {"name": name, "provider": "fake", "identifier": "echo"})
        assert codes == [201] + [409] * 7, (name, codes)
    with live.http(MASTER) as http:
        taken = http.post("/admin/models", json={"name": "race-0", "provider": "fake", "identifier": "echo"})
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "conflict"
        # PUT creates or replaces: at once on a new name, every one succeeds
        assert _at_once(live, 6, "PUT", "/admin/models/put-race", {"provider": "fake", "identifier": "echo"}) == [200] * 6
        for name in ("race-0", "race-1", "race-2", "race-3", "put-race"):
            http.delete(f"/admin/models/{name}")


def test_creating_one_trace_id_at_once_creates_it_once(live: Live) -> None:
    """The trace was queued for the batch writer after a check: every request answered 201 and
    one metadata was kept."""
    for trial in range(3):
        trace_id = f"dup-trace-{trial}"
        codes = _at_once(live, 6, "POST", "/admin/traces", {"id": trace_id, "metadata": {"n": trial}})
        assert codes == [201] + [409] * 5, (trace_id, codes)
    with live.http(MASTER) as http:
        again = http.post("/admin/traces", json={"id": "dup-trace-0"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "trace_exists"
        assert http.get("/admin/traces/dup-trace-0").json()["metadata"] == {"n": 0}


def test_the_store_creates_an_entry_or_a_trace_only_once(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        assert store.create_model_entry(ModelEntryRow("once", "echo", "fake")) is not None
        assert store.create_model_entry(ModelEntryRow("once", "other", "fake")) is None
        assert store.get_model_entry("once").identifier == "echo"
        first = store.upsert_model_entry(ModelEntryRow("once", "replaced", "fake")).created_at
        assert store.get_model_entry("once").identifier == "replaced"
        assert store.get_model_entry("once").created_at == first
        assert store.insert_trace(TraceRecord("t-1", 1.0, None, {"a": 1})) is True
        assert store.insert_trace(TraceRecord("t-1", 2.0, None, {"a": 2})) is False
        assert store.get_trace("t-1").metadata == {"a": 1}
    finally:
        store.close()


# --------------------------------------------------------------------------- text fits its column


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/admin/keys", {"name": "k" * 256}, "name"),
    ("/admin/keys", {"name": "nul\u0000byte"}, "name"),
    ("/admin/models", {"name": "m1", "provider": "fake", "identifier": "i" * 256}, "identifier"),
    ("/admin/models", {"name": "m2", "provider": "fake", "identifier": "echo", "api_key_env": "E" * 256},
     "api_key_env"),
    ("/admin/models", {"name": "m3", "provider": "fake", "identifier": "echo",
                       "base_url": "http://127.0.0.1:9/" + "p" * 1024}, "base_url"),
    ("/admin/models", {"name": "m4", "provider": "fake", "identifier": "e\u0000cho"}, "identifier"),
    ("/admin/models", {"name": "m5", "provider": "fake", "identifier": "echo", "api_key_env": "A\u0000B"},
     "api_key_env"),
    ("/admin/models", {"name": "m6", "provider": "fake", "identifier": "echo", "api_key": "sk-\u0000"}, "api_key"),
    ("/admin/models", {"name": "m\u00007", "provider": "fake", "identifier": "echo"}, "name"),
    ("/admin/models", {"name": "m8", "provider": "p" * 65, "identifier": "echo"}, "provider"),
])
def test_admin_text_that_the_store_cannot_keep_is_a_400_naming_the_field(live: Live, path: str, body: dict[str, Any],
                                                                        param: str) -> None:
    """PostgreSQL refuses VARCHAR overflow and NUL: these were 500s there (SQLite kept them)."""
    with live.http(MASTER) as http:
        r = http.post(path, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and ("NUL" in error["message"] or "at most" in error["message"])
    assert "sk-" not in r.text


@pytest.mark.parametrize(("field", "value"), [
    ("identifier", 5), ("base_url", 5), ("api_key_env", 5), ("provider", ["mylab"]), ("is_public", "false"),
    ("additional_config", "stream_usage"), ("additional_config", {"stream_usage": "false"}), ("name", 5),
])
def test_an_entry_field_of_the_wrong_type_is_a_400_as_in_the_file(live: Live, field: str, value: Any) -> None:
    """What cloverleaf.toml refuses at load (text where text belongs, true/false where a boolean
    does, a provider's own true/false keys) the admin API refuses as a 400 naming the field,
    on create and on change, and nothing is stored."""
    body = {"name": "typed", "provider": "mylab", "identifier": "m", field: value}
    with live.http(MASTER) as http:
        try:
            created = http.post("/admin/models", json=body)
            assert created.status_code == 400, created.text
            assert created.json()["error"]["param"] == field, created.text
            assert http.get("/admin/models/typed").status_code == 404
            ok = http.post("/admin/models", json={"name": "typed2", "provider": "mylab", "identifier": "m"})
            assert ok.status_code == 201, ok.text
            if field != "name":
                changed = http.patch("/admin/models/typed2", json={field: value})
                assert changed.status_code == 400 and changed.json()["error"]["param"] == field, changed.text
        finally:
            http.delete("/admin/models/typed")
            http.delete("/admin/models/typed2")


def test_a_blank_key_name_is_a_400_on_create_and_on_change(live: Live) -> None:
    """`POST /admin/keys {"name": "  "}` made a key listed with no name anyone could tell apart
    (the CLI refused it; the API did not), and a PATCH could blank a good one."""
    with live.http(MASTER) as http:
        before = len(http.get("/admin/keys").json()["data"])
        for blank in ("", "   ", "\t\n"):
            made = http.post("/admin/keys", json={"name": blank})
            assert made.status_code == 400, made.text
            error = made.json()["error"]
            assert error["param"] == "name" and "give the key a name" in error["message"], error
        assert len(http.get("/admin/keys").json()["data"]) == before
        key = http.post("/admin/keys", json={"name": "named"}).json()
        changed = http.patch(f"/admin/keys/{key['id']}", json={"name": " "})
        assert changed.status_code == 400 and changed.json()["error"]["param"] == "name", changed.text
        assert http.get(f"/admin/keys/{key['id']}").json()["name"] == "named"
        http.delete(f"/admin/keys/{key['id']}")


def test_admin_text_at_its_column_length_is_stored(live: Live) -> None:
    with live.http(MASTER) as http:
        key = http.post("/admin/keys", json={"name": "k" * 255})
        assert key.status_code == 201 and key.json()["name"] == "k" * 255, key.text
        too_long = http.patch(f"/admin/keys/{key.json()['id']}", json={"name": "k" * 256})
        assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "name"
        entry = http.post("/admin/models", json={"name": "n" * 200, "provider": "fake", "identifier": "i" * 255,
                                                 "api_key_env": "E" * 255})
        assert entry.status_code == 201, entry.text
        assert http.delete(f"/admin/models/{'n' * 200}").status_code == 200
        # trace metadata is JSON, which keeps a NUL as its escape: accepted, and read back as sent
        trace = http.post("/admin/traces", json={"metadata": {"a": "nul\u0000byte"}})
        assert trace.status_code == 201, trace.text
        assert http.get(f"/admin/traces/{trace.json()['id']}").json()["metadata"] == {"a": "nul\u0000byte"}


def test_a_name_or_id_no_row_could_have_is_refused_or_not_found(live: Live) -> None:
    """NUL in a path or query is refused at the door (a 400 ``invalid_nul``, documented in the
    OpenAPI parameters' pattern); an id longer than its column is not found, without a lookup."""
    with live.http(MASTER) as http:
        for method, path in [("GET", "/admin/models/a%00b"), ("DELETE", "/admin/models/a%00b"),
                             ("GET", "/admin/keys/a%00b"), ("DELETE", "/admin/keys/a%00b"),
                             ("PATCH", "/admin/keys/a%00b"), ("GET", "/admin/traces/a%00b"),
                             ("POST", "/admin/traces/a%00b/complete")]:
            r = http.request(method, path, json={} if method == "PATCH" else None)
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_nul", (method, path, r.text)
        assert http.get(f"/admin/keys/{'k' * 65}").status_code == 404
        for name in ("trace_id", "model", "status"):
            r = http.get("/admin/traces", params={name: "a\u0000b"})
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_nul", (name, r.text)


# --------------------------------------------------------------------------- configured providers


def test_entries_may_name_a_provider_from_the_configuration(live: Live) -> None:
    """[providers.mylab] served the file's [[models]] but the admin API and the dashboard refused it."""
    with live.http(MASTER) as http:
        made = http.post("/admin/models", json={"name": "lab-2", "provider": "mylab", "identifier": "llama-2"})
        assert made.status_code == 201 and made.json()["provider"] == "mylab", made.text
        unknown = http.post("/admin/models", json={"name": "lab-3", "provider": "nolab", "identifier": "x"})
        assert unknown.status_code == 400 and "mylab" in unknown.json()["error"]["message"]
        assert http.delete("/admin/models/lab-2").status_code == 200
    ui = sign_in(live)
    page = ui.get("/ui/models").text
    assert '<option value="mylab"' in page and '<option value="fake"' in page
    saved = ui.post("/ui/models", data={"csrf": csrf_of(page), "name": "lab-ui", "provider": "mylab",
                                        "identifier": "llama-3"})
    assert saved.status_code == 303, saved.text
    assert live.state.backend.store.get_model_entry("lab-ui").provider == "mylab"
    again = ui.post("/ui/models", data={"csrf": csrf_of(page), "name": "lab-ui", "provider": "mylab",
                                        "identifier": "llama-3"})
    assert again.status_code == 409
    assert ui.post("/ui/models/delete", data={"csrf": csrf_of(page), "entry": "lab-ui"}).status_code == 303


# --------------------------------------------------------------------------- one-hour cache writes


def test_an_entry_prices_one_hour_cache_writes_through_the_api_and_the_dashboard(live: Live) -> None:
    """[[models]] entries could set every cache rate but the one-hour write one; entries made
    here could not set it at all. It is stored, shown, and bills the call's one-hour writes."""
    from cloverleaf._types import Usage
    from cloverleaf.server.openapi_schemas import MODEL_ENTRY

    assert "cache_write_1h_cost_per_1k" in MODEL_ENTRY["properties"]
    entry = {"name": "sonnet-1h", "provider": "anthropic", "identifier": "claude-sonnet-4-5", "api_key_env": "MYLAB_KEY",
             "input_cost_per_1k": 0.003, "output_cost_per_1k": 0.015, "cache_write_1h_cost_per_1k": 0.009}
    with live.http(MASTER) as http:
        made = http.post("/admin/models", json=entry)
        assert made.status_code == 201 and made.json()["cache_write_1h_cost_per_1k"] == 0.009, made.text
        assert http.get("/admin/models/sonnet-1h").json()["cache_write_1h_cost_per_1k"] == 0.009
        bad = http.patch("/admin/models/sonnet-1h", json={"cache_write_1h_cost_per_1k": "0.01"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "cache_write_1h_cost_per_1k", bad.text
    assert live.state.backend.store.get_model_entry("sonnet-1h").cache_write_1h_cost_per_1k == 0.009
    price = live.state.backend.engine.resolve("sonnet-1h").price
    assert price.cache_write_1h == pytest.approx(9.0)
    assert price.cost(Usage(input_tokens=100_000, cache_write_tokens=100_000,
                            cache_write_1h_tokens=100_000)) == pytest.approx(0.9)
    ui = sign_in(live)
    page = ui.get("/ui/models?edit=sonnet-1h").text
    assert 'name="cache_write_1h_cost_per_1k"' in page and 'value="0.009"' in page
    saved = ui.post("/ui/models", data={"csrf": csrf_of(page), "entry": "sonnet-1h", "provider": "anthropic",
                                        "identifier": "claude-sonnet-4-5", "api_key_env": "MYLAB_KEY",
                                        "input_cost_per_1k": "0.003", "output_cost_per_1k": "0.015",
                                        "cache_write_1h_cost_per_1k": "0.012"})
    assert saved.status_code == 303, saved.text
    assert live.state.backend.store.get_model_entry("sonnet-1h").cache_write_1h_cost_per_1k == 0.012
    assert live.state.backend.engine.resolve("sonnet-1h").price.cache_write_1h == pytest.approx(12.0)
    with live.http(MASTER) as http:
        assert http.delete("/admin/models/sonnet-1h").status_code == 200
