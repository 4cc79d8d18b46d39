"""Auth modes and options, without a server: open mode is loopback-only, the master key is
compared exactly, virtual keys are verified by hash with a revocable cache."""

from __future__ import annotations

import hashlib

import pytest

from cloverleaf._errors import ConfigError
from cloverleaf.server.auth import Authenticator, bearer_token
from cloverleaf.server.errors import Forbidden, NotFound, Unauthorized
from cloverleaf.server.keys import VirtualKeys, model_allowed
from cloverleaf.server.options import ServerOptions, is_loopback
from cloverleaf.server.secrets import hash_key

MASTER = "m" * 32


class MemoryKeys:
    """Just the store methods VirtualKeys uses."""

    def __init__(self) -> None:
        self.rows: dict[str, object] = {}
        self.lookups = 0

    def create_virtual_key(self, row: object) -> object:
        self.rows[row.id] = row  # type: ignore[attr-defined]
        return row

    def find_virtual_key(self, digest: str) -> object | None:
        self.lookups += 1
        return next((r for r in self.rows.values() if r.secret_hash == digest), None)  # type: ignore[attr-defined]

    def get_virtual_key(self, key_id: str) -> object | None:
        return self.rows.get(key_id)

    def list_virtual_keys(self, include_revoked: bool = True) -> list[object]:
        return [r for r in self.rows.values() if include_revoked or r.revoked_at is None]  # type: ignore[attr-defined]

    def revoke_virtual_key(self, key_id: str) -> bool:
        self.rows[key_id].revoked_at = 1.0  # type: ignore[attr-defined]
        return True

    def update_virtual_key(self, key_id: str, **changes: object) -> object:
        for k, v in changes.items():
            setattr(self.rows[key_id], k, v)
        return self.rows[key_id]


@pytest.mark.parametrize("authorization, x_api_key, expected", [
    ("Bearer abc", None, "abc"), ("bearer   abc ", None, "abc"), (None, "xyz", "xyz"),
    ("Basic abc", "xyz", "xyz"), ("Bearer ", None, None), (None, None, None),
])
def test_bearer_token(authorization: str | None, x_api_key: str | None, expected: str | None) -> None:
    assert bearer_token(authorization, x_api_key) == expected


async def test_open_mode_serves_loopback_only() -> None:
    auth = Authenticator(ServerOptions(), VirtualKeys(MemoryKeys()))
    await auth.decide_mode()
    assert auth.open_mode
    for peer in ("127.0.0.1", "::1"):
        assert (await auth.authenticate(None, None, peer)).kind == "open"
    for peer in ("10.0.0.7", "192.168.1.2", None):
        with pytest.raises(Unauthorized) as info:
            await auth.authenticate("Bearer anything", None, peer)
        assert info.value.code == "open_mode_loopback_only"
    with pytest.raises(NotFound) as off:
        await auth.authenticate_admin(None, None)
    assert "CLOVERLEAF_MASTER_KEY" in off.value.message


async def test_open_mode_answers_only_requests_addressed_to_localhost() -> None:
    """DNS rebinding: a page on evil.example re-pointed at 127.0.0.1 still sends its own Host."""
    auth = Authenticator(ServerOptions(), VirtualKeys(MemoryKeys()))
    await auth.decide_mode()
    for host in ("localhost:4000", "127.0.0.1:4000", "127.0.0.1", "[::1]:4000", "localhost"):
        assert (await auth.authenticate(None, None, "127.0.0.1", host)).kind == "open"
    for host in ("evil.example:4000", "evil.example", "10.0.0.1:4000", "[2001:db8::1]:80"):
        with pytest.raises(Unauthorized) as info:
            await auth.authenticate(None, None, "127.0.0.1", host)
        assert info.value.code == "open_mode_loopback_only"


async def test_allow_unauthenticated_really_opens_the_gateway() -> None:
    """The operator set allow_unauthenticated to serve a network without keys: remote peers
    are served (before, every one of them was refused as not loopback)."""
    auth = Authenticator(ServerOptions(host="0.0.0.0", allow_unauthenticated=True), VirtualKeys(MemoryKeys()))
    await auth.decide_mode()
    assert (await auth.authenticate(None, None, "10.0.0.7", "gateway.internal:4000")).kind == "open"


async def test_master_mode() -> None:
    auth = Authenticator(ServerOptions(master_key=MASTER), VirtualKeys(MemoryKeys()))
    await auth.decide_mode()
    assert not auth.open_mode
    assert (await auth.authenticate(f"Bearer {MASTER}", None, "10.0.0.1")).kind == "master"
    assert (await auth.authenticate(None, MASTER, "10.0.0.1")).kind == "master"
    for bad in (MASTER + "x", MASTER[:-1], ""):
        with pytest.raises(Unauthorized):
            await auth.authenticate(f"Bearer {bad}", None, "127.0.0.1")
    assert (await auth.authenticate_admin(f"Bearer {MASTER}", None)).kind == "master"


