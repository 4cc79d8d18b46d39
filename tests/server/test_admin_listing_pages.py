"""The admin listings an operator follows from a spend row to its calls, and pages through, on
both stores (SQLite and PostgreSQL):

- ``/admin/traces?model=M`` lists every call ``/admin/spend?by=model`` counts in M's row, by
  whatever name it was answered (``fake/echo``, ``fake:echo``, the entry ``priced``); it
  matched only the name given, and the operator could not list the calls of a row. The
  dashboard's Overview "By model" rows, and the Traces page they link to, agree with it.
- ``/admin/keys`` and ``/admin/traces`` answer a page at a time, with a ``next`` cursor to
  continue from: stable (oldest keys first, newest calls first) and bounded, never cut silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.stores import STORE_KINDS, store_url

from .conftest import MASTER, Live, settings, start_live, stop_live
from .ui_support import sign_in

HELLO = [{"role": "user", "content": "hello"}]
#: one model, fake/echo, by three names: the id, its colon spelling, and the entry "priced"
ECHO_NAMES = ("priced", "fake:echo", "fake/echo", "priced", "fake:echo")


@pytest.fixture(scope="module", params=STORE_KINDS)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with store_url(request.param, tmp_path_factory.mktemp("pages")) as url:
        server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}, store={"url": url}))
        try:
            client = server.openai(MASTER)
            for name in ECHO_NAMES:
                client.chat.completions.create(model=name, messages=HELLO, max_tokens=5)
            client.chat.completions.create(model="fake/other", messages=HELLO, max_tokens=5)
            yield server
        finally:
            stop_live(server)


def _pages(http: httpx.Client, path: str, params: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Every page of a listing, following ``next`` to the end."""
    pages, after = [], None
    while True:
        r = http.get(path, params={**params, **({"after": after} if after else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body["data"])
        after = body["next"]
        if after is None:
            return pages
        assert len(pages) < 50, "the cursor never ended"


def test_traces_by_model_list_every_call_its_spend_row_counts(live: Live) -> None:
    with live.http(MASTER) as http:
        spend = {r["group"]: r["calls"] for r in http.get("/admin/spend", params={"by": "model"}).json()["data"]}
        assert spend["fake/echo"] == len(ECHO_NAMES)
        for name in ("fake/echo", "fake:echo"):   # the row's name, or another of the model's names
            calls = http.get("/admin/traces", params={"model": name}).json()["data"]
            assert len(calls) == spend["fake/echo"], (name, [(c["requested_model"], c["target"]) for c in calls])
            assert {c["requested_model"] for c in calls} == {"priced", "fake:echo", "fake/echo"}
        other = http.get("/admin/traces", params={"model": "fake/other"}).json()["data"]
        assert [c["target"] for c in other] == ["fake/other"]


def test_traces_page_through_every_call_newest_first(live: Live) -> None:
    with live.http(MASTER) as http:
        whole = http.get("/admin/traces").json()
        assert whole["next"] is None and len(whole["data"]) == len(ECHO_NAMES) + 1
        pages = _pages(http, "/admin/traces", {"limit": 2})
        assert [len(p) for p in pages] == [2, 2, 2]
        assert [c["id"] for p in pages for c in p] == [c["id"] for c in whole["data"]]
        by_model = _pages(http, "/admin/traces", {"limit": 2, "model": "fake/echo"})
        assert sorted(c["id"] for p in by_model for c in p) == sorted(
            c["id"] for c in whole["data"] if c["target"] != "fake/other")
        for bad in ("x", "1.5", "nan~call_1", ""):
            r = http.get("/admin/traces", params={"after": bad})
            assert r.status_code == 400 and r.json()["error"]["param"] == "after", (bad, r.text)
            assert "'next' of the previous page" in r.json()["error"]["message"]
        assert http.get("/admin/traces", params={"limit": 1001}).status_code == 400


def test_keys_page_through_every_key_oldest_first(live: Live) -> None:
    with live.http(MASTER) as http:
        made = [http.post("/admin/keys", json={"name": f"paged-{i}"}).json()["id"] for i in range(5)]
        assert http.delete(f"/admin/keys/{made[1]}").status_code == 200
        whole = http.get("/admin/keys").json()
        assert whole["next"] is None
        ids = [k["id"] for k in whole["data"]]
        assert ids[-5:] == made
        pages = _pages(http, "/admin/keys", {"limit": 2})
        assert [k["id"] for p in pages for k in p] == ids and all(len(p) <= 2 for p in pages)
        live_keys = _pages(http, "/admin/keys", {"limit": 2, "include_revoked": "false"})
        assert [k["id"] for p in live_keys for k in p] == [i for i in ids if i != made[1]]
        for params in ({"limit": "0"}, {"limit": "5001"}, {"after": "key_x"}):
            r = http.get("/admin/keys", params=params)
            assert r.status_code == 400 and r.json()["error"]["param"] == next(iter(params)), r.text


def test_the_dashboard_model_rows_link_to_the_calls_they_count(live: Live) -> None:
    """Overview's "By model" showed a row per name the model was answered by; merged like
    ``/admin/spend?by=model``, its fake/echo row counts all five calls, and its link lists them."""
    http = sign_in(live)
    page = http.get("/ui").text
    links = dict(re.findall(r'<a href="(/ui/traces\?model=[^"]+)">([^<]+)</a>', page))
    link = next(href for href, label in links.items() if label == "fake/echo")
    assert not any(label in ("fake:echo", "priced") for label in links.values()), links
    listed = http.get(link.replace("&amp;", "&")).text
    assert len(re.findall(r'href="/ui/traces/call/', listed)) == len(ECHO_NAMES)
    assert len(re.findall(r'href="/ui/traces/call/', http.get("/ui/traces?model=fake:echo").text)) == len(ECHO_NAMES)


def test_the_calls_stay_listed_in_order_while_new_ones_arrive(live: Live) -> None:
    """A cursor names the last call seen, not a position: calls answered between two pages do
    not shift the next page (OFFSET would repeat a call)."""
    with live.http(MASTER) as http:
        first = http.get("/admin/traces", params={"limit": 3}).json()
        live.openai(MASTER).chat.completions.create(model="fake/echo", messages=HELLO, max_tokens=5)
        rest = _pages(http, "/admin/traces", {"limit": 3, "after": first["next"]})
        later = [c["id"] for p in rest for c in p]
        assert not set(later) & {c["id"] for c in first["data"]}
        assert len(first["data"]) + len(later) == len(http.get("/admin/traces").json()["data"]) - 1


def test_keys_list_follows_the_pages_to_the_last_key(live: Live, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A page holds 1,000 keys by default: ``cloverleaf keys list`` goes on from page to page,
    so a gateway with more lists them all, as it did before pages."""
    from cloverleaf.cli import main
    from cloverleaf.gateway.store import VirtualKeyRow

    store = live.state.backend.store
    for i in range(1_005):
        store.create_virtual_key(VirtualKeyRow(id=f"key_bulk{i:05d}", secret_hash=f"hash-bulk-{i}",
                                               name=f"bulk-{i}", created_at=1_000_000.0 + i))
    with live.http(MASTER) as http:
        first = http.get("/admin/keys").json()
        assert len(first["data"]) == 1_000 and first["next"], "the default page is 1,000 keys"
        every = [k["id"] for p in _pages(http, "/admin/keys", {}) for k in p]
    monkeypatch.setenv("CLOVERLEAF_MASTER_KEY", MASTER)
    assert main(["keys", "--url", live.url, "list"]) == 0
    shown = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("key_")]
    assert shown == every and "key_bulk01004" in shown
