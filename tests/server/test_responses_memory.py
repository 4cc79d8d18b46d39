"""Stored Responses stay within a memory bound however large their attachments: the cache
counts the bytes of its rows, not only how many there are. Beside a store a large row is not
cached (a later turn reads it from the store); without a store the cache is the only copy, so
a response it let go is a 404 (or, earlier in a chain, a 400) that says why and what to do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloverleaf.gateway.store import Store, open_store
from cloverleaf.server.errors import ApiError
from cloverleaf.server.responses import state
from cloverleaf.server.responses.state import ResponseStore, StoredResponse

KB = 1024
#: an inline image as a client sends it: one long base64 string
IMAGE = "data:image/png;base64," + "iVBORw0KGgo" * (20 * KB)     # about 220 KB


def row(i: int, previous: str | None = None) -> StoredResponse:
    return StoredResponse(
        id=f"resp_{i}", owner="open", created_at=1000.0 + i, expires_at=None, model="fake/echo", provider="fake",
        previous_response_id=previous,
        input_items=[{"role": "user", "content": [{"type": "input_text", "text": f"describe {i}"},
                                                  {"type": "input_image", "image_url": IMAGE}]}],
        response={"id": f"resp_{i}", "output": [{"type": "message", "role": "assistant",
                                                  "content": [{"type": "output_text", "text": f"answer {i}"}]}]})


def held_bytes(store: ResponseStore) -> int:
    """The text the cache holds, counted from what it holds (not from its own bookkeeping)."""
    total = 0
    for value in store._cache.values():
        cached = value[0] if isinstance(value, tuple) else value
        total += sum(len(part.get("image_url", "")) for item in cached.input_items for part in item["content"])
    return total


@pytest.fixture
def small_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("CACHE_BYTES", 1024 * KB), ("CACHE_ROW_BYTES", 512 * KB), ("MEMORY_ONLY_BYTES", 1024 * KB)):
        monkeypatch.setattr(state, name, value, raising=False)   # (the row count was the only bound before)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.close()


@pytest.mark.usefixtures("small_bounds")
async def test_without_a_store_the_newest_responses_are_kept_up_to_the_byte_bound() -> None:
    responses = ResponseStore(None)
    for i in range(30):     # 30 responses with a 220 KB image each: 6.6 MB
        await responses.save(row(i, f"resp_{i - 1}" if i % 3 else None))   # conversations of three turns
    assert held_bytes(responses) <= 1024 * KB
    assert responses.cached_bytes() <= 1024 * KB
    newest = await responses.history("resp_29", "open")   # the newest conversation is there
    assert any(item.get("content") == [{"type": "output_text", "text": "answer 29"}] for item in newest.items)
    with pytest.raises(ApiError) as gone:       # the oldest was let go: said so, and what to do instead
        await responses.history("resp_0", "open")
    assert gone.value.status == 404 and gone.value.code == "previous_response_not_found"
    assert "no [store] database" in str(gone.value) and "send the earlier turns as input" in str(gone.value)
    await responses.save(row(30, "resp_26"))    # lets resp_26 go: the conversation cannot be rebuilt
    assert "resp_26" not in responses._cache
    with pytest.raises(ApiError) as broken:
        await responses.history("resp_30", "open")
    assert broken.value.status == 400 and "no [store] database" in str(broken.value)


@pytest.mark.usefixtures("small_bounds")
async def test_beside_a_store_large_rows_are_read_from_it_not_kept_in_memory(sqlite_store: Store) -> None:
    responses = ResponseStore(sqlite_store)
    for i in range(12):
        await responses.save(row(i, f"resp_{i - 1}" if i else None))
    assert held_bytes(responses) <= 1024 * KB
    conversation = await responses.history("resp_11", "open")    # every turn, from the store where not cached
    images = [p for item in conversation.items for p in item.get("content") or () if p.get("type") == "input_image"]
    assert len(images) == 12 and all(p["image_url"] == IMAGE for p in images)
    assert (await responses.get("resp_0", "open")).input_items[0]["content"][1]["image_url"] == IMAGE
    assert held_bytes(responses) <= 1024 * KB


async def test_a_row_over_the_per_row_bound_is_not_cached_beside_a_store(sqlite_store: Store,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "CACHE_ROW_BYTES", 100 * KB, raising=False)
    responses = ResponseStore(sqlite_store)
    await responses.save(row(1))
    small = row(2)
    small.input_items = [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    await responses.save(small)
    assert list(responses._cache) == ["resp_2"]
    assert (await responses.get("resp_1", "open")).input_items[0]["content"][1]["image_url"] == IMAGE
    assert list(responses._cache) == ["resp_2"]


def test_a_rows_size_is_about_its_json_text() -> None:
    import json

    for value in (row(3).input_items, row(3).response, [{"a": [1, 2.5, None, True, "x" * 100]}]):
        text = json.dumps(value)
        assert 0.9 * len(text) <= state.footprint(value) <= 1.5 * len(text) + 16


def test_the_item_index_lets_go_of_what_the_cache_lets_go() -> None:
    """The index from item ids to cached rows (for ``item_reference`` inputs) dropped entries
    only when a row was replaced or deleted, never when the cache evicted the oldest: under
    sustained traffic it grew by every stored item forever."""
    store = ResponseStore(None)
    for i in range(state.CACHE_SIZE * 8 + 200):
        item = {"id": f"msg_{i}", "type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": f"answer {i}"}]}
        store._remember(StoredResponse(id=f"resp_{i}", owner="open", created_at=1000.0 + i, expires_at=None,
                                       model="fake/echo", provider="fake", previous_response_id=None,
                                       input_items=[], response={"id": f"resp_{i}", "output": [item]}))
    assert len(store._cache) == state.CACHE_SIZE * 8
    assert {holder for holders in store._items.values() for holder in holders} == set(store._cache)
    assert len(store._items) == len(store._cache)
