"""Auth, virtual keys and the admin API, live: master key, per-key models, rpm, budget,
revocation, expiry, write-only provider keys encrypted at rest."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from cloverleaf.server.secrets import SecretBox, hash_key

from .conftest import MASTER, Live, create_key, settings, start_live, stop_live

HELLO = [{"role": "user", "content": "hello"}]


def test_missing_and_wrong_keys_are_401(secured_server: Live) -> None:
    with secured_server.http() as http:
        r = http.post("/v1/chat/completions", json={"model": "fake/echo", "messages": HELLO})
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    assert "x-cloverleaf-overhead-ms" in r.headers
    with pytest.raises(openai.AuthenticationError):
        secured_server.openai("sk-clv-not-a-real-key").chat.completions.create(model="fake/echo", messages=HELLO)
    with pytest.raises(anthropic.AuthenticationError) as info:
        secured_server.anthropic("wrong").messages.create(model="fake/echo", max_tokens=5, messages=HELLO)
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


def test_master_key_works_on_both_apis(secured_server: Live) -> None:
    out = secured_server.openai(MASTER).chat.completions.create(model="fake/echo", messages=HELLO)
    assert out.choices[0].message.content == "hello"
    msg = secured_server.anthropic(MASTER).messages.create(model="fake/echo", max_tokens=5, messages=HELLO)
    assert msg.content[0].text == "hello"  # type: ignore[union-attr]


def test_virtual_key_lifecycle(secured_server: Live) -> None:
    created = create_key(secured_server, name="ci", allowed_models=["fake/*", "priced"])
    secret = created["key"]
    assert secret.startswith("sk-clv-") and created["allowed_models"] == ["fake/*", "priced"]
    # the secret exists only in that answer: the store holds its hash, reads never show it
    row = secured_server.state.backend.store.get_virtual_key(created["id"])
    assert row.secret_hash == hash_key(secret) and secret not in repr(row)
    with secured_server.http(MASTER) as http:
        shown = http.get(f"/admin/keys/{created['id']}").json()
        listed = http.get("/admin/keys").text
    assert "key" not in shown and secret not in listed and "secret_hash" not in listed

    # bearer (OpenAI) and x-api-key (Anthropic) both work
    assert secured_server.openai(secret).chat.completions.create(
        model="fake/echo", messages=HELLO).choices[0].message.content == "hello"
    assert secured_server.anthropic(secret).messages.create(
        model="fake/echo", max_tokens=5, messages=HELLO).content[0].text == "hello"  # type: ignore[union-attr]

    # a model outside the key's list is 403, even one that does not exist
    for model in ("simple/default", "no-such-model"):
        with pytest.raises(openai.PermissionDeniedError) as denied:
            secured_server.openai(secret).chat.completions.create(model=model, messages=HELLO)
        assert denied.value.body["code"] == "model_not_allowed"  # type: ignore[index]
    ids = [m.id for m in secured_server.openai(secret).models.list()]
    assert "priced" in ids and all(i == "priced" or i.startswith("fake/") for i in ids)

    # virtual keys cannot use the admin API
    with secured_server.http(secret) as http:
        assert http.get("/admin/keys").status_code == 401

    # revoke: refused at once
    with secured_server.http(MASTER) as http:
        revoked = http.post(f"/admin/keys/{created['id']}/revoke").json()
    assert revoked["revoked"] is True
    with pytest.raises(openai.AuthenticationError) as gone:
        secured_server.openai(secret).chat.completions.create(model="fake/echo", messages=HELLO)
    assert gone.value.body["code"] == "key_revoked"  # type: ignore[index]


def test_expired_key_is_401(secured_server: Live) -> None:
    created = create_key(secured_server, name="short-lived", expires_in_days=1)
    with secured_server.http(MASTER) as http:   # a key is born live; an update may expire it now
        r = http.patch(f"/admin/keys/{created['id']}", json={"expires_at": time.time() - 1})
        assert r.status_code == 200, r.text
    with pytest.raises(openai.AuthenticationError) as info:
        secured_server.openai(created["key"]).chat.completions.create(model="fake/echo", messages=HELLO)
    assert info.value.body["code"] == "key_expired"  # type: ignore[index]


def test_a_key_that_would_expire_at_once_is_refused(secured_server: Live) -> None:
    """``expires_in_days: 0`` made a key that had already expired; it is a mistake to say so about."""
    with secured_server.http(MASTER) as http:
        for field in ("expires_in_days", "expires_in_seconds"):
            answer = http.post("/admin/keys", json={"name": "never-works", field: 0})
            assert answer.status_code == 400, answer.text
            assert "must be above 0" in answer.json()["error"]["message"]
        assert not [k for k in http.get("/admin/keys").json()["data"] if k["name"] == "never-works"]


def test_key_rpm_limit_is_429_with_retry_after(secured_server: Live) -> None:
    secret = create_key(secured_server, name="slow", rpm=2)["key"]
    client = secured_server.openai(secret)
    for _ in range(2):
        client.chat.completions.create(model="fake/echo", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="fake/echo", messages=HELLO)
    assert int(info.value.response.headers["retry-after"]) >= 1
    # the limit is per key: another key is unaffected
    other = create_key(secured_server, name="other")["key"]
    assert secured_server.openai(other).chat.completions.create(model="fake/echo", messages=HELLO).choices


def test_a_request_larger_than_the_keys_tpm_is_refused_whole(secured_server: Live) -> None:
    """One call that alone needs more tokens than the key may use in a minute never runs (it
    would put more than the limit in that minute), and the 429 invites no retry."""
    secret = create_key(secured_server, name="tiny", tpm=50)["key"]
    client = secured_server.openai(secret).with_options(max_retries=2)
    sent: list[httpx.Request] = []
    client._client.event_hooks["request"].append(sent.append)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="fake/echo", messages=[{"role": "user", "content": "x" * 4000}],
                                       max_tokens=500)
    assert info.value.body["code"] == "request_too_large"  # type: ignore[index]
    assert "retry-after" not in info.value.response.headers
    assert len(sent) == 1                                  # x-should-retry: false, so the SDK does not retry it
    assert client.chat.completions.create(model="fake/echo", messages=HELLO, max_tokens=5).choices   # a small one fits


def test_key_budget_is_402(secured_server: Live) -> None:
    # "priced" costs $1 per 1k tokens: the call's worst case cannot fit in a $0.50 budget
    poor = create_key(secured_server, name="poor", budget=0.5)["key"]
    with pytest.raises(openai.APIStatusError) as info:
        secured_server.openai(poor).chat.completions.create(model="priced", messages=HELLO, max_tokens=1000)
    assert info.value.status_code == 402 and info.value.body["code"] == "budget_exceeded"  # type: ignore[index]
    with pytest.raises(anthropic.APIStatusError) as a_info:
        secured_server.anthropic(poor).messages.create(model="priced", max_tokens=1000, messages=HELLO)
    assert a_info.value.status_code == 402
    assert a_info.value.body["error"]["type"] == "billing_error"  # type: ignore[index]

    rich = create_key(secured_server, name="rich", budget=100.0)
    out = secured_server.openai(rich["key"]).chat.completions.create(model="priced", messages=HELLO, max_tokens=10)
    assert out.choices[0].message.content == "hello"
    secured_server.state.backend.store.flush()
    with secured_server.http(MASTER) as http:
        shown = http.get(f"/admin/keys/{rich['id']}").json()
    assert shown["spent"] > 0


def test_model_entry_api_key_is_write_only_and_encrypted(secured_server: Live) -> None:
    provider_key = "sk-provider-secret-1234567890"
    with secured_server.http(MASTER) as http:
        r = http.post("/admin/models", json={"name": "team-echo", "identifier": "echo", "provider": "fake",
                                             "api_key": provider_key, "input_cost_per_1k": 0.5,
                                             "output_cost_per_1k": 1.5})
        assert r.status_code == 201, r.text
        assert r.json()["has_api_key"] is True and provider_key not in r.text
        assert http.post("/admin/models", json={"name": "team-echo", "identifier": "echo",
                                                "provider": "fake"}).status_code == 409
        listed = http.get("/admin/models").text
        one = http.get("/admin/models/team-echo").text
        assert provider_key not in listed and provider_key not in one
        bad = http.post("/admin/models", json={"name": "x", "identifier": "y", "provider": "no-such-provider"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "provider"
        for write in (lambda: http.post("/admin/models", json={"name": "priced", "identifier": "echo",
                                                                "provider": "fake", "input_cost_per_1k": 0.0}),
                      lambda: http.put("/admin/models/priced", json={"identifier": "echo", "provider": "fake"})):
            shadow = write()     # "priced" is a [[models]] entry of the configuration: not replaceable here
            assert shadow.status_code == 409 and shadow.json()["error"]["code"] == "config_entry_read_only"
        assert http.get("/admin/models/priced").json()["source"] == "config"
    stored = secured_server.state.backend.store.get_model_entry("team-echo").api_key_encrypted
    assert stored and provider_key not in stored
    assert SecretBox(MASTER).decrypt(stored) == provider_key
    # the new entry serves at once, with its price
    out = secured_server.openai(MASTER).chat.completions.create(model="team-echo", messages=HELLO)
    assert out.choices[0].message.content == "hello"
    with secured_server.http(MASTER) as http:
        patched = http.patch("/admin/models/team-echo", json={"output_cost_per_1k": 2.0}).json()
        assert patched["output_cost_per_1k"] == 2.0 and patched["has_api_key"] is True
        assert http.delete("/admin/models/team-echo").status_code == 200
    with pytest.raises(openai.NotFoundError):
        secured_server.openai(MASTER).chat.completions.create(model="team-echo", messages=HELLO)


def test_credentials_inside_an_entrys_fields_are_shown_masked_and_kept_on_a_round_trip(secured_server: Live) -> None:
    """A password in base_url, a key in its query and Bedrock's secret in additional_config were
    answered in clear by GET /admin/models; a GET-then-PUT (or the dashboard's edit form) sends the
    masks back, which must keep the stored secrets."""
    url = "https://svc:TeamPassw0rdXYZ@127.0.0.1:9/v1?key=QUERYSECRET42&region=eu"
    config = {"region": "us-east-1", "aws_access_key_id": "AKIDEXAMPLE",
              "aws_secret_access_key": "AWSSECRET1234567", "aws_session_token": "SESSIONTOKEN987"}
    with secured_server.http(MASTER) as http:
        assert http.post("/admin/models", json={"name": "via-proxy", "identifier": "gpt-4o", "provider": "openai",
                                                "base_url": url}).status_code == 201
        made = http.post("/admin/models", json={"name": "team-bedrock", "identifier": "amazon.nova-micro-v1:0",
                                                "provider": "bedrock", "additional_config": config})
        assert made.status_code == 201, made.text
        listed = http.get("/admin/models").text
        for secret in ("TeamPassw0rdXYZ", "QUERYSECRET42", "AWSSECRET1234567", "SESSIONTOKEN987"):
            assert secret not in listed
        shown = http.get("/admin/models/via-proxy").json()
        assert shown["base_url"] == "https://svc:********@127.0.0.1:9/v1?key=********&region=eu"
        bedrock = http.get("/admin/models/team-bedrock").json()
        assert bedrock["additional_config"] == {**config, "aws_secret_access_key": "********",
                                                "aws_session_token": "********"}
        for view in (shown, bedrock):   # sent back as shown: the stored secrets stay
            body = {k: v for k, v in view.items() if k not in ("has_api_key", "source")}
            assert http.put(f"/admin/models/{view['name']}", json=body).status_code == 200, view
        store = secured_server.state.backend.store
        assert store.get_model_entry("via-proxy").base_url == url
        assert store.get_model_entry("team-bedrock").additional_config == config
        # a new value replaces the secret as usual
        http.patch("/admin/models/team-bedrock", json={"additional_config": {**config, "aws_secret_access_key": "NEW"}})
        assert store.get_model_entry("team-bedrock").additional_config["aws_secret_access_key"] == "NEW"
        for name in ("via-proxy", "team-bedrock"):
            http.delete(f"/admin/models/{name}")


def test_every_credential_named_query_parameter_of_a_base_url_is_masked(secured_server: Live) -> None:
    """Only ``key``, ``token`` and a few other exact names were masked: ``?api-key=`` (Azure's and
    many proxies' spelling, and one the gateway's own error redaction treats as secret),
    ``x-api-key``, ``password`` or ``X-Amz-Signature`` were answered in clear by GET
    /admin/models and on the dashboard's Models page."""
    from .ui_support import forms_of, sign_in

    url = ("https://tok3n-USERSECRET@127.0.0.1:9/openai/v1?api-version=2024-10-21&api-key=AZSECRET1"
           "&x-api-key=XSECRET2&password=PWSECRET3&X-Amz-Signature=SIGSECRET4&code=FNSECRET5&region=eu")
    secrets = ("USERSECRET", "AZSECRET1", "XSECRET2", "PWSECRET3", "SIGSECRET4", "FNSECRET5")
    with secured_server.http(MASTER) as http:
        made = http.post("/admin/models", json={"name": "azure-ish", "identifier": "gpt-4o", "provider": "openai",
                                                "base_url": url})
        assert made.status_code == 201, made.text
        ui = sign_in(secured_server)
        shown_on = {"POST": made.text, "GET": http.get("/admin/models/azure-ish").text,
                    "list": http.get("/admin/models").text, "Models page": ui.get("/ui/models").text,
                    "edit form": ui.get("/ui/models", params={"edit": "azure-ish"}).text}
        for where, text in shown_on.items():
            assert not [s for s in secrets if s in text], where
        shown = made.json()["base_url"]
        assert shown == ("https://********@127.0.0.1:9/openai/v1?api-version=2024-10-21&api-key=********"
                         "&x-api-key=********&password=********&X-Amz-Signature=********&code=********&region=eu")
        # the dashboard's edit form, saved as the page wrote it, keeps every secret
        action, fields = forms_of(shown_on["edit form"])["Save changes"]
        assert fields["base_url"] == shown
        saved = ui.post(action, data={**fields, "provider": "openai", "is_public": "on"})
        assert saved.status_code == 303, saved.text[-500:]
        assert secured_server.state.backend.store.get_model_entry("azure-ish").base_url == url
        http.delete("/admin/models/azure-ish")


def test_a_masked_base_url_sent_back_keeps_its_secrets_only_where_they_were_going(secured_server: Live) -> None:
    """Sent back as shown (GET then PUT, the dashboard's edit form), a base_url keeps the stored
    secrets, for every credential name; edited elsewhere it keeps each one still masked, unless it
    now points at another host, which must not receive a secret its editor could not read."""
    url = "https://svc:PW-SECRET@127.0.0.1:9/v1?api-version=1&api-key=AZ-SECRET&sig=SIG-SECRET"
    store = secured_server.state.backend.store
    with secured_server.http(MASTER) as http:
        view = http.post("/admin/models", json={"name": "round-trip", "identifier": "gpt-4o", "provider": "openai",
                                                "base_url": url}).json()
        body = {k: v for k, v in view.items() if k not in ("has_api_key", "source")}
        assert http.put("/admin/models/round-trip", json=body).status_code == 200
        assert store.get_model_entry("round-trip").base_url == url
        moved = view["base_url"].replace("/v1?api-version=1", "/v2?api-version=2")
        assert http.patch("/admin/models/round-trip", json={"base_url": moved}).status_code == 200
        assert store.get_model_entry("round-trip").base_url == \
            "https://svc:PW-SECRET@127.0.0.1:9/v2?api-version=2&api-key=AZ-SECRET&sig=SIG-SECRET"
        elsewhere = view["base_url"].replace("127.0.0.1:9", "127.0.0.1:10")
        assert http.patch("/admin/models/round-trip", json={"base_url": elsewhere}).status_code == 200
        stored = store.get_model_entry("round-trip").base_url
        assert stored == elsewhere and "SECRET" not in stored
        http.delete("/admin/models/round-trip")


def test_traces_spend_and_breakers(secured_server: Live) -> None:
    client = secured_server.openai(MASTER)
    client.chat.completions.create(model="fake/echo", messages=HELLO,
                                   extra_headers={"x-cloverleaf-trace-id": "trace-admin-test"})
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="fake/fail-500", messages=HELLO)
    secured_server.state.backend.store.flush()
    with secured_server.http(MASTER) as http:
        calls = http.get("/admin/traces", params={"limit": 50}).json()["data"]
        assert any(c["requested_model"] == "fake/echo" and c["status"] == "ok" for c in calls)
        failed = [c for c in calls if c["requested_model"] == "fake/fail-500"]
        assert failed and failed[0]["status"] == "error" and failed[0]["attempts"]
        mine = http.get("/admin/traces", params={"trace_id": "trace-admin-test"}).json()["data"]
        assert [c["requested_model"] for c in mine] == ["fake/echo"]
        spend = http.get("/admin/spend", params={"by": "model"}).json()
        assert spend["by"] == "model" and any(row["calls"] >= 1 for row in spend["data"])
        assert http.get("/admin/spend", params={"by": "colour"}).status_code == 400
        listed = http.get("/admin/breakers").json()
        breakers = listed["data"]
        assert breakers["fake/fail-500"]["consecutive_failures"] >= 1
        assert listed["total"] == len(breakers) >= 2 and listed["omitted"] == 0
        assert list(breakers)[0] == "fake/fail-500"      # the failing one first
        one = http.get("/admin/breakers", params={"limit": 1}).json()
        assert list(one["data"]) == ["fake/fail-500"] and one["omitted"] == listed["total"] - 1
        closed = http.get("/admin/breakers", params={"state": "closed"}).json()["data"]
        assert closed and all(b["state"] == "closed" for b in closed.values())
        for bad in ({"limit": 0}, {"limit": "ten"}, {"state": "broken"}):
            answer = http.get("/admin/breakers", params=bad)
            assert answer.status_code == 400 and answer.json()["error"]["param"] in bad
        # a limit of digits int() refuses (5,000 of them, or a superscript) was a 500 on every list
        for path in ("/admin/breakers", "/admin/traces", "/v1/models", "/v1/responses/resp_x/input_items"):
            for limit in ("9" * 5000, "\u00b2"):
                headers = {"anthropic-version": "2023-06-01"} if path == "/v1/models" else {}
                answer = http.get(path, params={"limit": limit}, headers=headers)
                assert answer.status_code in (400, 404), (path, answer.status_code, answer.text[:200])