async def test_virtual_keys_verify_cache_revoke_expire() -> None:
    store = MemoryKeys()
    keys = VirtualKeys(store, cache_seconds=60, wall=lambda: 1000.0)
    row, secret = await keys.create(name="k", allowed_models=["fake/*"], rpm=5, expires_at=2000.0)
    auth = Authenticator(ServerOptions(), keys)
    await auth.decide_mode()
    assert not auth.open_mode  # a usable key exists: no open mode even without a master key
    p = await auth.authenticate(f"Bearer {secret}", None, "10.1.1.1")
    assert p.kind == "key" and p.policy is not None and p.policy.rpm == 5
    p.check_model("fake/echo")
    with pytest.raises(Forbidden):
        p.check_model("openai/gpt-4o")
    await auth.authenticate(f"Bearer {secret}", None, None)
    assert store.lookups == 1  # the second verification came from the cache
    await keys.revoke(row.id)
    with pytest.raises(Unauthorized, match="revoked"):
        await auth.authenticate(f"Bearer {secret}", None, None)
    late = VirtualKeys(store, cache_seconds=0, wall=lambda: 5000.0)
    row2, secret2 = await late.create(name="old", expires_at=4000.0)
    with pytest.raises(Unauthorized, match="expired"):
        await late.verify(secret2)


async def test_a_keys_principal_follows_its_changes() -> None:
    """A verified key's Principal is built once and reused while the key stays as verified:
    an update (new limits, new models) or a revoke made here must show on the next request."""
    store = MemoryKeys()
    keys = VirtualKeys(store, cache_seconds=60)
    row, secret = await keys.create(name="k", allowed_models=["fake/*"], rpm=5)
    auth = Authenticator(ServerOptions(master_key=MASTER), keys)
    first = await auth.authenticate(f"Bearer {secret}", None, None)
    assert await auth.authenticate(f"Bearer {secret}", None, None) is first   # built once
    await keys.update(row.id, rpm=1, allowed_models=["other/*"])
    changed = await auth.authenticate(f"Bearer {secret}", None, None)
    assert changed.policy is not None and changed.policy.rpm == 1 and changed.key_id == row.id
    with pytest.raises(Forbidden):
        changed.check_model("fake/echo")
    await keys.revoke(row.id)
    with pytest.raises(Unauthorized, match="revoked"):
        await auth.authenticate(f"Bearer {secret}", None, None)


async def test_a_key_is_hashed_once_and_found_by_that_hash() -> None:
    """The authenticator hashes the presented key once, for the master key's comparison, and
    the key lookup uses that digest: it must be the stored hash, non-ASCII keys included."""
    store = MemoryKeys()
    keys = VirtualKeys(store, cache_seconds=0)
    row, secret = await keys.create(name="k")
    auth = Authenticator(ServerOptions(master_key=MASTER), keys)
    await auth.decide_mode()
    assert (await auth.authenticate(f"Bearer {secret}", None, "10.0.0.1")).key_id == row.id
    assert hashlib.sha256(secret.encode()).digest().hex() == hash_key(secret) == row.secret_hash
    odd = "sk-clé-ünïcode"
    assert hashlib.sha256(odd.encode()).digest().hex() == hash_key(odd)
    assert (await keys.verify(secret, hashlib.sha256(secret.encode()).digest())).id == row.id
    with pytest.raises(Unauthorized, match="no such virtual key"):
        await auth.authenticate(f"Bearer {odd}", None, "10.0.0.1")


def test_model_patterns() -> None:
    assert model_allowed((), "anything")
    assert model_allowed(("fake/*",), "fake/echo") and not model_allowed(("fake/*",), "openai/gpt-4o")
    assert model_allowed(("smart",), "smart") and not model_allowed(("smart",), "smarter")


def test_options_validation() -> None:
    with pytest.raises(ConfigError, match="too short"):
        ServerOptions.from_settings({}, {"CLOVERLEAF_MASTER_KEY": "short"})
    with pytest.raises(ConfigError, match="unknown keys"):
        ServerOptions.from_settings({"hots": "x"}, {})
    for port in (99999, -1):   # 99999 used to serve on 34463 while the log said 99999
        with pytest.raises(ConfigError, match="port .* must be from 0 to 65535"):
            ServerOptions.from_settings({}, {}, port=port)
    opts = ServerOptions.from_settings({"max_body_mb": 1, "port": 8080}, {"CLOVERLEAF_MASTER_KEY": MASTER},
                                       host="0.0.0.0")
    assert (opts.max_body_bytes, opts.port, opts.host, opts.loopback_only) == (1024 * 1024, 8080, "0.0.0.0", False)
    assert MASTER not in repr(opts)
    assert opts.encryption_material == MASTER
    assert ServerOptions.from_settings({}, {"CLOVERLEAF_MASTER_KEY": MASTER,
                                            "CLOVERLEAF_ENCRYPTION_KEY": "e" * 20}).encryption_material == "e" * 20
    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "[::1]", "127.9.9.9"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.1", "example.com", ""))
