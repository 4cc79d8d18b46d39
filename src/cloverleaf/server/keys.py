"""Virtual keys: issue, verify, update, revoke — over the gateway store's key table.

The secret is generated here, returned once by :meth:`VirtualKeys.create`, and stored only
as its SHA-256 (see :mod:`.secrets`). Verification is on the hot path of every request, so
a verified key is remembered in memory for ``cache_seconds``: a revoke or update made
through *this* process takes effect at once; one made through another worker process is
seen within ``cache_seconds`` (5 s by default; 0 disables the cache).

The key's limits travel to the gateway as a :class:`~cloverleaf._context.KeyPolicy`: its
rpm/tpm buckets and its budget (scope ``key:<id>``) are enforced by the same gateway code
as route limits, so they hold under concurrency and, with shared state, across workers.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._context import KeyPolicy
from .errors import Unauthorized
from .secrets import hash_key, new_key_id, new_virtual_key

_UPDATABLE = {"name", "allowed_models", "budget", "budget_period", "rpm", "tpm", "expires_at", "metadata",
              "privacy"}


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
    def __init__(self, store: Any, *, cache_seconds: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._store = store
        self._ttl = cache_seconds
        self._now = monotonic
        self._wall = wall
        self._cache: dict[str, tuple[float, Any]] = {}

    # -- hot path ----------------------------------------------------------------------
    async def verify(self, secret: str) -> VerifiedKey:
        """The key for ``secret``, or :class:`Unauthorized` saying why not."""
        digest = hash_key(secret)
        hit = self._cache.get(digest)
        now = self._now()
        if hit is not None and hit[0] > now:
            row = hit[1]
        else:
            row = await asyncio.to_thread(self._store.find_virtual_key, digest)
            if row is None:
                self._cache.pop(digest, None)
                raise Unauthorized("invalid API key: not the master key and no such virtual key",
                                   code="invalid_api_key")
            if self._ttl > 0:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now + self._ttl, row)
        if row.revoked_at is not None:
            raise Unauthorized(f"virtual key {row.id} was revoked", code="key_revoked")
        if row.expires_at is not None and row.expires_at <= self._wall():
            raise Unauthorized(f"virtual key {row.id} expired at {_iso(row.expires_at)}", code="key_expired")
        return VerifiedKey(row.id, row.name, _policy(row), row.expires_at)

    def forget(self, key_id: str) -> None:
        self._cache = {h: v for h, v in self._cache.items() if v[1].id != key_id}

    # -- admin -------------------------------------------------------------------------
    async def create(self, **fields: Any) -> tuple[Any, str]:
        """Issue a key; returns the stored row and the secret (the only time it exists)."""
        from ..gateway.store.records import VirtualKeyRow

        secret = new_virtual_key()
        values = {k: v for k, v in fields.items() if k in _UPDATABLE and v is not None}
        row = VirtualKeyRow(id=new_key_id(), secret_hash=hash_key(secret), created_at=self._wall(), **values)
        await asyncio.to_thread(self._store.create_virtual_key, row)
        return row, secret

    async def get(self, key_id: str) -> Any:
        return await asyncio.to_thread(self._store.get_virtual_key, key_id)

    async def list(self, include_revoked: bool = True) -> list[Any]:
        return await asyncio.to_thread(self._store.list_virtual_keys, include_revoked=include_revoked)

    async def update(self, key_id: str, **changes: Any) -> Any:
        changes = {k: v for k, v in changes.items() if k in _UPDATABLE}
        row = await asyncio.to_thread(self._store.update_virtual_key, key_id, **changes)
        self.forget(key_id)
        return row

    async def revoke(self, key_id: str) -> bool:
        ok = await asyncio.to_thread(self._store.revoke_virtual_key, key_id)
        self.forget(key_id)
        return bool(ok)

    async def any_active(self) -> bool:
        rows = await asyncio.to_thread(self._store.list_virtual_keys, include_revoked=False)
        wall = self._wall()
        return any(r.expires_at is None or r.expires_at > wall for r in rows)


def _policy(row: Any) -> KeyPolicy:
    return KeyPolicy(key_id=row.id, allowed_models=tuple(row.allowed_models or ()), rpm=row.rpm, tpm=row.tpm,
                     budget=row.budget, budget_period=row.budget_period, privacy=row.privacy)


def public_view(row: Any) -> dict[str, Any]:
    """A key as the admin API shows it: everything but the hash."""
    return {
        "id": row.id, "name": row.name, "allowed_models": list(row.allowed_models or []),
        "budget": row.budget, "budget_period": row.budget_period, "rpm": row.rpm, "tpm": row.tpm,
        "expires_at": row.expires_at, "revoked_at": row.revoked_at, "created_at": row.created_at,
        "revoked": row.revoked_at is not None, "metadata": dict(row.metadata or {}),
        "privacy": row.privacy or "any",
    }


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


__all__ = ["VirtualKeys", "VerifiedKey", "model_allowed", "public_view"]
