"""Short-lived bearer tokens an adapter must obtain before it can call (OAuth access tokens).

Vertex AI takes no long-lived key from a service account or a gcloud login: each credential
is exchanged at Google's token endpoint for an access token that lasts an hour. An adapter
that works this way returns a :class:`BearerSource` from ``Adapter.bearer_source(cfg)``; the
engine asks it for a token before sending what the adapter built, and hands it the engine's own
``send``/``asend``. So the token request goes through the same transport as the call (its
retries, timeouts, mounts and local-only peer check), and the adapter itself still does no I/O.

:class:`BearerTokens` caches one token per credential until :data:`REFRESH_MARGIN` seconds
before it expires. One caller at a time refreshes a credential: every other caller, thread or
task, on any event loop, waits for that one exchange and gets its token or its error (no
thundering herd at expiry). A failed exchange is not cached: the next call tries again. The
clock is injectable so tests move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

from .._http import HttpRequest, HttpResponse

#: A token is replaced this many seconds before its expiry (Google's client libraries use 5 minutes).
REFRESH_MARGIN = 300.0

Send = Callable[[HttpRequest], HttpResponse]
AsyncSend = Callable[[HttpRequest], Awaitable[HttpResponse]]


class TokenGrant(Protocol):
    """One credential's way to a token: the request to make, and how to read the answer."""

    #: Equal for the same credential (same file, same version of it): one cached token each.
    @property
    def key(self) -> Hashable: ...

    def token_request(self, now: float) -> HttpRequest: ...

    def read_token(self, resp: HttpResponse) -> tuple[str, float]:
        """(the access token, its lifetime in seconds); raises a ProviderError for a refusal."""
        ...


class BearerSource(Protocol):
    """A token for one credential, fetched through the caller's transport when none is fresh."""

    def token(self, send: Send) -> str: ...

    async def atoken(self, send: AsyncSend) -> str: ...


@dataclass(slots=True)
class _Slot:
    token: str | None = field(default=None, repr=False)
    refresh_at: float = 0.0
    #: The refresh in flight: its result is the token, None when its owner was cancelled.
    pending: Future[str | None] | None = None
    owner_thread: int = 0


class BearerTokens:
    """Tokens per credential, shared by sync and async callers (held by one adapter)."""

    __slots__ = ("clock", "_lock", "_slots")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        #: Seconds since the epoch: the token's expiry and a JWT's ``iat`` are read from it.
        self.clock = clock
        self._lock = threading.Lock()
        self._slots: dict[Hashable, _Slot] = {}

    def source(self, grant: TokenGrant) -> BearerSource:
        return _Bound(self, grant)

    def token(self, grant: TokenGrant, send: Send) -> str:
        while True:
            fresh, pending, owner = self._claim(grant.key)
            if fresh is not None:
                return fresh
            assert pending is not None
            if owner:
                now = self.clock()
                with _Settling(self, grant.key, pending, now) as settle:
                    return settle(grant.read_token(send(grant.token_request(now))))
            if self._owned_here(grant.key):
                # the refresh belongs to a task of this thread's event loop, which cannot run while
                # this thread waits: exchange here instead of waiting forever
                now = self.clock()
                token, _ = grant.read_token(send(grant.token_request(now)))
                return token
            shared = pending.result()   # the owner's error is raised here too
            if shared is not None:
                return shared
            # the owner was cancelled before it finished: claim the refresh again

    async def atoken(self, grant: TokenGrant, send: AsyncSend) -> str:
        while True:
            fresh, pending, owner = self._claim(grant.key)
            if fresh is not None:
                return fresh
            assert pending is not None
            if owner:
                now = self.clock()
                with _Settling(self, grant.key, pending, now) as settle:
                    return settle(grant.read_token(await send(grant.token_request(now))))
            # shielded: a waiter cancelled on its own must not cancel the refresh the others share
            shared = await asyncio.shield(asyncio.wrap_future(pending))
            if shared is not None:
                return shared

    # -- the shared refresh ------------------------------------------------------------------
    def _claim(self, key: Hashable) -> tuple[str | None, Future[str | None] | None, bool]:
        """(a fresh token) or (the refresh to wait for, False) or (a new refresh this caller owns, True)."""
        with self._lock:
            slot = self._slots.setdefault(key, _Slot())
            if slot.token is not None and self.clock() < slot.refresh_at:
                return slot.token, None, False
            if slot.pending is not None:
                return None, slot.pending, False
            slot.pending = Future()
            slot.owner_thread = threading.get_ident()
            return None, slot.pending, True

    def _owned_here(self, key: Hashable) -> bool:
        with self._lock:
            slot = self._slots.get(key)
            return slot is not None and slot.pending is not None and slot.owner_thread == threading.get_ident()

    def _finish(self, key: Hashable, pending: Future[str | None], token: str | None, refresh_at: float,
                error: BaseException | None) -> None:
        with self._lock:
            slot = self._slots[key]
            if token is not None:
                slot.token, slot.refresh_at = token, refresh_at
            if slot.pending is pending:
                slot.pending = None
        if error is not None:
            pending.set_exception(error)
        else:
            pending.set_result(token)


class _Settling:
    """``with`` block of a refresh's owner: whatever happens in it, the waiters are released
    (with the token, the error, or None when the owner was cancelled, so one of them retries)."""

    __slots__ = ("_tokens", "_key", "_pending", "_now", "_done")

    def __init__(self, tokens: BearerTokens, key: Hashable, pending: Future[str | None], now: float) -> None:
        self._tokens, self._key, self._pending, self._now = tokens, key, pending, now
        self._done = False

    def __enter__(self) -> Callable[[tuple[str, float]], str]:
        return self._settle

    def _settle(self, answer: tuple[str, float]) -> str:
        token, lifetime = answer
        self._tokens._finish(self._key, self._pending, token, self._now + lifetime - REFRESH_MARGIN, None)
        self._done = True
        return token

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self._done:
            return
        failed = exc if isinstance(exc, Exception) else None
        self._tokens._finish(self._key, self._pending, None, 0.0, failed)


@dataclass(frozen=True, slots=True)
class _Bound:
    tokens: BearerTokens
    grant: TokenGrant

    def token(self, send: Send) -> str:
        return self.tokens.token(self.grant, send)

    async def atoken(self, send: AsyncSend) -> str:
        return await self.tokens.atoken(self.grant, send)