def test_trace_ids_with_a_slash_are_read_and_completed(secured_server: Live) -> None:
    """Accepted as x-cloverleaf-trace-id and by POST /admin/traces, so readable at their URL."""
    with secured_server.http(MASTER) as http:
        assert http.post("/admin/traces", json={"id": "team/run-1", "metadata": {"job": "nightly"}}).status_code == 201
        answered = http.post("/v1/chat/completions", json={"model": "fake/echo", "messages": HELLO},
                             headers={"x-cloverleaf-trace-id": "team/run-1"})
        assert answered.status_code == 200
        listed = http.get("/admin/traces", params={"trace_id": "team/run-1"}).json()["data"]
        assert [c["requested_model"] for c in listed] == ["fake/echo"]      # no flush needed to see it
        got = http.get("/admin/traces/team/run-1")
        assert got.status_code == 200 and got.json()["metadata"] == {"job": "nightly"}
        assert len(got.json()["calls"]) == 1
        done = http.post("/admin/traces/team/run-1/complete")
        assert done.status_code == 200 and done.json()["completed_at"] is not None
        assert http.get("/admin/traces/team%2Frun-1").json()["id"] == "team/run-1"
        action = http.get("/admin/traces/team/run-1/complete")      # the action's URL is only ever the action
        assert action.status_code == 405 and action.headers["allow"] == "POST"


