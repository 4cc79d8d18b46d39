"""The dashboard over plain HTTP: on only with the admin API, sign-in and sessions, CSRF,
secrets never rendered, and every page and action answering (the browser flow is in
test_ui_browser.py)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from cloverleaf.gateway.store import schema
from cloverleaf.server.ui import session as ui_session

from .conftest import MASTER, Live, create_key, settings, start_live, stop_live
from .ui_support import PATIENCE, browser, csrf_of, form_token_of, forms_of, login_token, seed_history, sign_in

PAGES = ["/ui", "/ui?window=hour", "/ui?window=month", "/ui/traces", "/ui/spend", "/ui/spend?period=day",
         "/ui/models", "/ui/keys", "/ui/health", "/ui/health/live", "/ui/playground"]


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    s = settings(env={"CLOVERLEAF_MASTER_KEY": MASTER},
                 budgets={"smart": {"limit_usd": 10.0, "period": "month"}},
                 limits={"smart": {"rpm": 100, "tpm": 100000}})
    server = start_live(s)
    yield server
    stop_live(server)


def test_off_without_the_admin_api(open_server: Live) -> None:
    with open_server.http() as http:
        for path in ("/", "/ui", "/ui/login"):
            r = http.get(path)
            assert r.status_code == 404, path
            if path != "/":   # the dashboard's own paths say how to turn it on
                assert "CLOVERLEAF_MASTER_KEY" in r.text and r.headers["content-type"].startswith("text/plain")
        assert http.post("/ui/login").status_code in (404, 405)   # nothing but the explanation is served


def test_root_redirects_and_pages_need_a_session(live: Live) -> None:
    with browser(live) as http:
        assert http.get("/").headers["location"] == "/ui"
        r = http.get("/ui/traces?status=ok")
        assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/traces%3Fstatus%3Dok"
        assert http.post("/ui/keys", data={"name": "x"}).status_code == 401


def test_sign_in_sets_a_strict_http_only_cookie_and_redirects_inside(live: Live) -> None:
    with browser(live) as http:
        for evil in ("https://evil.example/", "//evil.example/ui", "/admin/keys"):
            r = http.post("/ui/login", data={"key": MASTER, "login_token": login_token(http), "next": evil})
            assert r.status_code == 303 and r.headers["location"] == "/ui"
        cookie = r.headers["set-cookie"]
        assert "clv_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Path=/ui" in cookie and "Secure" not in cookie   # plain http here
        assert MASTER not in cookie
        page = http.get("/ui")
        assert page.status_code == 200 and MASTER not in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"


async def test_cookie_is_secure_under_tls(live: Live) -> None:
    app = live.app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://gateway.test") as http:
        page = await http.get("/ui/login")
        token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        assert "Secure" in page.headers["set-cookie"]
        r = await http.post("/ui/login", data={"key": MASTER, "login_token": token})
        assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


def test_wrong_keys_and_forged_sign_ins_are_refused(live: Live) -> None:
    with browser(live) as http:
        r = http.post("/ui/login", data={"key": "not-the-master-key-at-all", "login_token": login_token(http)})
        assert r.status_code == 401 and "not" in r.text and "clv_session" not in r.headers.get("set-cookie", "")
        # no double-submit token (a form posted from another site): refused even with the right key
        http.cookies.clear()
        r = http.post("/ui/login", data={"key": MASTER, "login_token": "forged"})
        assert r.status_code == 403 and "clv_session" not in r.headers.get("set-cookie", "")
        r = http.post("/ui/login", data={"key": MASTER, "login_token": login_token(http)},
                      headers={"origin": "https://evil.example"})
        assert r.status_code == 403


def test_tokens_with_any_characters_are_refused_not_a_500(live: Live) -> None:
    """A token is compared in constant time, and ``compare_digest`` raised a TypeError on a str
    with a non-ASCII character: anyone could make the open sign-in form answer 500 with an
    incident in the log (``login_token=é``), and a session's forms as well."""
    with browser(live) as http:
        login_token(http)   # the double-submit cookie, to be compared with what is sent
        r = http.post("/ui/login", data={"key": MASTER, "login_token": "é-forged"})
        assert r.status_code == 403 and "incident" not in r.text
    http = sign_in(live)
    page = http.get("/ui/keys").text
    r = http.post("/ui/keys", data={"name": "odd-token", "csrf": "ünïcode", "form_token": form_token_of(page)})
    assert r.status_code == 403 and "incident" not in r.text
    r = http.post("/ui/playground/stream", json={"model": "fake/echo", "messages": [{"role": "user", "content": "x"}]},
                  headers={"x-csrf-token": b"\xe9"})   # a header's bytes are read as latin-1
    assert r.status_code == 403
    r = http.post("/ui/keys", data={"name": "odd-form", "csrf": csrf_of(page), "form_token": "nonce.ünïcode"})
    assert r.status_code == 400 and "submission token" in r.text
    assert "odd-" not in http.get("/ui/keys").text


