"""Virtual keys: issue, verify, update, revoke — over the gateway store's key table.

The secret is generated here, returned once by :meth:`VirtualKeys.create`, and stored only
as its SHA-256 (see :mod:`.secrets`). Verification is on the hot path of every request, so
it costs a hash and a dict lookup: the answer for a hash — the verified key with its policy,
built once, or "no such key" — is cached. A revoke, update or creation made through *this*
process drops the cache at once; one made through another worker or replica is seen
within ``SYNC_SECONDS`` (0.5 s): every change bumps a counter in the store
(``change_counters``, in the same transaction), and :meth:`VirtualKeys.start` runs a task
that reads that one number twice a second, off the request path, and drops the cache when
it moved. ``cache_seconds`` (``[server] key_cache_seconds``, default 60; 0 disables the
cache) bounds how long an answer is trusted when that check cannot run (the store is
unreachable, or the task was never started).

The key's limits travel to the gateway as a :class:`~cloverleaf._context.KeyPolicy`: its
rpm/tpm buckets and its budget (scope ``key:<id>``) are enforced by the same gateway code
as route limits, so they hold under concurrency and, with shared state, across workers. Its
project (:mod:`.projects`) travels the same way: a project budget is one counter that all the
project's keys reserve against, so it holds as a route's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .._context import KeyPolicy
from .errors import Unauthorized
from .secrets import hash_key, new_key_id, new_virtual_key

log = logging.getLogger("cloverleaf.server")
#: How often each process checks the store's key-change counter.
SYNC_SECONDS = 0.5
#: Beyond this many cached answers the cache starts over (unknown secrets are cached too).
MAX_CACHED = 10_000
#: How long a request waits for the store to look up a key not cached yet; then it is a 503
#: ``store_unavailable`` (a store that does not answer must not hold requests for ever).
LOOKUP_TIMEOUT_SECONDS = 5.0
_COUNTER = "virtual_keys"

#: Told (row before, row after) when a key is updated or revoked through this process.
KeyChanged = Callable[[Any, Any], Awaitable[None]]
#: Told when the store's counter shows that another process changed the key table.
ChangedElsewhere = Callable[[], Awaitable[None]]

_UPDATABLE = {"name", "allowed_models", "budget", "budget_period", "rpm", "tpm", "expires_at", "metadata",
              "privacy", "project"}


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    id: str
    name: str | None
    policy: KeyPolicy
    expires_at: float | None

    def allows(self, model: str) -> bool:
        return model_allowed(self.policy.allowed_models, model)


def model_allowed(patterns: tuple[str, ...] | list[str], model: str) -> bool:
    """Empty: every model. Otherwise an exact name or a ``*`` pattern (``fake/*``) must match."""
    if not patterns:
        return True
    for pattern in patterns:
        if pattern == model or ("*" in pattern and fnmatch.fnmatchcase(model, pattern)):
            return True
    return False


class VirtualKeys:
    def __init__(self, store: Any, *, cache_seconds: float = 60.0,
                 monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._store = store
        self._ttl = cache_seconds
        self._now = monotonic
        self._wall = wall
        #: hash → (trusted until, the stored row or None for "no such key", the verified key)
        self._cache: dict[str, tuple[float, Any, VerifiedKey | None]] = {}
        self._version: int | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._listeners: list[KeyChanged] = []
        self._elsewhere: list[ChangedElsewhere] = []

    # -- hot path ----------------------------------------------------------------------
    async def verify(self, secret: str, sha256: bytes | None = None) -> VerifiedKey:
        """The key for ``secret``, or :class:`Unauthorized` saying why not. ``sha256``: the
        secret's SHA-256 when the caller has it already (the authenticator hashed it to
        compare with the master key): the stored hash is its hex form (``hash_key``)."""
        digest = sha256.hex() if sha256 is not None else hash_key(secret)
        hit = self._cache.get(digest)
        if hit is None or hit[0] <= self._now():
            hit = await self._lookup(digest)
        _, row, verified = hit
        if verified is None:
            raise Unauthorized("invalid API key: not the master key and no such virtual key", code="invalid_api_key")
        if row.revoked_at is not None:
            raise Unauthorized(f"virtual key {row.id} was revoked", code="key_revoked")
        if row.expires_at is not None and row.expires_at <= self._wall():
            raise Unauthorized(f"virtual key {row.id} expired at {_iso(row.expires_at)}", code="key_expired")
        return verified

    async def _lookup(self, digest: str) -> tuple[float, Any, VerifiedKey | None]:
        cache = self._cache
        version = self._version
        try:
            row = await asyncio.wait_for(asyncio.to_thread(self._store.find_virtual_key, digest),
                                         LOOKUP_TIMEOUT_SECONDS)
        except TimeoutError:
            from ..gateway.store.outage import StoreUnavailable

            raise StoreUnavailable(f"a virtual key lookup got no answer from the store within "
                                   f"{LOOKUP_TIMEOUT_SECONDS:g} s") from None
        verified = None if row is None else VerifiedKey(row.id, row.name, key_policy(row), row.expires_at)
        entry = (self._now() + self._ttl, row, verified)
        # not when the cache was dropped meanwhile: this answer may predate the change
        if self._ttl > 0 and cache is self._cache and version == self._version:
            if len(cache) >= MAX_CACHED:
                cache.clear()
            cache[digest] = entry
        return entry

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached answers (a key changed, or one was created: a cached "no such key"
        may be wrong now). A new dict, so a lookup in flight does not refill the old one."""
        self._cache = {}

    # -- staying in step with other processes -------------------------------------------
    async def start(self) -> None:
        """Read the store's key-change counter now and then every ``SYNC_SECONDS``."""
        if self._sync_task is None and hasattr(self._store, "change_counter"):
            await self.sync()
            self._sync_task = asyncio.create_task(self._sync_forever(), name="cloverleaf-key-sync")

    async def aclose(self) -> None:
        task, self._sync_task = self._sync_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def on_change_elsewhere(self, listener: ChangedElsewhere) -> None:
        """Call ``listener()`` when :meth:`sync` sees that another process (worker, replica)
        changed the key table: the authenticator's open mode ends when keys appear there."""
        self._elsewhere.append(listener)

    async def sync(self) -> bool:
        """Drop the cache if another process changed a key since the last look; True if so.
        The listeners run before the new counter is noted, so one that failed (the store away
        for a moment) runs again at the next look."""
        version = await asyncio.to_thread(self._store.change_counter, _COUNTER)
        changed = self._version is not None and version != self._version
        if changed:
            self.forget()
            for listener in self._elsewhere:
                await listener()
        self._version = version
        return changed

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            try:
                await self.sync()
            except Exception as exc:  # noqa: BLE001 - the store is away for a moment: cached answers age out
                log.warning("virtual key sync failed: %s", type(exc).__name__)

    # -- admin -------------------------------------------------------------------------
    async def create(self, key_id: str | None = None, **fields: Any) -> tuple[Any, str]:
        """Issue a key; returns the stored row and the secret (the only time it exists).
        ``key_id``: the id to give it (the dashboard derives it from a one-time form token, so
        a form sent twice fails on the id, the primary key, instead of making two keys)."""
        from ..gateway.store.records import VirtualKeyRow

        secret = new_virtual_key()
        values = {k: v for k, v in fields.items() if k in _UPDATABLE and v is not None}
        row = VirtualKeyRow(id=key_id or new_key_id(), secret_hash=hash_key(secret), created_at=self._wall(), **values)
        await asyncio.to_thread(self._store.create_virtual_key, row)
        self.forget()
        return row, secret

    async def get(self, key_id: str) -> Any:
        return await asyncio.to_thread(self._store.get_virtual_key, key_id)

    async def list(self, include_revoked: bool = True, *, after: tuple[float, str] | None = None,
                   limit: int | None = None, newest_first: bool = False, budgeted: bool = False) -> list[Any]:
        """The keys, oldest first (``newest_first``: the dashboard's order; ``budgeted``: only
        those with a budget); ``after`` and ``limit`` give one page (``GET /admin/keys``, the
        dashboard's Keys and Spend pages)."""
        return await asyncio.to_thread(self._store.list_virtual_keys, include_revoked=include_revoked, after=after,
                                       limit=limit, newest_first=newest_first, budgeted=budgeted)

    def on_change(self, listener: KeyChanged) -> None:
        """Call ``listener(before, after)`` after each update or revoke made here (the dashboard
        ends a key's sessions for good when the key stops being able to sign in)."""
        self._listeners.append(listener)

    async def update(self, key_id: str, **changes: Any) -> Any:
        changes = {k: v for k, v in changes.items() if k in _UPDATABLE}
        before = await self.get(key_id) if self._listeners else None
        row = await asyncio.to_thread(self._store.update_virtual_key, key_id, **changes)
        self.forget(key_id)
        await self._changed(before, row)
        return row

    async def revoke(self, key_id: str) -> bool:
        before = await self.get(key_id) if self._listeners else None
        ok = await asyncio.to_thread(self._store.revoke_virtual_key, key_id)
        self.forget(key_id)
        if self._listeners:
            await self._changed(before, await self.get(key_id))
        return bool(ok)

    async def _changed(self, before: Any, after: Any) -> None:
        """Tell every listener, each whatever the others did (one that failed — the state
        backend away while a budget is recounted — must not keep the dashboard from ending a
        revoked key's sessions); then raise the first failure, for the admin to hear of."""
        failure: BaseException | None = None
        for listener in self._listeners:
            try:
                await listener(before, after)
            except Exception as exc:  # noqa: BLE001 - raised below, once every listener has run
                failure = failure or exc
        if failure is not None:
            raise failure

    async def any_active(self) -> bool:
        rows = await asyncio.to_thread(self._store.list_virtual_keys, include_revoked=False)
        wall = self._wall()
        return any(r.expires_at is None or r.expires_at > wall for r in rows)


def key_policy(row: Any) -> KeyPolicy:
    """What the gateway enforces for a stored key: its models, limits, budget, privacy policy and
    project (whose budgets its calls draw on, with every other key of that project)."""
    return KeyPolicy(key_id=row.id, allowed_models=tuple(row.allowed_models or ()), rpm=row.rpm, tpm=row.tpm,
                     budget=row.budget, budget_period=row.budget_period, privacy=row.privacy, project=row.project)


def budget_in_force(after: Any) -> bool:
    """Whether the key has a budget after an update: its counter is then recounted from the
    call records (``Backend.key_changed``). That matters where the budget starts to apply (one
    where it had none, never or since it was removed, or another period: the key's earlier spend
    in the period reached no counter, since only calls that hold one are counted); it is done on
    every update that leaves a budget in force because a recount never lowers a count, and
    because one that failed (the state backend down for a moment: the update is stored, the
    admin told 503) is then done by sending the same change again, which a check for "the
    budget changed" would skip, leaving the key's earlier spend uncounted for the period."""
    return after is not None and after.budget is not None


def public_view(row: Any) -> dict[str, Any]:
    """A key as the admin API shows it: everything but the hash."""
    return {
        "id": row.id, "name": row.name, "allowed_models": list(row.allowed_models or []),
        "budget": row.budget, "budget_period": row.budget_period, "rpm": row.rpm, "tpm": row.tpm,
        "expires_at": row.expires_at, "revoked_at": row.revoked_at, "created_at": row.created_at,
        "revoked": row.revoked_at is not None, "metadata": dict(row.metadata or {}),
        "privacy": row.privacy or "any", "project": row.project,
    }


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


__all__ = ["VirtualKeys", "VerifiedKey", "budget_in_force", "model_allowed", "public_view"]
