"""A dashboard session signed in with an admin-scoped virtual key stays within that key's limits.

A restricted admin key (allowed models, a budget, rpm, local-only) signed in to ``/ui`` and
created a key with every field blank: the new key had no limits at all, and calls with it (from
the API, or pasted into the Playground) escaped every limit of the key that made it. It could
also edit the model registry: price the one entry it was allowed at $0, and its budget was never
spent again."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from cloverleaf._context import KeyPolicy
from cloverleaf.server.errors import ApiError

from .conftest import MASTER, Live, create_key, settings, start_live, stop_live
from .ui_support import csrf_of, form_token_of, sign_in

ECHO = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}))
    yield server
    stop_live(server)


def _admin_key(live: Live, **limits: Any) -> dict[str, Any]:
    return create_key(live, name=f"ops-{time.monotonic_ns()}", metadata={"role": "admin"}, **limits)


def _create(http: httpx.Client, **form: str) -> httpx.Response:
    page = http.get("/ui/keys").text
    return http.post("/ui/keys", data={"csrf": csrf_of(page), "form_token": form_token_of(page), **form})


def _secret_of(page: httpx.Response) -> str:
    return re.search(r'id="new-secret" class="mono" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def _stored(live: Live, key_id: str) -> Any:
    return live.state.backend.store.get_virtual_key(key_id)


def _alert(page: httpx.Response) -> str:
    found = re.findall(r'class="alert[^"]*" role="(?:alert|note)">([^<]*)', page.text)
    return " ".join(found).replace("&#39;", "'")


def test_an_admin_key_with_a_budget_or_rates_creates_no_keys(live: Live) -> None:
    """Even a lower budget or rate would multiply: a created key's spend and requests are its own."""
    limited = _admin_key(live, allowed_models=["fake/echo"], budget=0.000001, rpm=1, privacy="local-only")
    http = sign_in(live, limited["key"])
    page = http.get("/ui/keys")
    assert page.status_code == 200 and 'action="/ui/keys"' not in page.text   # no form to fill
    assert "budget and rpm" in _alert(page)
    before = {r.id for r in live.state.backend.store.list_virtual_keys(include_revoked=True)}
    for form in ({"name": "minted", "admin": "on"}, {"name": "minted", "budget": "0.0000001", "rpm": "1",
                                                     "allowed_models": "fake/echo"}):
        refused = _create(http, **form)
        assert refused.status_code == 403, refused.text[-400:]
        assert "keys cannot be created from this session" in _alert(refused) and 'id="new-secret"' not in refused.text
    assert {r.id for r in live.state.backend.store.list_virtual_keys(include_revoked=True)} == before
    rated = sign_in(live, _admin_key(live, tpm=1000)["key"])
    assert _create(rated, name="minted").status_code == 403


def test_keys_an_admin_key_creates_inherit_its_models_privacy_and_expiry(live: Live) -> None:
    parent = _admin_key(live, allowed_models=["fake/*", "priced"], privacy="local-only", expires_in_days=2)
    parent_row = _stored(live, parent["id"])
    http = sign_in(live, parent["key"])
    page = http.get("/ui/keys").text
    assert 'action="/ui/keys"' in page and "stays within its limits" in page
    made = _create(http, name="blank", admin="on")      # everything blank: the session key's values
    assert made.status_code == 201, _alert(made)
    child_id = re.search(r"Key (key_[0-9a-f]+) created", made.text).group(1)  # type: ignore[union-attr]
    child = _stored(live, child_id)
    assert child.allowed_models == ["fake/*", "priced"] and child.privacy == "local-only"
    assert child.expires_at == parent_row.expires_at and child.metadata == {"role": "admin"}
    with pytest.raises(openai.PermissionDeniedError) as refused:   # a model the parent may not use
        live.openai(_secret_of(made)).chat.completions.create(model="gpt-4o", **ECHO)  # type: ignore[arg-type]
    assert refused.value.status_code == 403 and "may not use model 'gpt-4o'" in str(refused.value)
    answer = live.openai(_secret_of(made)).chat.completions.create(model="fake/echo", **ECHO)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "hi"
    # narrower is fine, wider is a 400 naming the field
    narrower = _create(http, name="narrow", allowed_models="fake/echo", expires_in_days="1", budget="1", rpm="5")
    assert narrower.status_code == 201, _alert(narrower)
    for form, field in (({"allowed_models": "fake/echo, gpt-4o"}, "allowed models: 'gpt-4o'"),
                        ({"allowed_models": "fake/e*"}, "allowed models: 'fake/e*'"),
                        ({"expires_in_days": "30"}, "expiry")):
        wider = _create(http, name="wider", **form)
        assert wider.status_code == 400 and _alert(wider).startswith(field), (form, _alert(wider))
        assert "more permissive than your own key" in _alert(wider)


