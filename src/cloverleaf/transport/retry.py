"""Retries, once for every provider and every backend.

408/409/429/5xx/529 and connection failures are retried with exponential backoff and full
jitter, honouring ``retry-after-ms`` and ``Retry-After`` (and the providers'
``x-should-retry`` hint), bounded by ``max_retries``; a 429 whose body says the quota is
spent (OpenAI's ``insufficient_quota``) is not: waiting does not refill it. A wait longer
than ``max_retry_wait`` is not slept through: the error goes back to the caller (the gateway can fall back to
another target instead of idling). A :class:`~cloverleaf._errors.ReadTimeout` is not retried
on the same target (the upstream took the call and went quiet; trying again doubles the
wait), and nothing is tried or slept past the call's deadline (``Timeouts.total``).

The decisions are a pure object (:class:`Retry`: given what an attempt produced, wait how
long or stop); :func:`retrying` and :func:`aretrying` are the thin sync and async drivers
every send and stream of every backend runs on (see :mod:`cloverleaf._sync_async` for the
rule). ``parse_retry_after`` lives in :mod:`cloverleaf._http`, a neutral module both the
adapters (for ``RateLimitError.retry_after``) and the transport read.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar

from .._errors import ReadTimeout, TransportError
from .._http import parse_retry_after, should_retry_hint
from .._quota import body_retry_delay, says_no_retry
from .._ratelimit_reset import throttle_wait
from .base import (
    AsyncStreamHandle,
    OpenedStream,
    OpenedSyncStream,
    StreamHandle,
    SyncStreamHandle,
    Timeouts,
    redact_url,
    single_chunk,
    timeout_message,
)

__all__ = ["RETRY_STATUSES", "Retry", "RetryPolicy", "aretrying", "astream_with_retries", "parse_retry_after",
           "retrying", "stream_with_retries"]

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(slots=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0
    #: A provider asking us to wait longer than this gets its error back instead.
    max_retry_wait: float = 60.0

    def delay(self, attempt: int, headers: dict[str, str] | None) -> float | None:
        """Seconds to wait before retry number ``attempt`` (1-based), or None to give up."""
        if attempt > self.max_retries:
            return None
        if headers:
            if should_retry_hint(headers) is False:
                return None
            asked = parse_retry_after(headers)
            if asked is not None:
                return asked if asked <= self.max_retry_wait else None
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(backoff / 2, backoff)  # jitter keeps many clients from retrying in lockstep

    def limited(self, max_retries: int | None) -> RetryPolicy:
        """This policy with another retry budget (itself when ``max_retries`` is None or the same)."""
        if max_retries is None or max_retries == self.max_retries:
            return self
        return RetryPolicy(max_retries, self.base_delay, self.max_delay, self.max_retry_wait)

    @staticmethod
    def retryable_status(status: int, headers: dict[str, str]) -> bool:
        hint = should_retry_hint(headers)
        return status in RETRY_STATUSES if hint is None else hint


class ExceptionMap(Protocol):
    """A backend's one exception map: its client library's exceptions into our tree."""

    def __call__(self, exc: BaseException, url: str, hint: str | None = None, *,
                 mid_stream: bool = False, timeouts: Timeouts | None = None) -> TransportError: ...


class Answer(Protocol):
    """What an attempt produced when it got a response: a status and its headers."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> dict[str, str]: ...


A = TypeVar("A", bound=Answer)


