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


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    server = start_live(settings(env={"CLOVERLEAF_MASTER_KEY": MASTER}))
    store = server.state.backend.store
    start = time.time() - KEYS
    for i in range(KEYS):   # one a second: newest first is key 229 down to key 0
        store.create_virtual_key(VirtualKeyRow(id=f"key_bulk_{i:04d}", secret_hash=f"hash-{i}", name=f"bulk {i}",
                                               created_at=start + i))
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
