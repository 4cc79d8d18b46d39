"""A virtual key's project, live: every call made with the key runs as that project.

On the server nothing set a call's project: a ``[budgets.X] scope = "project"`` budget, and
spend by project, applied only to SDK callers passing ``project=``, never to HTTP traffic, and
silently. A key now carries its project (admin API, CLI, dashboard); its calls draw on the
project's budgets together with every other key of the project, their records carry it, and
the ``x-cloverleaf-project`` header names a project only for callers bound to none (the master
key, open mode) — a key with a project can never run as another, and one without may not pick one."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import openai
import pytest

from .conftest import MASTER, Live, create_key, settings, start_live, stop_live

HELLO = [{"role": "user", "content": "hello"}]
#: "priced" costs $1 per 1k tokens: each call reserves a little over $1 (its prompt's bound plus
#: 1,000 output tokens) and costs $1.001 (the scripted usage), so $3.50 holds three such calls
PAID = {"input_tokens": 1, "output_tokens": 1000}
CALL_COST = 1.001


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER},
                                 budgets={"acme": {"limit_usd": 3.5, "scope": "project"}}))
    yield server
    stop_live(server)


def _calls_of(live: Live, key_id: str) -> list[Any]:
    store = live.state.backend.store
    store.flush()
    return [c for c in store.recent_calls(200) if c.key_id == key_id]


def _spend_by_project(live: Live) -> dict[str, dict[str, Any]]:
    with live.http(MASTER) as http:
        answer = http.get("/admin/spend", params={"by": "project"})
    assert answer.status_code == 200, answer.text
    return {row["group"]: row for row in answer.json()["data"]}


def test_a_key_has_a_project_through_the_admin_api(live: Live) -> None:
    made = create_key(live, name="search-bot", project="team-search")
    assert made["project"] == "team-search"
    with live.http(MASTER) as http:
        assert http.get(f"/admin/keys/{made['id']}").json()["project"] == "team-search"
        listed = {k["id"]: k for k in http.get("/admin/keys").json()["data"]}
        assert listed[made["id"]]["project"] == "team-search"
        moved = http.patch(f"/admin/keys/{made['id']}", json={"project": "team-ads"})
        assert moved.status_code == 200 and moved.json()["project"] == "team-ads"
        kept = http.patch(f"/admin/keys/{made['id']}", json={"name": "renamed"})   # not sent: kept
        assert kept.json()["project"] == "team-ads"
        gone = http.patch(f"/admin/keys/{made['id']}", json={"project": None})
        assert gone.status_code == 200 and gone.json()["project"] is None
    assert create_key(live, name="no-project")["project"] is None


@pytest.mark.parametrize("bad", ["", " acme", "acme ", "a|b", "x" * 248, "équipe", "tab\there", 7, ["acme"]])
def test_a_project_that_is_no_project_name_is_a_400_saying_the_rule(live: Live, bad: Any) -> None:
    with live.http(MASTER) as http:
        created = http.post("/admin/keys", json={"name": "bad-project", "project": bad})
        assert created.status_code == 400, created.text
        error = created.json()["error"]
        assert error["param"] == "project"
        assert "printable ASCII" in error["message"] or "expected a string" in error["message"]
        key = create_key(live, name="good")
        patched = http.patch(f"/admin/keys/{key['id']}", json={"project": bad})
        assert patched.status_code == 400 and patched.json()["error"]["param"] == "project"
        assert http.get(f"/admin/keys/{key['id']}").json()["project"] is None


def test_every_call_of_a_key_runs_as_its_project_and_a_change_applies_from_the_next_call(live: Live) -> None:
    key = create_key(live, name="mover", project="team-a")
    client = live.openai(key["key"])
    client.chat.completions.create(model="fake/echo", messages=HELLO)      # type: ignore[arg-type]
    live.anthropic(key["key"]).messages.create(model="fake/echo", max_tokens=5, messages=HELLO)  # type: ignore[arg-type]
    with live.http(MASTER) as http:
        assert http.patch(f"/admin/keys/{key['id']}", json={"project": "team-b"}).status_code == 200
    client.chat.completions.create(model="fake/echo", messages=HELLO)      # type: ignore[arg-type]
    with live.http(MASTER) as http:
        assert http.patch(f"/admin/keys/{key['id']}", json={"project": None}).status_code == 200
    client.chat.completions.create(model="fake/echo", messages=HELLO)      # type: ignore[arg-type]
    assert [c.project for c in reversed(_calls_of(live, key["id"]))] == ["team-a", "team-a", "team-b", None]
    by_project = _spend_by_project(live)
    assert by_project["team-a"]["calls"] >= 2 and by_project["team-b"]["calls"] >= 1


def test_a_project_budget_caps_the_keys_of_the_project(live: Live) -> None:
    """One key of the project spends the budget; another key of it is refused (402, naming the
    project's budget); a key of no project is not."""
    live.fake.script.reply(text="paid", usage=PAID, times=4)
    try:
        first, second = create_key(live, name="acme-1", project="acme"), create_key(live, name="acme-2", project="acme")
        for _ in range(3):
            live.openai(first["key"]).chat.completions.create(model="priced", messages=HELLO,  # type: ignore[arg-type]
                                                               max_tokens=1000)
        with pytest.raises(openai.APIStatusError) as refused:
            live.openai(second["key"]).chat.completions.create(model="priced", messages=HELLO,  # type: ignore[arg-type]
                                                                max_tokens=1000)
        assert refused.value.status_code == 402
        body: Any = refused.value.body
        assert body["code"] == "budget_exceeded" and body["scope"] == "project:acme"
        outsider = create_key(live, name="outsider")
        assert live.openai(outsider["key"]).chat.completions.create(  # type: ignore[arg-type]
            model="priced", messages=HELLO, max_tokens=1000).choices
    finally:
        live.fake.script.clear()
    assert _spend_by_project(live)["acme"]["cost"] == pytest.approx(3 * CALL_COST)


def test_concurrent_calls_of_two_keys_never_overspend_their_project_budget() -> None:
    """Twelve calls at once, six from each of two keys of one project with a $3.50 budget: the
    project's one counter admits three (each reserves over $1), refuses the rest, and the
    project's spend stays under its limit."""
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER},
                                 budgets={"acme": {"limit_usd": 3.5, "scope": "project"}}))
    try:
        keys = [create_key(server, name=f"acme-{n}", project="acme")["key"] for n in range(2)]
        server.fake.script.reply(text="paid", usage=PAID, times=12).latency(0.3)   # all in flight together

        def one(secret: str) -> str:
            try:
                server.openai(secret).chat.completions.create(model="priced", messages=HELLO,  # type: ignore[arg-type]
                                                              max_tokens=1000)
            except openai.APIStatusError as exc:
                body: Any = exc.body
                return f"{exc.status_code} {body['code']} {body.get('scope')}"
            return "paid"

        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(one, keys * 6))
        assert results.count("paid") == 3, results
        assert results.count("402 budget_exceeded project:acme") == 9, results
        store = server.state.backend.store
        store.flush()
        spent, _ = store.budget_usage("project:acme", "total")
        assert spent == pytest.approx(3 * CALL_COST) and spent <= 3.5
        assert _spend_by_project(server)["acme"]["cost"] == pytest.approx(3 * CALL_COST)
    finally:
        stop_live(server)