def test_a_key_an_admin_key_created_creates_keys_within_its_own_limits_too(live: Live) -> None:
    parent = _admin_key(live, allowed_models=["fake/*"])
    child = _create(sign_in(live, parent["key"]), name="child-admin", allowed_models="fake/echo", admin="on")
    assert child.status_code == 201
    grandchild = _create(sign_in(live, _secret_of(child)), name="grandchild", allowed_models="fake/*")
    assert grandchild.status_code == 400 and "'fake/*' is not within yours (fake/echo)" in _alert(grandchild)


def test_an_admin_key_without_limits_and_the_master_key_create_keys_as_before(live: Live) -> None:
    for key in (MASTER, _admin_key(live)["key"]):
        made = _create(sign_in(live, key), name="open")
        assert made.status_code == 201
        created = _stored(live, re.search(r"Key (key_[0-9a-f]+) created", made.text).group(1))  # type: ignore[union-attr]
        assert created.allowed_models == [] and created.budget is None and created.expires_at is None


def test_an_admin_key_with_limits_may_not_change_the_model_registry(live: Live) -> None:
    """Pricing its one allowed entry at $0 made a budget-limited key's calls free for ever."""
    with live.http(MASTER) as api:
        made = api.post("/admin/models", json={"name": "mine", "provider": "fake", "identifier": "echo",
                                               "input_cost_per_1k": 1000, "output_cost_per_1k": 1000})
        assert made.status_code == 201, made.text
    limited = _admin_key(live, allowed_models=["mine"], budget=0.01)
    http = sign_in(live, limited["key"])
    page = http.get("/ui/models")
    assert page.status_code == 200 and 'action="/ui/models"' not in page.text and "Edit mine" not in page.text
    assert "may look at the registry" in _alert(page)
    token = csrf_of(page.text)
    edit = http.post("/ui/models", data={"csrf": token, "entry": "mine", "provider": "fake", "identifier": "echo",
                                         "input_cost_per_1k": "0", "output_cost_per_1k": "0", "is_public": "on"})
    assert edit.status_code == 403 and "may look at the registry" in _alert(edit)
    added = http.post("/ui/models", data={"csrf": token, "name": "mine-too", "provider": "fake", "identifier": "echo"})
    assert added.status_code == 403
    assert http.post("/ui/models/delete", data={"csrf": token, "entry": "mine"}).status_code == 403
    store = live.state.backend.store
    assert store.get_model_entry("mine").input_cost_per_1k == 1000 and store.get_model_entry("mine-too") is None
    tested = http.post("/ui/models/test", data={"csrf": token, "entry": "mine"})   # a test call: under its budget
    assert tested.status_code == 200 and "failed" in tested.text and "budget" in tested.text
    # an admin key without limits still manages the registry
    free = sign_in(live, _admin_key(live, expires_in_days=1)["key"])
    token = csrf_of(free.get("/ui/models").text)
    assert free.post("/ui/models", data={"csrf": token, "name": "theirs", "provider": "fake",
                                         "identifier": "echo"}).status_code == 303


def _play(http: httpx.Client, **body: Any) -> httpx.Response:
    token = csrf_of(http.get("/ui/playground").text)
    return http.post("/ui/playground/stream", json={"model": "fake/echo", **ECHO, **body},
                     headers={"x-csrf-token": token})


def test_the_playground_calls_as_a_pasted_key_only_within_the_sessions_limits(live: Live) -> None:
    session = sign_in(live, _admin_key(live, allowed_models=["fake/*"], rpm=50, privacy="local-only")["key"])
    for wider, why in ((create_key(live, name="open"), "allowed models: every model"),
                       (create_key(live, name="cloud", allowed_models=["fake/echo"], rpm=5), "privacy"),
                       (create_key(live, name="fast", allowed_models=["fake/echo"], privacy="local-only"), "rpm")):
        refused = _play(session, key=wider["key"])
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error["code"] == "key_wider_than_yours" and why in error["message"] and wider["key"] not in refused.text
    within = create_key(live, name="within", allowed_models=["fake/echo"], rpm=5, privacy="local-only")
    answered = _play(session, key=within["key"])
    assert answered.status_code == 200
    assert [json.loads(line)["type"] for line in answered.text.splitlines()][-1] == "done"
    # the master key's session calls as any key, as before
    assert _play(sign_in(live), key=create_key(live, name="any")["key"]).status_code == 200


