"""Virtual keys cached per process, kept in step across workers by the store's change counter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cloverleaf.gateway.store import open_store
from cloverleaf.server import keys as keys_module
from cloverleaf.server.auth import Authenticator
from cloverleaf.server.errors import Unauthorized
from cloverleaf.server.keys import VirtualKeys
from cloverleaf.server.options import ServerOptions


class CountingStore:
    """A real SQLite store that counts key lookups (the database round trips on the hot path)."""

    def __init__(self, store: object) -> None:
        self._store = store
        self.lookups = 0

    def find_virtual_key(self, digest: str) -> object:
        self.lookups += 1
        return self._store.find_virtual_key(digest)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


@pytest.fixture
def shared(tmp_path: Path):  # type: ignore[no-untyped-def]
    """One database, two stores on it: two worker processes' views."""
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    first, second = open_store(url), open_store(url)
    yield CountingStore(first), CountingStore(second)
    first.close()
    second.close()


async def test_revocation_and_budget_changes_reach_another_worker_at_its_next_sync(shared) -> None:  # type: ignore[no-untyped-def]
    here_store, there_store = shared
    here, there = VirtualKeys(here_store), VirtualKeys(there_store)
    await here.sync()
    await there.sync()
    row, secret = await here.create(name="team", budget=5.0, rpm=10)
    assert (await there.verify(secret)).policy.budget == 5.0
    for _ in range(100):   # the hot path: cached, no database
        await there.verify(secret)
    assert there_store.lookups == 1

    await here.update(row.id, budget=1.0)
    assert (await there.verify(secret)).policy.budget == 5.0   # not yet looked at the counter
    assert await there.sync() is True                          # ... which moved
    assert (await there.verify(secret)).policy.budget == 1.0

    await here.revoke(row.id)
    await there.sync()
    with pytest.raises(Unauthorized, match="revoked"):
        await there.verify(secret)
    assert await there.sync() is False                         # nothing new: the cache stays


async def test_a_key_created_elsewhere_is_not_refused_from_a_cached_miss(shared) -> None:  # type: ignore[no-untyped-def]
    here_store, there_store = shared
    here, there = VirtualKeys(here_store), VirtualKeys(there_store)
    await there.sync()
    with pytest.raises(Unauthorized):
        await there.verify("sk-cl-not-yet")
    with pytest.raises(Unauthorized):
        await there.verify("sk-cl-not-yet")
    assert there_store.lookups == 1                            # unknown secrets are cached too
    _, secret = await here.create(name="new")
    await there.sync()
    assert (await there.verify(secret)).name == "new"


async def test_the_sync_task_drops_a_stale_cache_by_itself(shared, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(keys_module, "SYNC_SECONDS", 0.01)
    here_store, there_store = shared
    here, there = VirtualKeys(here_store), VirtualKeys(there_store)
    await there.start()
    try:
        row, secret = await here.create(name="team")
        await there.verify(secret)
        await here.revoke(row.id)
        for _ in range(1000):   # bounded: the task runs every 10 ms here
            try:
                await there.verify(secret)
            except Unauthorized as exc:
                assert exc.code == "key_revoked"
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the revocation never reached the other worker")
    finally:
        await there.aclose()


async def test_every_listener_hears_of_a_change_when_one_before_it_fails(shared) -> None:  # type: ignore[no-untyped-def]
    """The budget recount runs first (``create_app``) and needs the state backend; when that is
    away, the dashboard's listener must still end the sessions of a key that was revoked."""
    store, _ = shared
    keys = VirtualKeys(store)
    heard: list[str] = []

    async def failing(before: object, after: object) -> None:
        raise RuntimeError("state backend away")

    async def ends_sessions(before: object, after: object) -> None:
        heard.append(after.id)  # type: ignore[attr-defined]

    keys.on_change(failing)
    keys.on_change(ends_sessions)
    row, _secret = await keys.create(name="leaving")
    with pytest.raises(RuntimeError, match="state backend away"):
        await keys.revoke(row.id)
    assert heard == [row.id]


async def test_open_mode_ends_at_the_next_sync_once_another_process_makes_a_key(shared) -> None:  # type: ignore[no-untyped-def]
    """A process started open (no master key, no key) closes when a key is made through another
    worker or replica; a recheck the store failed runs again at the next sync."""
    here_store, there_store = shared
    here, there = VirtualKeys(here_store), VirtualKeys(there_store)
    await there.sync()
    auth = Authenticator(ServerOptions(), there)
    await auth.decide_mode()
    assert auth.open_mode
    assert (await auth.authenticate(None, None, "127.0.0.1")).kind == "open"

    await here.create(name="made-elsewhere")
    listing = there_store.list_virtual_keys

    def away(**kw: object) -> object:
        raise RuntimeError("store away for a moment")

    there_store.list_virtual_keys = away
    with pytest.raises(RuntimeError):
        await there.sync()
    assert auth.open_mode                      # not decided on a failed look ...
    there_store.list_virtual_keys = listing
    assert await there.sync() is True          # ... so the next sync sees the change again
    assert not auth.open_mode
    with pytest.raises(Unauthorized) as refused:
        await auth.authenticate(None, None, "127.0.0.1")
    assert refused.value.code == "missing_api_key"