def test_repeated_wrong_keys_are_throttled(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui_session, "MAX_FAILURES", 3)
    with browser(live, headers={}) as http:
        codes = [http.post("/ui/login", data={"key": f"wrong-{i}", "login_token": login_token(http)}).status_code
                 for i in range(4)]
    assert codes[-1] == 429
    # the throttle is per address and forgets after its window; clear it for the other tests
    live_sessions = _sessions(live)
    live_sessions._failures.clear()


def _sessions(live: Live) -> ui_session.Sessions:
    for route in live.app.fallback.routes:  # the Starlette app behind the hot-path dispatcher
        if getattr(route, "path", None) == "/ui/login" and "POST" in (route.methods or ()):
            return route.endpoint.__self__.web.sessions  # type: ignore[no-any-return,attr-defined]
    raise AssertionError("no sign-in route")


def test_state_changes_need_the_session_csrf_token(live: Live) -> None:
    http = sign_in(live)
    keys = http.get("/ui/keys")
    token = csrf_of(keys.text)
    assert http.post("/ui/keys", data={"name": "no-token"}).status_code == 403
    assert http.post("/ui/keys", data={"name": "bad-token", "csrf": "x" * 43}).status_code == 403
    r = http.post("/ui/keys", data={"name": "cross-site", "csrf": token}, headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    assert "no-token" not in http.get("/ui/keys").text
    r = http.post("/ui/playground/stream", json={"model": "fake/echo", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 403
    # the token of another session does not work either
    other = sign_in(live)
    assert other.post("/ui/keys", data={"name": "stolen", "csrf": token}).status_code == 403
    assert http.post("/ui/keys", data={"name": "good", "csrf": token,
                                       "form_token": form_token_of(keys.text)}).status_code == 201


def test_sign_out_ends_the_session_and_sessions_expire(live: Live) -> None:
    http = sign_in(live)
    cookie = http.cookies["clv_session"]
    token = csrf_of(http.get("/ui").text)
    assert http.post("/ui/logout", data={"csrf": token}).headers["location"].startswith("/ui/login")
    replay = browser(live, cookies={"clv_session": cookie})
    assert replay.get("/ui").status_code == 303
    # expiry: the same check, with the session's time run out
    http = sign_in(live)
    engine = live.state.backend.store.engine
    with engine.begin() as conn:
        conn.execute(schema.ui_sessions.update().values(expires_at=1.0))
    assert http.get("/ui").status_code == 303
    with engine.connect() as conn:   # only the token's hash is stored
        ids = conn.execute(sa.select(schema.ui_sessions.c.id)).scalars().all()
    assert http.cookies.get("clv_session") not in ids


def test_admin_scoped_keys_may_sign_in_and_other_keys_may_not(live: Live) -> None:
    plain = create_key(live, name="plain")
    admin = create_key(live, name="ops", metadata={"role": "admin"})
    with browser(live) as http:
        r = http.post("/ui/login", data={"key": plain["key"], "login_token": login_token(http)})
        assert r.status_code == 403 and "not admin-scoped" in r.text
    http = sign_in(live, admin["key"])
    assert http.get("/ui/keys").status_code == 200
    with live.http(MASTER) as api:
        api.post(f"/admin/keys/{admin['id']}/revoke")
    assert http.get("/ui/keys").status_code == 303   # the session ended with its key
    demoted = create_key(live, name="ops-2", metadata={"role": "admin"})
    http = sign_in(live, demoted["key"])
    assert http.get("/ui/keys").status_code == 200
    with live.http(MASTER) as api:
        assert api.patch(f"/admin/keys/{demoted['id']}", json={"metadata": {}}).status_code == 200
    assert http.get("/ui/keys").status_code == 303   # no admin role, no session (it could mint admin keys)


def test_a_session_that_ended_stays_ended_when_the_key_may_sign_in_again(live: Live) -> None:
    """Taking a key's admin role away (or letting it expire) to shut out a stolen cookie only
    hid the session: giving the role back (or lifting the expiry) revived every old cookie,
    even one never presented in between."""
    key = create_key(live, name="ops-revive", metadata={"role": "admin"})
    path = f"/admin/keys/{key['id']}"
    with live.http(MASTER) as api:
        def patch(**fields: object) -> None:
            assert api.patch(path, json=fields).status_code == 200

        seen = sign_in(live, key["key"])          # presented while the role is gone
        unseen = sign_in(live, key["key"])        # not presented until the role is back
        assert seen.get("/ui/keys").status_code == unseen.get("/ui/keys").status_code == 200
        patch(metadata={})
        assert seen.get("/ui/keys").status_code == 303
        patch(metadata={"role": "admin"})
        assert seen.get("/ui/keys").status_code == 303
        assert unseen.get("/ui/keys").status_code == 303
        expiring = sign_in(live, key["key"])
        patch(expires_at=1.0)                     # expired (long ago) ...
        patch(expires_at=None)                    # ... and lifted, the cookie not presented in between
        assert expiring.get("/ui/keys").status_code == 303
        kept = sign_in(live, key["key"])          # a change that leaves the key able to sign in ends nothing
        patch(rpm=100)
        assert kept.get("/ui/keys").status_code == 200


def test_a_local_only_admin_key_stays_local_in_the_playground(live: Live) -> None:
    """The dashboard's calls run under the signed-in key's whole policy, its privacy rule too."""
    with live.http(MASTER) as api:
        made = api.post("/admin/models", json={"name": "cloudish", "provider": "openai", "identifier": "gpt-4o-mini",
                                               "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-not-used"})
        assert made.status_code == 201, made.text
    private = create_key(live, name="private-ops", metadata={"role": "admin"}, privacy="local-only")
    http = sign_in(live, private["key"])
    token = csrf_of(http.get("/ui/playground").text)
    body = {"model": "cloudish", "messages": [{"role": "user", "content": "my private text"}], "max_tokens": 5}
    refused = http.post("/ui/playground/stream", json=body, headers={"x-csrf-token": token})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "privacy_violation"


def test_every_page_answers_on_a_seeded_store(live: Live) -> None:
    seed_history(live.state.backend.store, 300)
    http = sign_in(live)
    for path in PAGES:
        r = http.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert "<main" in r.text or path.endswith("/live")
    overview = http.get("/ui?window=day").text
    assert overview.count('<svg class="chart"') == 4 and "openai/gpt-4o-mini" in overview
    assert "key_3f9a1c2be07d4a11" in overview and "Latency p95" in overview
    spend = http.get("/ui/spend").text
    assert "route:smart" in spend and "Reserved now" in spend and "summarise" in spend
    health = http.get("/ui/health").text
    assert "route: smart" in health and "reachable" in health


def test_traces_filter_page_and_show_the_fallback_path(live: Live) -> None:
    seed_history(live.state.backend.store, 120, seed=11)
    out = live.openai(MASTER).with_options(default_headers={"x-cloverleaf-trace-id": "tr_fallback_demo"})
    out.chat.completions.create(model="smart", messages=[{"role": "user", "content": "hi"}])
    live.state.backend.store.flush()   # waits for the call's record, handed over after its answer
    assert live.state.backend.store.recent_calls(1, trace_id="tr_fallback_demo")
    http = sign_in(live)
    page = http.get("/ui/traces", params={"route": "smart", "model": "fake/echo"}).text
    call_id = re.search(r'href="/ui/traces/call/([^"]+)"', page).group(1)  # type: ignore[union-attr]
    detail = http.get(f"/ui/traces/call/{call_id}").text
    assert "fake/fail-503" in detail and "fake/echo" in detail and "Gateway overhead" in detail
    assert detail.index("fake/fail-503") < detail.index("fake/echo</span>")
    trace = http.get("/ui/traces/trace/tr_fallback_demo").text
    assert call_id in trace
    # keyset pages: no call twice, newest first, until there is no "Older" link
    seen: list[str] = []
    url = "/ui/traces?status=ok"
    while url:
        body = http.get(url).text
        seen += re.findall(r'href="/ui/traces/call/([^"]+)"', body)
        nxt = re.search(r'rel="next" href="([^"]+)"', body)
        url = nxt.group(1).replace("&amp;", "&") if nxt else ""
    with live.state.backend.store.engine.connect() as conn:
        ok_calls = conn.execute(sa.select(sa.func.count()).select_from(schema.calls)
                                .where(schema.calls.c.status == "ok")).scalar_one()
    assert len(seen) == len(set(seen)) == ok_calls > 100
    assert http.get("/ui/traces/call/call_nope").status_code == 404


def test_models_crud_with_write_only_provider_key_and_a_test_call(live: Live) -> None:
    http = sign_in(live)
    token = csrf_of(http.get("/ui/models").text)
    secret = "sk-provider-secret-0123456789abcdef"
    r = http.post("/ui/models", data={"csrf": token, "name": "ui-echo", "provider": "fake", "identifier": "echo",
                                      "api_key": secret, "input_cost_per_1k": "0.5", "output_cost_per_1k": "1",
                                      "is_public": "on", "additional_config": ""})
    assert r.status_code == 303, r.text
    listing = http.get("/ui/models").text
    assert "ui-echo" in listing and "stored" in listing and secret not in listing
    edit = http.get("/ui/models?edit=ui-echo").text
    assert secret not in edit and 'value="0.5"' in edit
    bad = http.post("/ui/models", data={"csrf": token, "name": "ui-bad", "provider": "fake", "identifier": "echo",
                                        "input_cost_per_1k": "cheap", "api_key": secret})
    assert bad.status_code == 400 and "expected a number" in bad.text and secret not in bad.text
    # edit keeps the stored key when the field is left blank
    r = http.post("/ui/models", data={"csrf": token, "entry": "ui-echo", "provider": "fake", "identifier": "echo",
                                      "output_cost_per_1k": "2", "is_public": "on"})
    assert r.status_code == 303
    row = live.state.backend.store.get_model_entry("ui-echo")
    assert row.api_key_encrypted and secret not in row.api_key_encrypted and row.output_cost_per_1k == 2.0
    tested = http.post("/ui/models/test", data={"csrf": token, "entry": "ui-echo"})
    assert tested.status_code == 200 and "answered" in tested.text
    trace_id = re.search(r'href="/ui/traces/trace/([^"]+)"', tested.text).group(1)  # type: ignore[union-attr]
    assert "ui-echo" in http.get(f"/ui/traces/trace/{trace_id}").text
    failing = http.post("/ui/models", data={"csrf": token, "name": "ui-down", "provider": "fake",
                                            "identifier": "fail-500", "is_public": "on"})
    assert failing.status_code == 303
    assert "failed" in http.post("/ui/models/test", data={"csrf": token, "entry": "ui-down"}).text
    assert http.post("/ui/models/delete", data={"csrf": token, "entry": "ui-down"}).status_code == 303
    assert live.state.backend.store.get_model_entry("ui-down") is None


def test_the_keys_page_shows_each_keys_spend_however_many_keys_spent() -> None:
    """The page read the 1,000 dearest keys' spend: once more than 1,000 keys had spent anything
    (live or long gone), every other key showed "$0" although it had spent."""
    from cloverleaf.gateway.store import CallRecord

    live = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}))
    try:
        store = live.state.backend.store
        now = time.time()
        for i in range(1001):   # dearer keys, deleted since: their spend stays in the rollups
            store.record_call(CallRecord(id=f"call_gone_{i}", created_at=now - 60, operation="chat",
                                         requested_model="fake/echo", status="ok", cost=1.0, key_id=f"key_gone_{i:04d}"))
        key = create_key(live, name="modest")
        store.record_call(CallRecord(id="call_modest", created_at=now - 60, operation="chat",
                                     requested_model="fake/echo", status="ok", cost=0.25, key_id=key["id"]))
        store.flush()
        page = sign_in(live).get("/ui/keys").text
        row = page[page.index(f">{key['id']}</a>"):]
        assert re.findall(r'<td class="num">([^<]*)</td>', row[:row.index("</tr>")]) == ["$0.25"]
    finally:
        stop_live(live)


