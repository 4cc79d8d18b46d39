"""Dashboard pages that list stored things show a page of them, not all: an operator with
thousands of keys gets a page that loads, and every key is still reachable by paging."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from cloverleaf.gateway.store import VirtualKeyRow

from .conftest import MASTER, Live, settings, start_live, stop_live
from .ui_support import csrf_of, sign_in

KEYS = 230
LISTED = re.compile(r'<th scope="row"><a href="/ui/traces\?key=(key_[0-9a-z_]+)">')
OLDER = re.compile(r'<a class="btn ghost" rel="next" href="(/ui/keys\?after=[^"]+)">Older')
BUDGET_ROW = re.compile(r'<tr><th scope="row">((?:key|route):[^ <]+)')
OLDER_BUDGETS = re.compile(r'rel="next" href="(/ui/spend\?period=day&amp;keys_after=[^"]+)">Older keys')


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER},
                                 budgets={"smart": {"limit_usd": 10.0, "period": "month"}}))
    store = server.state.backend.store
    start = time.time() - KEYS
    for i in range(KEYS):   # one a second: newest first is key 229 down to key 0; every other has a budget
        store.create_virtual_key(VirtualKeyRow(id=f"key_bulk_{i:04d}", secret_hash=f"hash-{i}", name=f"bulk {i}",
                                               created_at=start + i, budget=1.0 + i if i % 2 == 0 else None,
                                               budget_period="month" if i % 2 == 0 else None))
    yield server
    stop_live(server)


def _pages(http: object, first: str = "/ui/keys") -> list[list[str]]:
    """The key ids of each page, following "Older" from ``first`` to the end."""
    pages, url = [], first
    while url:
        page = http.get(url.replace("&amp;", "&"))  # type: ignore[attr-defined]
        assert page.status_code == 200, page.text
        pages.append(LISTED.findall(page.text))
        older = OLDER.search(page.text)
        url = older.group(1) if older else ""
    return pages


def test_the_keys_page_lists_a_page_of_keys_newest_first_and_pages_through_all(live: Live) -> None:
    """Every key on one page: 2,000 keys made a 1.7 MB page that read every key's spend."""
    http = sign_in(live)
    pages = _pages(http)
    assert [len(p) for p in pages] == [100, 100, 30]
    listed = [key_id for page in pages for key_id in page]
    assert listed == [f"key_bulk_{i:04d}" for i in reversed(range(KEYS))]
    second = http.get(OLDER.search(http.get("/ui/keys").text).group(1))  # type: ignore[union-attr]
    assert 'href="/ui/keys">« Newest</a>' in second.text
    assert "Create a key" in second.text   # the form is on every page


def test_revoking_a_key_on_a_later_page_comes_back_to_that_page(live: Live) -> None:
    http = sign_in(live)
    older = OLDER.search(http.get("/ui/keys").text).group(1)  # type: ignore[union-attr]
    page = http.get(older).text
    victim = LISTED.findall(page)[5]
    cursor = older.split("after=", 1)[1]
    r = http.post(f"/ui/keys/{victim}/revoke", data={"csrf": csrf_of(page), "after": cursor})
    assert r.status_code == 303 and r.headers["location"] == f"/ui/keys?revoked={victim}&after={cursor}"
    back = http.get(r.headers["location"]).text
    assert f"Key {victim} is revoked" in back and victim in LISTED.findall(back)


def test_a_keys_page_cursor_that_is_not_one_is_a_400_saying_where_cursors_come_from(live: Live) -> None:
    r = sign_in(live).get("/ui/keys?after=not-a-cursor")
    assert r.status_code == 400 and "not a cursor of this listing" in r.text


def test_the_spend_page_shows_a_page_of_key_budgets_and_pages_through_all(live: Live) -> None:
    """Every key's budget at once: each is a read of its own (a counter, else a ledger row),
    and 700 budgeted keys made the page take a second."""
    http = sign_in(live)
    first = http.get("/ui/spend?period=day").text
    shown = BUDGET_ROW.findall(first)
    assert shown[0] == "route:smart" and len(shown) == 1 + 100
    second = http.get(OLDER_BUDGETS.search(first).group(1).replace("&amp;", "&"))  # type: ignore[union-attr]
    assert second.status_code == 200 and OLDER_BUDGETS.search(second.text) is None
    assert "Configured and newest keys" in second.text and "route:smart" not in second.text
    live_budgeted = [k.id for k in live.state.backend.store.list_virtual_keys(include_revoked=False, newest_first=True)
                     if k.budget is not None]
    assert [s[4:] for s in shown[1:] + BUDGET_ROW.findall(second.text)] == live_budgeted
    assert http.get("/ui/spend?keys_after=nonsense").status_code == 400


def test_a_spend_page_key_budgets_cursor_that_is_not_one_is_a_400_naming_keys_after(live: Live) -> None:
    """It was refused as the admin API's ``after``: "leave 'after' out for the first page", of an
    address with no ``after`` in it."""
    r = sign_in(live).get("/ui/spend?period=day&keys_after=nonsense")
    assert r.status_code == 400 and "keys_after: not a cursor" in r.text and "leave keys_after out" in r.text
    assert "&#39;after&#39;" not in r.text and "'after'" not in r.text


def test_a_spend_table_cut_at_its_dearest_rows_says_so(live: Live) -> None:
    from cloverleaf.gateway.store import CallRecord

    store = live.state.backend.store
    http = sign_in(live)
    assert "dearest" not in http.get("/ui/spend?period=day").text
    for i in range(51):
        store.record_call(CallRecord(id=f"call_spender_{i}", created_at=time.time() - 60, operation="chat",
                                     requested_model="fake/echo", status="ok", cost=0.01 * (i + 1),
                                     key_id=f"key_spender_{i:02d}"))
    store.flush()
    page = http.get("/ui/spend?period=day").text
    assert page.count("The 50 dearest") == 1 and "/admin/spend?by=key</code> lists every one" in page


def test_the_spend_pages_key_budgets_are_read_from_the_ledger_in_one_read(live: Live) -> None:
    """Key budgets the state backend does not hold were read from the ledger one at a time (a
    connection and its round trips each): the page's 100 took 7 s on PostgreSQL, at every load.
    The rows there are now come in one read; only a missing one is made on its own."""
    import sqlalchemy as sa

    http = sign_in(live)
    assert http.get("/ui/spend?period=day").status_code == 200   # makes the rows the period lacked
    engine = live.state.backend.store.engine
    reads: list[str] = []

    def capture(conn: object, cursor: object, statement: str, *_: object) -> None:
        if re.search(r"\bFROM budgets\b", statement) and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        page = http.get("/ui/spend?period=day")
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    assert page.status_code == 200 and len(BUDGET_ROW.findall(page.text)) == 1 + 100
    assert len(reads) <= 3, len(reads)   # the keys' rows at once, and the configured route budget's own