class Retry:
    """The retry decisions of one call: pure, no sleeping and no I/O."""

    __slots__ = ("policy", "url", "hint", "attempt", "mapper", "timeouts", "deadline", "head_bound_by_deadline")

    def __init__(self, policy: RetryPolicy, url: str, hint: str | None, mapper: ExceptionMap,
                 timeouts: Timeouts | None = None) -> None:
        self.policy = policy
        self.url = url
        self.hint = hint
        self.attempt = 0
        self.mapper = mapper
        self.timeouts = timeouts
        self.deadline = time.monotonic() + timeouts.total if timeouts is not None else None
        #: the attempt waiting for its response head waits until the call's deadline, not for
        #: its own first_byte: a timeout then is the deadline's, and says so (:meth:`after_exception`)
        self.head_bound_by_deadline = False

    def remaining(self, cap: float) -> float:
        """``cap`` seconds, or less when the call's deadline comes sooner (never below 1 ms)."""
        if self.deadline is None:
            return cap
        return max(0.001, min(cap, self.deadline - time.monotonic()))

    def head_wait(self, first_byte: float) -> float:
        """How long an attempt may wait for its response head: ``first_byte`` or what is left of
        the deadline, whichever ends first, remembering which (until :meth:`head_came`)."""
        wait = self.remaining(first_byte)
        self.head_bound_by_deadline = wait < first_byte
        return wait

    def head_came(self) -> None:
        """The attempt's head arrived: a timeout from here on is the body's, not the deadline's."""
        self.head_bound_by_deadline = False

    def _fits(self, wait: float) -> bool:
        return self.deadline is None or time.monotonic() + wait < self.deadline

    def after_exception(self, exc: BaseException) -> float:
        """Seconds to wait before trying again; raises the mapped error when giving up."""
        self.attempt += 1
        err = self.mapper(exc, self.url, self.hint, timeouts=self.timeouts)
        if self.head_bound_by_deadline and isinstance(err, ReadTimeout) and self.timeouts is not None:
            # the backend named its first_byte wait, but the deadline ended it (and nothing is retried past it)
            where = redact_url(self.url)
            cause = exc.__cause__ if exc is err else exc
            kind = "left" if self.timeouts.total_is_left else "total"
            raise ReadTimeout(timeout_message(kind, where, self.timeouts.total), url=where) from cause
        wait = None
        if err.retryable and not isinstance(err, ReadTimeout):
            wait = self.policy.delay(self.attempt, None)
        if wait is None or not self._fits(wait):
            raise err from exc
        return wait

    def after_answer(self, answer: Answer) -> float | None:
        """Seconds to wait before trying again, or None to hand this answer back (one whose body
        says no retry helps, a spent quota, is handed back at once; one whose body names its wait,
        Gemini's RetryInfo, without a Retry-After, waits that: see :mod:`cloverleaf._quota`)."""
        self.attempt += 1
        if answer.status < 400 or not self.policy.retryable_status(answer.status, answer.headers):
            return None
        body = getattr(answer, "body", None) or getattr(answer, "error_body", None)
        if says_no_retry(answer.status, body):
            return None
        wait = self.policy.delay(self.attempt, answer.headers)
        if wait is not None and parse_retry_after(answer.headers) is None:
            # a wait the body names (Gemini's RetryInfo), else a 429's rate-limit reset headers
            asked = body_retry_delay(body)
            if asked is None:
                asked = throttle_wait(answer.status, answer.headers)
            if asked is not None:
                wait = asked if asked <= self.policy.max_retry_wait else None
        return wait if wait is not None and self._fits(wait) else None


def retrying(retry: Retry, attempt: Callable[[], A]) -> A:
    """The sync driver: run ``attempt`` until ``retry`` says its answer stands."""
    while True:
        try:
            answer = attempt()
        except Exception as exc:  # noqa: BLE001 - mapped (or re-raised) by Retry
            time.sleep(retry.after_exception(exc))
            continue
        wait = retry.after_answer(answer)
        if wait is None:
            return answer
        time.sleep(wait)


async def aretrying(retry: Retry, attempt: Callable[[], Awaitable[A]]) -> A:
    """The async driver: :func:`retrying`, awaiting."""
    while True:
        try:
            answer = await attempt()
        except Exception as exc:  # noqa: BLE001 - mapped (or re-raised) by Retry
            await asyncio.sleep(retry.after_exception(exc))
            continue
        wait = retry.after_answer(answer)
        if wait is None:
            return answer
        await asyncio.sleep(wait)


@contextmanager
def stream_with_retries(retry: Retry, url: str, open_once: Callable[[], OpenedSyncStream]) -> Iterator[SyncStreamHandle]:
    """A sync stream: retries happen only before any byte is handed out; an error status
    that is not retried comes back with its body (``chunks()`` yields it once)."""
    opened = retrying(retry, open_once)
    if opened.error_body is not None:
        yield StreamHandle(opened.status, opened.headers, url, iter((opened.error_body,)))
        return
    try:
        yield StreamHandle(opened.status, opened.headers, url, opened.chunks or iter(()), opened.bounded)
    finally:
        if opened.release is not None:
            opened.release()


def astream_with_retries(retry: Retry, url: str,
                         open_once: Callable[[], Awaitable[OpenedStream]]) -> AbstractAsyncContextManager[AsyncStreamHandle]:
    """The async twin of :func:`stream_with_retries`, shared by every async backend."""
    return _RetriedStream(retry, url, open_once)


class _RetriedStream:
    """:func:`astream_with_retries`' context manager: a class, not an ``@asynccontextmanager``
    generator, so that the order in which Python closes async generators cannot break it. A
    stream still open when ``asyncio.run()`` ends has two generators alive, the caller's (the
    engine's ``astream``, holding this in an ``async with``) and, before, this one; the loop's
    shutdown closed them in any order, and when this one went first, the caller's exit then
    threw into a finished generator: "an error occurred during closing of asynchronous
    generator ... generator didn't stop after athrow()" printed at the end of the program. A
    plain object has nothing for the loop to close: the caller's exit lets the connection go."""

    __slots__ = ("_retry", "_url", "_open_once", "_release")

    def __init__(self, retry: Retry, url: str, open_once: Callable[[], Awaitable[OpenedStream]]) -> None:
        self._retry = retry
        self._url = url
        self._open_once = open_once
        self._release: Callable[[], Awaitable[None]] | None = None

    async def __aenter__(self) -> AsyncStreamHandle:
        opened = await aretrying(self._retry, self._open_once)
        if opened.error_body is not None:
            return StreamHandle(opened.status, opened.headers, self._url, single_chunk(opened.error_body))
        self._release = opened.release
        return StreamHandle(opened.status, opened.headers, self._url, opened.chunks or single_chunk(b""))

    async def __aexit__(self, *exc_info: object) -> None:
        release, self._release = self._release, None
        if release is not None:
            await release()