ODD_NAMES = ["team", "team/delete", "team/test", "a?b=c#d", "50% off", " spaced name ", "ünï/cødé ✓",
             "x/../team", "a&b+c"]


def test_the_models_pages_own_forms_edit_test_and_delete_exactly_their_entry(live: Live) -> None:
    """The forms put the entry's name in the path (with "/" kept): saving "team/delete" from its
    edit form DELETED the entry "team" (the {name:path}/delete route matched first), and saving
    "team/test" ran a test call of "team". Every form, used as the page wrote it, must act on its
    own entry whatever its name holds."""
    from html import escape

    store = live.state.backend.store
    http = sign_in(live)
    with live.http(MASTER) as api:
        for name in ODD_NAMES:
            assert api.post("/admin/models", json={"name": name, "provider": "fake", "identifier": "echo"}
                            ).status_code == 201, name

    def submit(page: str, button: str, **changes: str) -> httpx.Response:
        action, fields = forms_of(page)[button]
        return http.post(action, data={**fields, **changes})

    for i, name in enumerate(ODD_NAMES):
        page = http.get("/ui/models", params={"edit": name}).text
        assert f"Edit “{escape(name, quote=False)}”" in page, name
        r = submit(page, "Save changes", provider="fake", input_cost_per_1k=str(i + 1))
        assert r.status_code == 303, (name, re.findall(r'role="alert">([^<]*)', r.text))
        assert http.get(r.headers["location"]).text.count(f"Saved model entry “{escape(name, quote=False)}”") == 1
        assert [e.name for e in store.list_model_entries() if e.input_cost_per_1k == i + 1] == [name]
        tested = submit(page, f"Test call to {name}")
        assert tested.status_code == 200 and f"Test call to {escape(name, quote=False)}: answered" in tested.text
    assert {e.name for e in store.list_model_entries()} >= set(ODD_NAMES)
    for i, name in enumerate(ODD_NAMES):
        r = submit(http.get("/ui/models").text, f"Delete {name}")
        assert r.status_code == 303 and store.get_model_entry(name) is None, name
        assert all(store.get_model_entry(other) is not None for other in ODD_NAMES[i + 1:]), name


