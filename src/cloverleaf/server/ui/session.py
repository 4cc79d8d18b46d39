"""Dashboard sign-in: sessions in the store, a cookie that is only a random token, CSRF tokens.

- Sign-in takes the master key or an *admin-scoped* virtual key (one whose metadata says
  ``"role": "admin"``). The key is checked and forgotten: the browser gets a random session
  token in a cookie (HttpOnly, SameSite=Strict, Path=/ui, Secure when the request came over
  TLS), and the store keeps only the token's SHA-256, so a copy of the database cannot be
  replayed as a session.
- Sessions live in the store (``ui_sessions``) rather than in process memory, so every worker
  and replica accepts them and signing out ends them everywhere. They expire after
  ``SESSION_SECONDS`` whatever happens; a session of a virtual key also ends the moment the
  key is revoked, expires or loses its admin role, and every master-key session ends when the
  master key changes (each session remembers a fingerprint of the key it was opened with).
  An ended session is deleted, for good: giving the role back or lifting the expiry used to
  revive every old cookie (a stolen one too) that the change was meant to shut out. So a
  session that fails its checks is deleted on sight, and a key's sessions are deleted when
  the key is updated or revoked while it, before or after, could not sign in — a cookie not
  presented in between is gone as well.
- Every state-changing request carries the session's CSRF token (a hidden form field, or the
  ``x-csrf-token`` header for the scripts' requests), compared in constant time. The sign-in
  form itself is protected by a double-submit cookie, so a page elsewhere cannot sign a
  browser into an attacker's session. A request whose ``Origin`` names another site is
  refused as well.
- Wrong keys are throttled per client address (``MAX_FAILURES`` per ``FAILURE_WINDOW``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from starlette.requests import Request

from ...gateway.store import schema
from ..errors import ApiError, Forbidden, Unauthorized
from ..secrets import hash_key

COOKIE = "clv_session"
LOGIN_COOKIE = "clv_login"
SESSION_SECONDS = 8 * 3600
MAX_FAILURES = 10
FAILURE_WINDOW = 300.0


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    kind: str                 # master | key
    key_id: str | None
    csrf: str
    expires_at: float

    @property
    def who(self) -> str:
        return "master key" if self.kind == "master" else f"key {self.key_id}"


def fingerprint(secret: str) -> str:
    """Names a key without revealing it (HMAC so it is no plain hash of the key either)."""
    return hmac.new(b"cloverleaf-ui-session", secret.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def is_admin(row: Any) -> bool:
    """A virtual key that may sign in to the dashboard (created with metadata role "admin")."""
    return (row.metadata or {}).get("role") == "admin"


def may_sign_in(row: Any, now: float) -> bool:
    """May this virtual key hold a dashboard session now: it exists, is not revoked or expired,
    and is admin-scoped."""
    return (row is not None and row.revoked_at is None and (row.expires_at is None or row.expires_at > now)
            and is_admin(row))


def same_token(a: str | None, b: str | None) -> bool:
    """Whether two tokens are the same, in constant time. Compared as UTF-8 bytes: a submitted
    token is anyone's input (the sign-in form is open to all), and ``compare_digest`` refuses a
    ``str`` with non-ASCII characters with a TypeError, which was a 500 for ``login_token=é``."""
    return bool(a) and bool(b) and hmac.compare_digest(as_bytes(str(a)), as_bytes(str(b)))


def as_bytes(token: str) -> bytes:
    """``token`` as bytes for a constant-time comparison, whatever characters it holds."""
    return token.encode("utf-8", "surrogatepass")


class Sessions:
    def __init__(self, store: Any, keys: Any, master_key: str, wall: Any = time.time) -> None:
        self._store = store
        self._keys = keys
        self._master = master_key
        self._master_fp = fingerprint(master_key)
        self._wall = wall
        self._failures: dict[str, list[float]] = {}
        if keys is not None:
            keys.on_change(self._key_changed)

    # -- sign in / out ----------------------------------------------------------------
    async def sign_in(self, secret: str, peer: str) -> tuple[str, Session]:
        """Check ``secret``; returns (cookie token, session). Raises Unauthorized/Forbidden."""
        self._check_throttle(peer)
        secret = secret.strip()
        if hmac.compare_digest(hashlib.sha256(secret.encode()).digest(),
                               hashlib.sha256(self._master.encode()).digest()):
            return await self._open("master", None, self._master_fp)
        if self._keys is None or not secret:
            self._failed(peer)
            raise Unauthorized("That is not the master key.", code="invalid_api_key")
        try:
            verified = await self._keys.verify(secret)
        except Unauthorized:
            self._failed(peer)
            raise Unauthorized("That is neither the master key nor an active virtual key.",
                               code="invalid_api_key") from None
        row = await self._keys.get(verified.id)
        if row is None or not is_admin(row):
            self._failed(peer)
            raise Forbidden(f"Virtual key {verified.id} is not admin-scoped: sign in with the master key, or with a "
                            "key created with the Admin box ticked (metadata role 'admin').", code="not_admin")
        return await self._open("key", verified.id, fingerprint(hash_key(secret)))

    async def _open(self, kind: str, key_id: str | None, principal: str) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        now = self._wall()
        session = Session(_digest(token), kind, key_id, secrets.token_urlsafe(32), now + SESSION_SECONDS)
        t = schema.ui_sessions

        def write() -> None:
            with self._store.engine.begin() as conn:
                conn.execute(t.delete().where(t.c.expires_at < now))   # housekeeping, indexed
                conn.execute(t.insert().values(id=session.id, kind=kind, key_id=key_id, principal=principal,
                                               csrf=session.csrf, created_at=now, expires_at=session.expires_at))

        await asyncio.to_thread(write)
        return token, session

    async def sign_out(self, token: str | None) -> None:
        if token:
            await self._delete(schema.ui_sessions.c.id == _digest(token))

    # -- every request ------------------------------------------------------------------
    async def current(self, request: Request) -> Session | None:
        """The request's live session, or None (no cookie, unknown, expired, key gone)."""
        token = request.cookies.get(COOKIE)
        if not token or len(token) > 200:
            return None
        t = schema.ui_sessions

        def read() -> Any:
            with self._store.engine.connect() as conn:
                return conn.execute(sa.select(t).where(t.c.id == _digest(token))).first()

        row = await asyncio.to_thread(read)
        if row is None:
            return None
        ended = row.expires_at <= self._wall() or (row.kind == "master" and row.principal != self._master_fp)
        if row.kind == "key" and not ended:
            key = await self._keys.get(row.key_id) if self._keys is not None else None
            ended = not may_sign_in(key, self._wall())
        if ended:   # deleted, so that no later change to the key can bring it back
            await self._delete(t.c.id == row.id)
            return None
        return Session(row.id, row.kind, row.key_id, row.csrf, row.expires_at)

    async def _key_changed(self, before: Any, after: Any) -> None:
        """A key was updated or revoked: if it could not sign in before or after the change,
        its sessions have ended (role taken away, revoked, expired — then extended) for good."""
        key = after if after is not None else before
        now = self._wall()
        if key is not None and not (may_sign_in(before, now) and may_sign_in(after, now)):
            await self._delete(schema.ui_sessions.c.key_id == key.id)

    async def _delete(self, where: Any) -> None:
        t = schema.ui_sessions

        def delete() -> None:
            with self._store.engine.begin() as conn:
                conn.execute(t.delete().where(where))

        await asyncio.to_thread(delete)

    async def policy(self, session: Session) -> Any:
        """The key policy a session's calls run under (None for the master key: no limits)."""
        if session.kind != "key" or self._keys is None:
            return None
        from ..keys import key_policy  # the same policy the API enforces, its privacy rule included

        return key_policy(await self._keys.get(session.key_id))

    # -- throttle -----------------------------------------------------------------------
    def _check_throttle(self, peer: str) -> None:
        now = self._wall()
        recent = [t for t in self._failures.get(peer, ()) if t > now - FAILURE_WINDOW]
        self._failures[peer] = recent
        if len(recent) >= MAX_FAILURES:
            raise ApiError(f"too many failed sign-ins from this address; try again in "
                           f"{int(FAILURE_WINDOW - (now - recent[0])) + 1} s", status=429, kind="rate_limit",
                           code="too_many_sign_ins")

    def _failed(self, peer: str) -> None:
        if len(self._failures) > 10_000:
            self._failures.clear()
        self._failures.setdefault(peer, []).append(self._wall())


def check_csrf(request: Request, session: Session | None, submitted: str | None) -> None:
    """Refuse a state-changing request without the session's token, or sent from another site."""
    check_origin(request)
    if session is None or not same_token(submitted, session.csrf):
        raise Forbidden("the form's security token is missing or stale; reload the page and try again",
                        code="csrf_failed")


def check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if urlsplit(origin).netloc.lower() != host.lower():
            raise Forbidden("cross-site request refused", code="csrf_failed")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
