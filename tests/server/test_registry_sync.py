"""Several workers share one store: a model entry created, changed or deleted through one
worker's admin API reaches the others (each checks the table's fingerprint, in the
background, about once a second; here the check is called directly, so nothing waits)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloverleaf._config import ModelEntry
from cloverleaf.gateway.store.records import ModelEntryRow
from cloverleaf.server.backend import Backend
from cloverleaf.server.errors import NotFound

from .conftest import settings


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[tuple[Backend, Backend]]:
    configured = ModelEntry(name="house", identifier="echo", provider="fake")
    s = settings(store={"url": f"sqlite:///{tmp_path / 'shared.db'}"}, models=[configured])
    one, two = Backend(s), Backend(s)
    await one.start()
    await two.start()
    yield one, two
    await one.aclose()
    await two.aclose()


async def _admin_save(worker: Backend, row: ModelEntryRow) -> None:
    """What ``POST``/``PATCH /admin/models`` does in the worker that answers it."""
    worker.install(worker.store.upsert_model_entry(row))


async def test_create_update_and_delete_reach_the_other_worker(workers: tuple[Backend, Backend]) -> None:
    one, two = workers
    await _admin_save(one, ModelEntryRow(name="team", identifier="echo", provider="fake"))
    assert await two.sync_registry() is True
    assert two.engine.registry.get("team").identifier == "echo"  # type: ignore[union-attr]
    assert await two.sync_registry() is False  # nothing changed since: no reload

    await _admin_save(one, ModelEntryRow(name="team", identifier="other", provider="fake", input_cost_per_1k=2.0))
    await two.sync_registry()
    entry = two.engine.registry.get("team")
    assert entry is not None and (entry.identifier, entry.input_cost_per_1k) == ("other", 2.0)

    assert one.store.delete_model_entry("team")
    one.uninstall("team")
    await two.sync_registry()
    assert two.engine.registry.get("team") is None
    with pytest.raises(NotFound):
        await two.check_model("team")


async def test_deleting_a_stored_override_restores_the_configured_entry(workers: tuple[Backend, Backend]) -> None:
    one, two = workers
    await _admin_save(one, ModelEntryRow(name="house", identifier="stored", provider="fake"))
    await two.sync_registry()
    assert two.engine.registry.get("house").identifier == "stored"  # type: ignore[union-attr]
    one.store.delete_model_entry("house")
    one.uninstall("house")
    await two.sync_registry()
    for worker in (one, two):
        assert worker.engine.registry.get("house").identifier == "echo"  # type: ignore[union-attr]


async def test_an_entry_learnt_on_first_use_is_dropped_when_deleted(workers: tuple[Backend, Backend]) -> None:
    """The table goes back to exactly how it was (empty) between two checks: the entry the
    other worker picked up on first use must still go."""
    one, two = workers
    await _admin_save(one, ModelEntryRow(name="brief", identifier="echo", provider="fake"))
    await two.check_model("brief")  # first use, before any background check ran
    assert two.engine.registry.get("brief") is not None
    one.store.delete_model_entry("brief")
    one.uninstall("brief")
    await two.sync_registry()
    assert two.engine.registry.get("brief") is None


async def test_the_worker_that_created_an_entry_drops_it_when_another_deletes_it(
        workers: tuple[Backend, Backend]) -> None:
    """Created through one worker and deleted through the other before either looked at the
    table again: the table is back to its old state, but the creator must still drop it."""
    one, two = workers
    await _admin_save(one, ModelEntryRow(name="brief", identifier="echo", provider="fake"))
    await two.check_model("brief")
    two.store.delete_model_entry("brief")
    two.uninstall("brief")
    await one.sync_registry()
    assert one.engine.registry.get("brief") is None
