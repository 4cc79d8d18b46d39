"""The admin API's writes on both stores (SQLite and PostgreSQL): a GET-then-PUT keeps the
stored provider key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloverleaf.server.secrets import SecretBox
from tests.gateway.stores import STORE_KINDS, store_url

from .conftest import MASTER, Live, settings, start_live, stop_live

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module", params=STORE_KINDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with store_url(request.param, tmp_path_factory.mktemp("admin")) as url:
        server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, store={"url": url}))
        try:
            yield server
        finally:
            stop_live(server)


# --------------------------------------------------------------------------- PUT keeps the key


def test_a_get_then_put_keeps_the_stored_provider_key(live: Live) -> None:
    """PUT used to rebuild the entry from the body alone, and GET shows no key: the round trip
    answered 200 with has_api_key false, and calls went out without the key."""
    with live.http(MASTER) as http:
        made = http.post("/admin/models", json={"name": "keyed", "provider": "fake", "identifier": "echo",
                                                "api_key": "sk-upstream-SECRET", "input_cost_per_1k": 1.0})
        assert made.status_code == 201 and made.json()["has_api_key"] is True, made.text
        shown = http.get("/admin/models/keyed").json()
        body = {k: v for k, v in shown.items() if k not in ("has_api_key", "source")}
        put = http.put("/admin/models/keyed", json=body)
        assert put.status_code == 200 and put.json()["has_api_key"] is True, put.text
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