def test_admin_is_off_without_master_key(open_server: Live) -> None:
    with open_server.http("anything") as http:
        r = http.get("/admin/keys")
    assert r.status_code == 404
    assert "CLOVERLEAF_MASTER_KEY" in r.json()["error"]["message"]


def test_hanging_up_mid_stream_settles_the_keys_budget_and_limits(tmp_path: Path) -> None:
    """The reservation taken for the stream is settled when the client leaves (charged, as
    output had reached it), its rate-limit tickets are settled even when that means waiting
    on the state backend (Redis does; here a settle that yields to the loop stands in), and
    the call is recorded as cancelled. (A store in a file: the test reads it while the
    server writes, which one shared in-memory connection cannot take.)"""
    s = settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, store={"url": f"sqlite:///{tmp_path / 'keys.db'}"})
    live = start_live(s)
    limiter = live.state.backend.gateway.limiter
    settle, started, settled = limiter.settle, [], []

    async def networked_settle(*args: object, **kwargs: object) -> None:
        started.append(args)
        await asyncio.sleep(0.01)  # a round trip to the state backend
        await settle(*args, **kwargs)
        settled.append(args)

    limiter.settle = networked_settle
    try:
        key = create_key(live, name="quitter", budget=100.0, rpm=1000)
        body = {"model": "priced", "stream": True, "max_tokens": 1000,
                "messages": [{"role": "user", "content": " ".join(f"w{i}" for i in range(60))}]}
        live.fake.script.chunk_delay(0.2)
        with live.http(key["key"]) as http, http.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            next(r.iter_raw())
        store = live.state.backend.store
        deadline = time.monotonic() + 10
        while True:
            store.flush()
            spent, reserved = store.budget_usage(f"key:{key['id']}", "total")
            calls = [c for c in store.recent_calls(20, model="priced") if c.key_id == key["id"]]
            if (calls and reserved == 0 and settled == started) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        stop_live(live)
    assert reserved == 0 and spent > 0
    assert [c.status for c in calls] == ["cancelled"] and started and settled == started