def test_a_model_forms_json_field_is_read_as_a_request_body_is(live: Live) -> None:
    """additional_config went through json.loads as typed: an unpaired surrogate escape was
    stored (a value no answer could encode), and deep nesting was a RecursionError, a 500."""
    http = sign_in(live)
    token = csrf_of(http.get("/ui/models").text)
    for raw, reason in (('{"aws_region":"\\ud800"}', "surrogate"), ("[" * 3000 + "]" * 3000, "levels deep")):
        r = http.post("/ui/models", data={"csrf": token, "name": "ui-json", "provider": "fake",
                                          "identifier": "echo", "additional_config": raw})
        assert r.status_code == 400 and reason in r.text, r.text[-600:]
    assert live.state.backend.store.get_model_entry("ui-json") is None


def test_keys_secret_is_shown_once_and_revocation_refuses_the_next_call(live: Live) -> None:
    http = sign_in(live)
    page = http.get("/ui/keys").text
    token = csrf_of(page)
    created = http.post("/ui/keys", data={"csrf": token, "form_token": form_token_of(page), "name": "ui-made", "allowed_models": "fake/*, priced",
                                          "budget": "5", "budget_period": "month", "rpm": "30",
                                          "expires_in_days": "30"})
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    secret = re.search(r'id="new-secret" class="mono" value="([^"]+)"', created.text).group(1)  # type: ignore[union-attr]
    key_id = re.search(r"Key (key_[0-9a-f]+) created", created.text).group(1)  # type: ignore[union-attr]
    assert secret.startswith("sk-clv-") and secret not in http.get("/ui/keys").text
    assert live.openai(secret).chat.completions.create(
        model="fake/echo", messages=[{"role": "user", "content": "hi"}]).choices[0].message.content == "hi"
    assert "key:" + key_id in http.get("/ui/spend").text
    assert http.post(f"/ui/keys/{key_id}/revoke", data={"csrf": token}).status_code == 303
    r = httpx.post(f"{live.url}/v1/chat/completions", headers={"authorization": f"Bearer {secret}"},
                   json={"model": "fake/echo", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "key_revoked"


def test_playground_streams_ndjson_and_refuses_what_the_key_may_not_do(live: Live) -> None:
    http = sign_in(live)
    token = csrf_of(http.get("/ui/playground").text)
    body = {"model": "priced", "messages": [{"role": "user", "content": "one two three four"}], "max_tokens": 50}
    with http.stream("POST", "/ui/playground/stream", json=body, headers={"x-csrf-token": token}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        events = [json.loads(line) for line in r.iter_lines() if line]
    assert events[0]["type"] == "start" and events[-1]["type"] == "done"
    assert "".join(e["text"] for e in events if e["type"] == "text") == "one two three four"
    assert events[-1]["cost"] > 0 and events[-1]["trace_id"] == events[0]["trace_id"]
    assert "priced" in http.get(f"/ui/traces/trace/{events[0]['trace_id']}").text
    limited = create_key(live, name="echo-only", allowed_models=["fake/echo"])
    refused = http.post("/ui/playground/stream", headers={"x-csrf-token": token},
                        json={**body, "key": limited["key"]})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"
    wrong = http.post("/ui/playground/stream", headers={"x-csrf-token": token}, json={**body, "key": "sk-clv-nope"})
    assert wrong.status_code == 401 and "sk-clv-nope" not in wrong.text
    attached = {"model": "fake/echo", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "see file"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}
    with http.stream("POST", "/ui/playground/stream", json=attached, headers={"x-csrf-token": token}) as r:
        assert r.status_code == 200
        assert json.loads(list(r.iter_lines())[-1])["type"] == "done"


def test_the_playground_is_told_why_in_json_when_its_session_ended_or_its_body_is_refused(live: Live) -> None:
    """The Playground's script shows an error's JSON message; the session gate and the body's
    checks answered it with an HTML page, so it read only "HTTP 401" (signed out while the page
    was open) or "HTTP 400" (a max tokens it may not ask for)."""
    http = sign_in(live)
    token = csrf_of(http.get("/ui/playground").text)
    body = {"model": "fake/echo", "messages": [{"role": "user", "content": "hi"}]}
    refused = http.post("/ui/playground/stream", headers={"x-csrf-token": token}, json={**body, "max_tokens": -5})
    assert refused.status_code == 400 and "max_tokens" in refused.json()["error"]["message"]
    forged = http.post("/ui/playground/stream", headers={"x-csrf-token": "forged"}, json=body)
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf_failed"
    assert http.post("/ui/logout", data={"csrf": token}).status_code == 303
    ended = http.post("/ui/playground/stream", headers={"x-csrf-token": token}, json=body)
    assert ended.status_code == 401 and ended.json()["error"]["code"] == "signed_out"
    assert "sign in again" in ended.json()["error"]["message"]
    form = http.post("/ui/keys", data={"csrf": token, "name": "x"})   # a form still gets the page
    assert form.status_code == 401 and form.headers["content-type"].startswith("text/html")


def test_a_traces_list_filtered_by_project_or_provider_shows_that_filter(live: Live) -> None:
    """The Overview's "By provider" rows and the Keys page's projects link to the calls they
    count; those two filters were hidden fields, so the list looked unfiltered."""
    http = sign_in(live)
    page = http.get("/ui/traces", params={"provider": "fake", "project": "web <b>"}).text
    assert '<label for="f-provider">Provider</label><input id="f-provider" name="provider" value="fake">' in page
    assert 'name="project" value="web &lt;b&gt;">' in page and '<label for="f-project">Project</label>' in page
    assert 'name="provider"' not in http.get("/ui/traces").text   # no empty field for an unset filter


def test_no_dashboard_query_reads_a_whole_table(live: Live) -> None:
    """Every query the pages send to the call tables is served by an index (SQLite's plan
    never says a bare ``SCAN calls``), so page time does not grow with the store."""
    seed_history(live.state.backend.store, 200, seed=3)
    engine = live.state.backend.store.engine
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and not executemany:
            seen.append((statement, parameters))

    http = sign_in(live)
    call_id = re.search(r'href="/ui/traces/call/([^"]+)"', http.get("/ui/traces").text).group(1)  # type: ignore[union-attr]
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        for path in [*PAGES, "/ui/traces?key=key_3f9a1c2be07d4a11&status=ok", "/ui/traces?model=openai/gpt-4o&hours=24",
                     "/ui/traces?model=openai:gpt-4o&status=ok",
                     "/ui/traces?route=chat", "/ui/traces?trace=tr_x", f"/ui/traces/call/{call_id}",
                     "/ui/traces/trace/tr_x", "/ui/spend?period=quarter"]:
            assert http.get(path).status_code in (200, 404), path
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    checked = 0
    with engine.connect() as conn:
        for statement, parameters in seen:
            if not re.search(r"\bFROM (calls|call_rollups|attempts)\b", statement):
                continue
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            details = [row[-1] for row in plan]
            assert not any(re.fullmatch(r"SCAN (calls|call_rollups|attempts)", d) for d in details), (statement, details)
            checked += 1
    assert checked >= 20


def test_call_detail_redacts_anything_shaped_like_a_secret(live: Live) -> None:
    from cloverleaf.gateway.store import AttemptRecord, CallRecord

    store = live.state.backend.store
    store.record_call(CallRecord(
        id="call_leaky", created_at=time.time(), operation="chat", requested_model="smart", status="error",
        error_type="AuthenticationError", error_message="Incorrect API key provided: sk-live-abcdef0123456789",
        metadata={"note": "Bearer abcdefghijklmnop"},
        attempts=[AttemptRecord("openai/gpt-4o", "openai", False, "AuthenticationError",
                                "key=sk-proj-0123456789abcdef rejected", 401, 12.0)]))
    store.flush()
    page = sign_in(live).get("/ui/traces/call/call_leaky").text
    assert "AuthenticationError" in page and "&lt;redacted&gt;" in page
    for secret in ("sk-live-abcdef0123456789", "abcdefghijklmnop", "sk-proj-0123456789abcdef"):
        assert secret not in page


def _wait_until_done_with_every_connection(live: Live) -> None:
    """Until the server has closed every connection and finished every request task: whatever it
    logs about a hang-up is logged by then (a fixed 0.5 s wait could end before that on a loaded
    machine, and the check after it saw nothing either way). The deadline is a safety net."""
    state = live.server.server_state
    deadline = time.monotonic() + PATIENCE
    while state.connections or state.tasks:
        assert time.monotonic() < deadline, "the server still holds the hung-up connection"
        time.sleep(0.01)


def test_the_sign_in_form_has_a_body_deadline_and_a_hang_up_is_no_incident(caplog: pytest.LogCaptureFixture) -> None:
    """POST /ui/login is open to anyone: a form whose body never came held its connection for
    ever, and a client that hung up mid-form was logged as an unexpected error (a 500)."""
    import socket

    from cloverleaf.server.options import ServerOptions

    s = settings(env={"CLOVERLEAF_MASTER_KEY": MASTER})
    server = start_live(s, ServerOptions.from_settings({"body_timeout_seconds": 0.5}, s.env))
    host, port = server.url.removeprefix("http://").split(":")
    head = (b"POST /ui/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 100\r\n\r\nkey=")
    try:
        with caplog.at_level("ERROR"), socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head)
            assert sock.recv(65536).startswith(b"HTTP/1.1 408 ")
        with caplog.at_level("ERROR"):
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(head)
            time.sleep(0.1)
            sock.close()   # hangs up mid-form
            _wait_until_done_with_every_connection(server)
        assert not [r for r in caplog.records if "incident" in r.getMessage()]
    finally:
        stop_live(server)