def test_the_master_key_names_a_project_per_request(live: Live) -> None:
    client = live.openai(MASTER, default_headers={"x-cloverleaf-project": "adhoc"})
    client.chat.completions.create(model="fake/echo", messages=HELLO,  # type: ignore[arg-type]
                                   extra_headers={"x-cloverleaf-trace-id": "tr-adhoc-project"})
    store = live.state.backend.store
    store.flush()
    [call] = [c for c in store.recent_calls(200) if c.trace_id == "tr-adhoc-project"]
    assert call.project == "adhoc" and call.key_id is None
    with pytest.raises(openai.BadRequestError) as malformed:
        live.openai(MASTER).chat.completions.create(model="fake/echo", messages=HELLO,  # type: ignore[arg-type]
                                                    extra_headers={"x-cloverleaf-project": "a|b"})
    assert malformed.value.body["code"] == "invalid_project"  # type: ignore[index]
    assert malformed.value.body["param"] == "x-cloverleaf-project"  # type: ignore[index]


def test_a_key_never_runs_as_a_project_it_was_not_given(live: Live) -> None:
    bound = create_key(live, name="bound", project="team-a")
    same = live.openai(bound["key"], default_headers={"x-cloverleaf-project": "team-a"})
    assert same.chat.completions.create(model="fake/echo", messages=HELLO).choices  # type: ignore[arg-type]
    with pytest.raises(openai.PermissionDeniedError) as other:
        live.openai(bound["key"]).chat.completions.create(model="fake/echo", messages=HELLO,  # type: ignore[arg-type]
                                                          extra_headers={"x-cloverleaf-project": "acme"})
    assert other.value.body["code"] == "project_mismatch"  # type: ignore[index]
    assert "'team-a'" in other.value.body["message"]  # type: ignore[index]
    with pytest.raises(anthropic.PermissionDeniedError) as on_messages:
        live.anthropic(bound["key"]).messages.create(model="fake/echo", max_tokens=5,  # type: ignore[arg-type]
                                                     messages=HELLO, extra_headers={"x-cloverleaf-project": "acme"})
    assert on_messages.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    unbound = create_key(live, name="unbound")
    with pytest.raises(openai.PermissionDeniedError) as chooser:
        live.openai(unbound["key"]).chat.completions.create(model="fake/echo", messages=HELLO,  # type: ignore[arg-type]
                                                            extra_headers={"x-cloverleaf-project": "acme"})
    assert chooser.value.body["code"] == "project_not_allowed"  # type: ignore[index]
    assert [c.project for c in _calls_of(live, bound["id"])] == ["team-a"]   # the refused ones never ran
    assert _calls_of(live, unbound["id"]) == []


def test_open_mode_names_a_project_per_request(open_server: Live) -> None:
    client = open_server.openai(default_headers={"x-cloverleaf-project": "local-dev"})
    client.chat.completions.create(model="fake/echo", messages=HELLO,  # type: ignore[arg-type]
                                   extra_headers={"x-cloverleaf-trace-id": "tr-open-project"})
    store = open_server.state.backend.store
    store.flush()
    assert [c.project for c in store.recent_calls(200) if c.trace_id == "tr-open-project"] == ["local-dev"]


def test_keys_cli_creates_a_key_in_a_project_and_lists_it(live: Live, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from cloverleaf.cli import main

    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", MASTER)
    assert main(["keys", "--url", live.url, "create", "--name", "cli-acme", "--project", "acme"]) == 0
    assert "in project acme" in capsys.readouterr().out
    assert main(["keys", "--url", live.url, "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "project" in lines[0].split()
    row = next(line.split() for line in lines if " cli-acme " in line)
    assert row[lines[0].split().index("project")] == "acme"
    with pytest.raises(SystemExit, match="400: project: a project name is"):
        main(["keys", "--url", live.url, "create", "--name", "cli-bad", "--project", "a|b"])