def test_model_entry_additional_config_keys_are_checked_as_in_the_toml(secured_server: Live) -> None:
    with secured_server.http(MASTER) as http:
        r = http.post("/admin/models", json={"name": "typo-entry", "identifier": "echo", "provider": "fake",
                                             "additional_config": {"fallback": "openai/gpt-4o"}})
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["param"] == "additional_config" and "fallback" in error["message"] and "allowed" in error["message"]
        assert http.get("/admin/models/typo-entry").status_code == 404     # nothing was stored


def test_keys_cli_shows_times_and_refuses_a_key_that_expires_at_once(secured_server: Live, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from cloverleaf.cli import main

    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", MASTER)
    url = secured_server.url
    assert main(["keys", "--url", url, "create", "--name", "soon", "--expires-in-days", "2"]) == 0
    capsys.readouterr()
    assert main(["keys", "--url", url, "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if " soon " in line)
    assert " UTC" in row and not any(len(word) > 9 and word.replace(".", "").isdigit() for word in row.split())
    with pytest.raises(SystemExit):
        main(["keys", "--url", url, "create", "--name", "never", "--expires-in-days", "0"])
    assert "above 0" in capsys.readouterr().err


def test_keys_cli_revokes_only_a_key_id_and_only_that_key(secured_server: Live, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The id went into the URL unquoted: `keys revoke ../models/victim` sent DELETE
    /admin/models/victim (the dot segment resolved), deleted that model entry and printed
    "revoked key ../models/victim"; `keys revoke 'key_x?y'` revoked key_x."""
    from cloverleaf.cli import main

    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", MASTER)
    url = secured_server.url
    kept = create_key(secured_server, name="kept")
    with secured_server.http(MASTER) as http:
        assert http.post("/admin/models", json={"name": "victim", "provider": "fake", "identifier": "echo"}
                         ).status_code == 201
        for bad in ("../models/victim", f"{kept['id']}?x", f"{kept['id']}/../{kept['id']}", "..", "key_a%2F..",
                    f"{kept['id']}#", "victim"):
            with pytest.raises(SystemExit) as exited:
                main(["keys", "--url", url, "revoke", bad])
            assert exited.value.code == 2 and "is not a key id" in capsys.readouterr().err, bad
        assert http.get("/admin/models/victim").status_code == 200
        assert http.get(f"/admin/keys/{kept['id']}").json()["revoked"] is False
        with pytest.raises(SystemExit, match="404"):
            main(["keys", "--url", url, "revoke", "key_0000000000000000"])
        assert main(["keys", "--url", url, "revoke", kept["id"]]) == 0
        assert capsys.readouterr().out.strip() == f"revoked key {kept['id']}"
        assert http.get(f"/admin/keys/{kept['id']}").json()["revoked"] is True



def test_keys_cli_refuses_a_models_list_that_names_none_and_a_blank_name(secured_server: Live,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`keys create --models ","` (or an unset variable's blank) sent an empty list and made a key
    for every model; `--name ""` made a key nobody could tell apart. Both are usage errors now,
    and no key is made."""
    from cloverleaf.cli import main

    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", MASTER)
    url = secured_server.url
    with secured_server.http(MASTER) as http:
        before = http.get("/admin/keys").json()["data"]
        for flags, said in ((["--name", "bot", "--models", ","], "names no model"),
                            (["--name", "bot", "--models", " "], "names no model"),
                            (["--name", "  "], "give the key a name")):
            with pytest.raises(SystemExit) as exited:
                main(["keys", "--url", url, "create", *flags])
            assert exited.value.code == 2 and said in capsys.readouterr().err, flags
        assert http.get("/admin/keys").json()["data"] == before
        assert main(["keys", "--url", url, "create", "--name", "bot", "--models", " fake/*, smart ,"]) == 0
        made = http.get("/admin/keys").json()["data"][-1]
    assert made["name"] == "bot" and made["allowed_models"] == ["fake/*", "smart"]


def test_keys_cli_updates_a_key_and_removes_its_limits(secured_server: Live, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """There was no `keys update`: changing a key's budget or rpm meant hand-writing a PATCH to
    /admin/keys/{id}. It changes only what is given, `none` (and --all-models, --no-project,
    --no-local-only) removes a limit, and bad values are usage errors before anything is sent."""
    from cloverleaf.cli import main

    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", MASTER)
    url = secured_server.url
    key = create_key(secured_server, name="tuned", allowed_models=["fake/*"], budget=5.0, rpm=60)

    def shown() -> dict[str, object]:
        with secured_server.http(MASTER) as http:
            return http.get(f"/admin/keys/{key['id']}").json()  # type: ignore[no-any-return]

    assert main(["keys", "--url", url, "update", key["id"], "--budget", "12.5", "--tpm", "1000", "--local-only",
                 "--name", "tuned-2", "--models", "fake/echo,priced", "--project", "team-a"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"updated key {key['id']} (tuned-2) in project team-a\n")
    assert "budget $12.5" in out and "rpm 60" in out and "tpm 1000" in out and "privacy local-only" in out
    now = shown()
    assert (now["name"], now["allowed_models"], now["budget"], now["rpm"], now["tpm"], now["privacy"],
            now["project"]) == ("tuned-2", ["fake/echo", "priced"], 12.5, 60, 1000, "local-only", "team-a")

    assert main(["keys", "update", key["id"], "--url", url, "--budget", "none", "--rpm", "None", "--all-models",
                 "--no-local-only", "--no-project", "--expires-in-days", "3"]) == 0
    assert "budget none; rpm none" in capsys.readouterr().out
    now = shown()
    assert (now["name"], now["allowed_models"], now["budget"], now["rpm"], now["tpm"], now["privacy"],
            now["project"]) == ("tuned-2", [], None, None, 1000, "any", None)
    assert now["expires_at"] is not None
    assert main(["keys", "--url", url, "update", key["id"], "--expires-in-days", "none"]) == 0
    assert shown()["expires_at"] is None and "expires never" in capsys.readouterr().out

    for flags, said in (([], "nothing to change"), (["--budget", "-1"], "--budget: must be at least 0"),
                        (["--rpm", "0"], "at least 1"), (["--name", " "], "give the key a name"),
                        (["--models", ","], "names no model"), (["--expires-in-days", "0"], "above 0"),
                        (["--project", "p", "--no-project"], "not allowed with")):
        with pytest.raises(SystemExit) as exited:
            main(["keys", "--url", url, "update", key["id"], *flags])
        assert exited.value.code == 2 and said in capsys.readouterr().err, flags
    with pytest.raises(SystemExit, match="404"):
        main(["keys", "--url", url, "update", "key_0000000000000000", "--rpm", "5"])
    with pytest.raises(SystemExit) as exited:
        main(["keys", "--url", url, "update", "../models/x", "--rpm", "5"])
    assert exited.value.code == 2 and "is not a key id" in capsys.readouterr().err
