"""A virtual key's fields through ``POST`` and ``PATCH /admin/keys``, on both stores (SQLite and
PostgreSQL): null is each field's default (its limit removed) but for ``name``, which is a 400
saying what to do; an expiry given two ways is a 400 rather than the last one winning; a field a
key does not have is a 400 listing those it has; and values of the wrong type or range are 400s
naming the field, never a 5xx (:mod:`cloverleaf.server.key_fields`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gateway.stores import STORE_KINDS, store_url

from .conftest import MASTER, Live, settings, start_live, stop_live

LIMITED = {"name": "limited", "allowed_models": ["fake/*"], "budget": 5, "budget_period": "day", "rpm": 10,
           "tpm": 1000, "expires_in_days": 3, "metadata": {"team": "a"}, "privacy": "local-only", "project": "p1"}
#: Each field's default, what null stands for (GET's view of it)
DEFAULTS = {"allowed_models": [], "budget": None, "budget_period": None, "rpm": None, "tpm": None,
            "expires_at": None, "metadata": {}, "privacy": "any", "project": None}


@pytest.fixture(scope="module", params=STORE_KINDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with store_url(request.param, tmp_path_factory.mktemp("key-fields")) as url:
        server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, store={"url": url}))
        try:
            yield server
        finally:
            stop_live(server)


def test_a_null_name_is_a_400_on_create_and_on_change(live: Live) -> None:
    """`{"name": null}` made a key listed without a name (a blank one was refused for that
    reason), and a PATCH with it removed a good key's name."""
    with live.http(MASTER) as http:
        before = len(http.get("/admin/keys").json()["data"])
        made = http.post("/admin/keys", json={"name": None, "rpm": 5})
        assert made.status_code == 400, made.text
        error = made.json()["error"]
        assert error["param"] == "name" and "leave name out" in error["message"], error
        assert len(http.get("/admin/keys").json()["data"]) == before
        key = http.post("/admin/keys", json={"name": "kept"}).json()
        changed = http.patch(f"/admin/keys/{key['id']}", json={"name": None})
        assert changed.status_code == 400, changed.text
        assert changed.json()["error"]["param"] == "name" and "never removed" in changed.json()["error"]["message"]
        assert http.get(f"/admin/keys/{key['id']}").json()["name"] == "kept"
        unnamed = http.post("/admin/keys", json={})   # leaving it out still makes a key without a name
        assert unnamed.status_code == 201 and unnamed.json()["name"] is None, unnamed.text


def test_every_other_null_is_the_fields_default_on_create_and_removes_it_on_change(live: Live) -> None:
    with live.http(MASTER) as http:
        made = http.post("/admin/keys", json={"name": "nulls", **{f: None for f in DEFAULTS}})
        assert made.status_code == 201, made.text
        assert {f: made.json()[f] for f in DEFAULTS} == DEFAULTS
        key = http.post("/admin/keys", json=LIMITED).json()
        assert key["budget"] == 5 and key["project"] == "p1" and key["expires_at"] is not None
        cleared = http.patch(f"/admin/keys/{key['id']}", json={f: None for f in DEFAULTS})
        assert cleared.status_code == 200, cleared.text
        shown = http.get(f"/admin/keys/{key['id']}").json()
        assert {f: shown[f] for f in DEFAULTS} == DEFAULTS and shown["name"] == "limited"


@pytest.mark.parametrize("expiry", [{"expires_at": 4e9, "expires_in_days": 1},
                                    {"expires_in_seconds": 60, "expires_in_days": None},
                                    {"expires_at": None, "expires_in_seconds": 60}])
def test_an_expiry_given_two_ways_is_a_400(live: Live, expiry: dict[str, Any]) -> None:
    """`{"expires_at": ..., "expires_in_days": 1}` kept whichever came last in the code's order,
    silently: a key an operator meant to expire in 2096 expired tomorrow."""
    with live.http(MASTER) as http:
        made = http.post("/admin/keys", json={"name": "twice", **expiry})
        assert made.status_code == 400, made.text
        assert made.json()["error"]["param"] in ("expires_in_seconds", "expires_in_days")
        assert "only one of" in made.json()["error"]["message"]
        key = http.post("/admin/keys", json={"name": "once", "expires_at": time.time() + 3600}).json()
        changed = http.patch(f"/admin/keys/{key['id']}", json=expiry)
        assert changed.status_code == 400, changed.text
        assert http.get(f"/admin/keys/{key['id']}").json()["expires_at"] == key["expires_at"]


def test_a_field_a_key_does_not_have_is_a_400_listing_its_fields(live: Live) -> None:
    """It said "the gateway does not pass fields it does not know to providers": about model
    calls, not keys, and no word of the fields a key has (``budget_usd`` for ``budget``)."""
    with live.http(MASTER) as http:
        r = http.post("/admin/keys", json={"name": "n", "budget_usd": 5})
        error = r.json()["error"]
        assert r.status_code == 400 and error["param"] == "budget_usd" and error["code"] == "unknown_field"
        assert "budget, budget_period" in error["message"] and "providers" not in error["message"]


@pytest.mark.parametrize(("field", "value", "said"), [
    ("budget", "5", "expected a number"), ("budget", -1, "at least 0"), ("budget", 1e13, "at most"),
    ("rpm", -1, "at least 1"), ("rpm", 1.5, "expected an integer"), ("rpm", 10**30, "at most"),
    ("tpm", True, "expected an integer"), ("budget_period", "week", "'day', 'month' or 'total'"),
    ("privacy", "local", "'local-only'"), ("metadata", [], "expected an object"),
    ("allowed_models", "fake/*", "expected an array"), ("expires_in_days", 0, "above 0"),
    ("expires_at", 1.0, "in the past"), ("project", "a|b", "project name"),
])
def test_a_value_of_the_wrong_type_or_range_is_a_400_naming_the_field(live: Live, field: str, value: Any,
                                                                     said: str) -> None:
    with live.http(MASTER) as http:
        r = http.post("/admin/keys", json={"name": "typed", field: value})
    assert r.status_code == 400 and r.json()["error"]["param"] == field and said in r.json()["error"]["message"], r.text


@pytest.mark.parametrize("raw", ['{"name": "n", "budget": NaN}', '{"name": "n", "rpm": Infinity}',
                                 '{"name": "n", "budget": -Infinity}', '{"name": "n", "rpm": 1e400}'])
def test_nan_and_infinity_are_a_400(live: Live, raw: str) -> None:
    with live.http(MASTER) as http:
        r = http.post("/admin/keys", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "finite number" in r.json()["error"]["message"], r.text


def test_changing_a_revoked_key_is_a_409_and_changes_nothing(live: Live) -> None:
    """A PATCH of a revoked key answered 200 with the new limits (`keys update KEY --expires-at
    none` printed "updated key"), as if the key worked again; it stayed refused, as it must."""
    with live.http(MASTER) as http:
        key = http.post("/admin/keys", json={"name": "gone", "rpm": 5}).json()
        assert http.delete(f"/admin/keys/{key['id']}").status_code == 200
        changed = http.patch(f"/admin/keys/{key['id']}", json={"rpm": 50, "expires_at": None})
        assert changed.status_code == 409 and changed.json()["error"]["code"] == "key_revoked", changed.text
        assert "create a new key" in changed.json()["error"]["message"]
        shown = http.get(f"/admin/keys/{key['id']}").json()
        assert shown["rpm"] == 5 and shown["revoked"] is True