def test_a_budget_within_another_is_no_larger_and_resets_no_more_often() -> None:
    from cloverleaf.server.ui.key_limits import wider_than

    def policy(**limits: Any) -> KeyPolicy:
        return KeyPolicy(key_id="k", **limits)

    month = policy(budget=10.0, budget_period="month")
    assert wider_than(month, policy(budget=10.0, budget_period="month")) is None
    assert wider_than(month, policy(budget=5.0)) is None                        # total: never resets
    assert wider_than(month, policy(budget=20.0, budget_period="month"))[0] == "budget"  # type: ignore[index]
    assert wider_than(month, policy(budget=1.0, budget_period="day"))[0] == "budget_period"  # type: ignore[index]
    assert wider_than(month, policy())[0] == "budget"                         # type: ignore[index]
    assert wider_than(policy(budget=1.0, budget_period="day"), policy(budget=1.0, budget_period="month")) is None
    assert wider_than(policy(tpm=100), policy(tpm=101))[0] == "tpm"            # type: ignore[index]
    assert wider_than(policy(), policy(budget=1.0)) is None


def test_an_admin_key_of_a_project_creates_keys_of_that_project_only(live: Live) -> None:
    """A project's budget caps all its keys together: a key made outside the project (or one
    pasted into the Playground) would spend outside that cap, so neither is allowed; keys of
    the project may be made, as they add no allowance of their own."""
    parent = _admin_key(live, project="acme")
    http = sign_in(live, parent["key"])
    page = http.get("/ui/keys").text
    assert 'name="project"' in page and "(project: acme)" in page
    made = _create(http, name="blank-project")          # blank: the session key's project
    assert made.status_code == 201, _alert(made)
    child_id = re.search(r"Key (key_[0-9a-f]+) created", made.text).group(1)  # type: ignore[union-attr]
    assert _stored(live, child_id).project == "acme"
    assert _create(http, name="same", project="acme").status_code == 201
    other = _create(http, name="elsewhere", project="other")
    assert other.status_code == 400 and _alert(other).startswith("project: yours is 'acme'"), _alert(other)
    # the pasted key must be of the project too; the session's own calls run as it
    refused = _play(http, key=create_key(live, name="no-project")["key"])
    assert refused.status_code == 403 and "project" in refused.json()["error"]["message"]
    answered = _play(http)
    assert answered.status_code == 200
    trace_id = json.loads(answered.text.splitlines()[0])["trace_id"]
    calls = [c for c in live.state.backend.store.recent_calls(50) if c.trace_id == trace_id]
    assert [c.project for c in calls] == ["acme"]
    # and it may not change the registry, where it could price its project's calls at $0
    assert "may look at the registry" in _alert(http.get("/ui/models"))


def test_the_master_keys_session_creates_a_key_in_any_project_and_the_keys_page_shows_it(live: Live) -> None:
    http = sign_in(live)
    made = _create(http, name="in-ads", project="team-ads")
    assert made.status_code == 201, _alert(made)
    child_id = re.search(r"Key (key_[0-9a-f]+) created", made.text).group(1)  # type: ignore[union-attr]
    assert _stored(live, child_id).project == "team-ads"
    assert 'href="/ui/traces?project=team-ads">team-ads</a>' in http.get("/ui/keys").text
    bad = _create(http, name="bad", project="a|b")
    assert bad.status_code == 400 and "printable ASCII" in _alert(bad)


def test_a_project_is_a_limit_and_within_only_itself() -> None:
    from cloverleaf.server.ui.key_limits import has_limits, wider_than

    acme = KeyPolicy(key_id="k", project="acme")
    assert wider_than(acme, KeyPolicy(key_id="c", project="acme")) is None
    assert wider_than(acme, KeyPolicy(key_id="c", project="other"))[0] == "project"   # type: ignore[index]
    assert wider_than(acme, KeyPolicy(key_id="c"))[0] == "project"                    # type: ignore[index]
    assert wider_than(KeyPolicy(key_id="k"), KeyPolicy(key_id="c", project="acme")) is None   # an unlimited key chooses
    assert has_limits(acme) and not has_limits(KeyPolicy(key_id="k"))


def test_a_limited_key_without_a_project_cannot_mint_one_into_a_project() -> None:
    """Its keys would spend another team's project budget, which the server's header rule
    (``project_not_allowed``) refuses the key itself; they stay project-less as it is."""
    from cloverleaf.server.ui.key_limits import inherit, wider_than

    limited = KeyPolicy(key_id="k", allowed_models=("slow",))
    assert wider_than(limited, KeyPolicy(key_id="c", allowed_models=("slow",), project="team-other"))[0] == "project"  # type: ignore[index]
    parent = type("Row", (), {"id": "k", "allowed_models": ["slow"], "privacy": None, "project": None, "budget": None,
                              "budget_period": None, "rpm": None, "tpm": None, "expires_at": None})()
    with pytest.raises(ApiError) as info:
        inherit(parent, {"allowed_models": ["slow"], "project": "team-other"})
    assert info.value.param == "project"
