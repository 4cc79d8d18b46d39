"""Several workers share one store: a model entry created, changed or deleted through one
worker's admin API reaches the others (each checks the table's fingerprint, in the
background, about once a second; here the check is called directly, so nothing waits). An
entry cloverleaf.toml defines is the file's, whatever the store holds under its name."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloverleaf._config import ModelEntry
from cloverleaf.gateway.store.records import ModelEntryRow
from cloverleaf.server import backend as backend_module
from cloverleaf.server.backend import Backend
from cloverleaf.server.errors import NotFound

from .conftest import MASTER, settings, start_live, stop_live

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Backend, Backend]]:
    # only the tests' own calls check: the background check (once a second) could otherwise take
    # a change first on a slow run, and the test's own call would rightly find nothing new
    monkeypatch.setattr(backend_module, "REGISTRY_SYNC_SECONDS", 3600.0)
    configured = ModelEntry(name="house", identifier="echo", provider="fake")
    s = settings(store={"url": f"sqlite:///{tmp_path / 'shared.db'}"}, models=[configured])
    one, two = Backend(s), Backend(s)
    await one.start()
    await two.start()
    yield one, two
    await one.aclose()
    await two.aclose()


async def _admin_save(worker: Backend, row: ModelEntryRow) -> bool:
    """What ``POST``/``PATCH /admin/models`` does in the worker that answers it (without its
    checks: the row may have a name cloverleaf.toml defines); whether it went into the registry."""
    return worker.install(worker.store.upsert_model_entry(row))


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


async def test_a_stored_entry_of_a_configured_name_is_ignored_and_said_once(
        workers: tuple[Backend, Backend], caplog: pytest.LogCaptureFixture) -> None:
    """cloverleaf.toml is the source of truth: a stored entry of a name the file defines (stored
    before the file named it; the admin API refuses such a name since) silently replaced the
    file's after a restart, and calls went to the stored identifier. It is ignored now, with one
    warning naming it and how to resolve it, however many syncs find it."""
    one, two = workers
    with caplog.at_level(logging.WARNING, logger="cloverleaf.server"):
        assert await _admin_save(one, ModelEntryRow(name="house", identifier="stored", provider="fake")) is False
        for _ in range(3):
            one.store.upsert_model_entry(ModelEntryRow(name="other", identifier="echo", provider="fake",
                                                       input_cost_per_1k=float(_)))
            assert await two.sync_registry() is True   # the table changed: every row is looked at again
    for worker in (one, two):
        assert worker.engine.registry.get("house").identifier == "echo"  # type: ignore[union-attr]
    said = [r.getMessage() for r in caplog.records if "'house'" in r.getMessage()]
    assert len(said) == 2, said   # once per worker
    assert "defined in cloverleaf.toml and also stored" in said[0] and "DELETE /admin/models/house" in said[0]

    one.store.delete_model_entry("house")   # the clean-up: the file's entry stays, with no word
    one.uninstall("house")
    await two.sync_registry()
    for worker in (one, two):
        assert worker.engine.registry.get("house").identifier == "echo"  # type: ignore[union-attr]


async def test_a_configured_name_stored_again_after_a_delete_is_said_again(
        workers: tuple[Backend, Backend], caplog: pytest.LogCaptureFixture) -> None:
    _one, two = workers
    with caplog.at_level(logging.WARNING, logger="cloverleaf.server"):
        for _ in range(2):
            two.store.upsert_model_entry(ModelEntryRow(name="house", identifier="stored", provider="fake"))
            await two.sync_registry()
            two.store.delete_model_entry("house")
            await two.sync_registry()
    assert len([r for r in caplog.records if "'house'" in r.getMessage()]) == 2
    assert two.engine.registry.get("house").identifier == "echo"  # type: ignore[union-attr]


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


def test_after_a_restart_the_files_entry_is_served_and_the_stored_one_can_be_deleted(tmp_path: Path) -> None:
    """The hunt's reproduction: "team" made through the admin API, then added to cloverleaf.toml
    and the server restarted. Calls went to the stored identifier, GET showed the stored entry,
    and PATCH answered that it "comes from cloverleaf.toml" about an entry that was not the file's.
    Now the file's is served and shown, PATCH and PUT refuse it, and DELETE removes the ignored
    stored one (then refuses, as the file's is all that is left)."""
    store = {"url": f"sqlite:///{tmp_path / 'store.db'}"}
    env = {"CLOVERLEAF_MASTER_KEY": MASTER}
    first = start_live(settings(env=env, store=store, models=[]))
    try:
        with first.http(MASTER) as http:
            made = http.post("/admin/models", json={"name": "team", "provider": "fake", "identifier": "fail-500"})
            assert made.status_code == 201, made.text
    finally:
        stop_live(first)
    configured = ModelEntry(name="team", identifier="echo", provider="fake")
    second = start_live(settings(env=env, store=store, models=[configured]))
    try:
        answer = second.openai(MASTER).chat.completions.create(model="team", messages=HELLO)
        assert answer.choices[0].message.content == "hello"   # the file's "echo", not the stored "fail-500"
        with second.http(MASTER) as http:
            shown = http.get("/admin/models/team").json()
            assert (shown["identifier"], shown["source"]) == ("echo", "config")
            listed = [e for e in http.get("/admin/models").json()["data"] if e["name"] == "team"]
            assert [(e["identifier"], e["source"]) for e in listed] == [("echo", "config")]
            for change in (http.patch, http.put):
                refused = change("/admin/models/team", json={"identifier": "x", "provider": "fake"})
                assert refused.status_code == 409 and refused.json()["error"]["code"] == "config_entry_read_only"
            assert http.delete("/admin/models/team").json() == {"deleted": "team"}
            assert second.state.backend.store.get_model_entry("team") is None
            again = http.delete("/admin/models/team")   # only the file's is left: read-only, not "no entry"
            assert again.status_code == 409 and again.json()["error"]["code"] == "config_entry_read_only"
            patched = http.patch("/admin/models/team", json={"identifier": "x"})
            assert patched.status_code == 409 and "read-only here" in patched.json()["error"]["message"]
            assert http.get("/admin/models/team").json()["source"] == "config"
        answer = second.openai(MASTER).chat.completions.create(model="team", messages=HELLO)
        assert answer.choices[0].message.content == "hello"
    finally:
        stop_live(second)
