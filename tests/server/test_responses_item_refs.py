"""``item_reference`` lookups (:meth:`ResponseStore.find_item`) find the item while any of the
key's stored responses holds it: a later turn holding it too (a resolved reference is stored as
that turn's input) may be deleted or expire first, with or without a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloverleaf.gateway.store import Store, open_store
from cloverleaf.server.responses.state import ResponseStore, StoredResponse


def message(item_id: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}]}


def turn(response_id: str, created_at: float, *, made: str | None = None, sent: str | None = None,
         expires_at: float | None = None) -> StoredResponse:
    """A response that answered the message ``made`` or was sent the message ``sent`` as input."""
    return StoredResponse(id=response_id, owner="key:a", created_at=created_at, expires_at=expires_at,
                          model="fake/echo", provider="fake", previous_response_id=None,
                          input_items=[message(sent)] if sent else [],
                          response={"id": response_id, "output": [message(made)] if made else []})


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store | None]:
    if request.param == "memory":
        yield None
        return
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.close()


async def test_a_reference_outlives_a_deleted_later_turn_holding_the_item(backend: Store | None) -> None:
    responses = ResponseStore(backend)
    await responses.save(turn("resp_1", 1000.0, made="msg_1"))
    await responses.save(turn("resp_2", 1001.0, sent="msg_1"))     # step 2 held it (its reference, resolved)
    await responses.delete("resp_2", "key:a")
    found = await responses.find_item("msg_1", "key:a")
    assert found is not None and found.item["content"][0]["text"] == "Let me check."


async def test_a_reference_outlives_an_expired_later_turn_holding_the_item(backend: Store | None) -> None:
    """The later turn ran on a model kept for fewer days: it expired (not purged yet) first."""
    responses = ResponseStore(backend, wall=lambda: 5000.0)
    await responses.save(turn("resp_1", 1000.0, made="msg_1"))
    await responses.save(turn("resp_2", 1001.0, sent="msg_1", expires_at=2000.0))
    assert await responses.find_item("msg_1", "key:a") is not None
    if backend is not None:   # another process: found by the store's search
        assert await ResponseStore(backend, wall=lambda: 5000.0).find_item("msg_1", "key:a") is not None


async def test_an_input_naming_one_item_twice_leaves_no_index_entry_behind() -> None:
    responses = ResponseStore(None)
    row = turn("resp_1", 1000.0, sent="msg_1")
    row.input_items.append(message("msg_1"))
    await responses.save(row)
    await responses.delete("resp_1", "key:a")
    assert responses._items == {}
