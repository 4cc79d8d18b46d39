"""The fallback loop, written once: walk a route's targets, retry, fall back, keep score.

:class:`AttemptLoop` is an async iterator of *admitted* attempts. Before handing out a
target it checks the circuit breaker (an open circuit is skipped with no network call) and
takes the provider/target rate limits (waiting up to their bound). The caller makes the
call — a chat, a stream up to its first output, an embedding, an image — and reports back
with :meth:`note_success` (``settlement.py`` then settles it) or :meth:`failed`; ``failed``
applies the fallback table (``fallback.py``): re-raise, retry the same target after a
backoff, or move on (for a context-window error, only to targets with a larger window; past a
fallback target that lacks a capability the call needs, while the first target raises it).
Chat, streams, embeddings and images, async and sync, all use this one loop.

The call's deadline (its ``timeout=``, else ``[defaults] timeout``: "to its response head,
retries included", as on the direct SDK path) bounds the walk from its first attempt on: no
retry backoff or ``Retry-After`` is slept past it (a retry that would not fit is not made: the
fallback table moves the call on, or it fails with its last error), no attempt is started once
it has passed, and an attempt that could outlive it is given only the time that is left for its
response head (:attr:`Slot.head_timeout`: a stream whose head came in time then runs on
``idle_timeout`` between its pieces, as on the direct SDK path). Waiting for rate-limit room is not counted: ``[limits] max_wait``
bounds that, as the operator set it (the deadline moves on by what such a wait took).

What an attempt took is always given back exactly once: a failure that never reached the
upstream (an unsupported capability, a refused attachment) releases its rate-limit ticket
and its half-open probe slot and says nothing about the target's health; a cancelled
attempt keeps its token estimate (the provider may bill it) and frees its probe slot.
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass, replace

from .._errors import AllTargetsFailed, CircuitOpen, GenerationFailedError, RateLimitExceeded
from .._types import Usage
from .breaker import BreakerPolicy
from .clock import Clock
from .config import RouteConfig
from .fallback import Verdict, classify, reached_upstream, throttled_for
from .ratelimit import RateLimiter, Reservation, refused, reservation_of
from .router import ResolvedTarget
from .state import AttemptAdmission, AttemptAsk, StateBackend
from .traces import CallTracker

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
#: A Retry-After longer than this is not waited for: the next target is tried instead.
MAX_RETRY_AFTER_SECONDS = 30.0


@dataclass(slots=True)
class Slot:
    target: ResolvedTarget
    started: float
    probe: bool                  # holds the half-open probe slot (until its first output)
    reservation: Reservation | None
    #: let through as the half-open probe: a failure at any point, even after its first
    #: output closed the circuit, reopens it
    was_probe: bool = False
    #: the attempt's own ``timeout=``: the call's (None: the target's as resolved)
    timeout: float | None = None
    #: at most this long to its response head: what is left of the call's deadline, when the
    #: attempt could otherwise outlive it (``AttemptLoop._head_timeout``); never bounds the body
    head_timeout: float | None = None


class AttemptLoop:
    def __init__(self, route: RouteConfig, targets: list[ResolvedTarget], *, tracker: CallTracker,
                 state: StateBackend, limiter: RateLimiter, breaker: BreakerPolicy, clock: Clock,
                 tokens: int, prompt_tokens: int, retries: int, rng: random.Random,
                 deadline: float = math.inf, timeout: float | None = None, first_byte: float = math.inf) -> None:
        """``deadline``: the call's, in seconds from its first attempt. ``timeout``: the call's own
        ``timeout=``, which every attempt gets; ``first_byte``: how long an attempt without one
        may wait for its response head (``[defaults] first_byte_timeout``)."""
        self.route = route
        self._targets = targets
        self._tracker = tracker
        self._state = state
        self._limiter = limiter
        self._breaker = breaker
        self._clock = clock
        self._tokens = tokens
        self._prompt_tokens = prompt_tokens
        self._retries = retries
        self._rng = rng
        self._seconds = deadline
        self._deadline: float | None = None   # on ``clock``: set when the first attempt starts
        self._timeout = timeout
        self._first_byte = first_byte
        self._next = 0
        self._tries = 0                       # attempts made at the current target
        self._retry: tuple[ResolvedTarget, float] | None = None
        self._min_context: int | None = None  # set by a context-window error
        #: An attempt was cut off in flight (cancelled): the provider may bill it.
        self.cut_off = False
        #: the first attempt, admitted together with the call (``StateBackend.admit``)
        self._pre: tuple[ResolvedTarget, AttemptAsk, AttemptAdmission] | None = None

    @property
    def targets(self) -> list[ResolvedTarget]:
        """The targets the call may walk, in order (its spans name each attempt's provider and server)."""
        return self._targets

    @property
    def tokens(self) -> int:
        """The call's token estimate, as admitted (prompt estimate plus the output allowance)."""
        return self._tokens

    def booked(self, used: Usage | None) -> int | None:
        """What an interrupted call books against tpm: its estimate (None keeps it), or what the
        broken stream is known to have used (``CloverleafError.stream_usage``) when that is more."""
        if used is None or used.total_tokens <= self._tokens:
            return None
        return used.total_tokens

    def preadmit(self, target: ResolvedTarget, ask: AttemptAsk, admission: AttemptAdmission) -> None:
        """Use this admission (made with the call's own) for the first attempt at ``target``."""
        self._pre = (target, ask, admission)

    async def discard(self) -> None:
        """Give back a first-attempt admission that was never used (the call ended first: a
        cache hit, an error before any attempt)."""
        pre, self._pre = self._pre, None
        if pre is None:
            return
        target, ask, admission = pre
        grant = admission.grant
        if grant is not None and grant.ticket is not None:
            await self._state.release(grant.ticket)
        if admission.decision.probe and grant is not None and grant.granted:
            await self._state.breaker_abandon(target.key)

    def __aiter__(self) -> AttemptLoop:
        return self

    async def __anext__(self) -> Slot:
        while True:
            if self._next and self.time_left() <= 0.0:   # no time is left for another attempt
                raise StopAsyncIteration
            if self._retry is not None:
                target, delay = self._retry
                self._retry = None
                await self._clock.sleep(delay)
            else:
                if self._next >= len(self._targets):
                    raise StopAsyncIteration
                target = self._targets[self._next]
                self._next += 1
                self._tries = 0
                if self._min_context is not None and not (target.context_window or 0) > self._min_context:
                    continue
            slot = await self._admit(target)
            if slot is not None:
                self._tries += 1
                return slot

    async def _admit(self, target: ResolvedTarget) -> Slot | None:
        pre = self._pre
        if pre is not None:
            if pre[0] is target:
                self._pre = None
                return self._use(target, pre[1], pre[2])
            await self.discard()
        asked = self._clock.now()
        decision = await self._state.breaker_acquire(target.key, asked, self._breaker)
        if not decision.allowed:
            self._skip(target, CircuitOpen(target.key, decision.retry_after))
            return None
        try:
            reservation = await self._limiter.acquire(*self._limiter.attempt_buckets(target, self._tokens))
        except BaseException as exc:   # full, or cancelled while waiting for room: the probe was not used
            if decision.probe:
                await self._state.breaker_abandon(target.key)
            if not isinstance(exc, RateLimitExceeded):
                raise
            self._skip(target, exc)
            return None
        return self._slot(target, decision.probe, reservation, asked)

    def _slot(self, target: ResolvedTarget, probe: bool, reservation: Reservation | None,
              asked: float | None = None) -> Slot:
        """An admitted attempt. ``asked``: when it began to wait for rate-limit room, a wait the
        call's deadline does not count (nor the call's own admission: it starts here)."""
        now = self._clock.now()
        deadline = self._deadline
        if deadline is None:
            deadline = now + self._seconds
        elif asked is not None:
            deadline += now - asked
        self._deadline = deadline
        return Slot(target, now, probe, reservation, probe, self._timeout, self._head_timeout(target, deadline - now))

    def _head_timeout(self, target: ResolvedTarget, left: float) -> float | None:
        """What is left of the call's deadline, when the attempt's wait for its response head
        could otherwise outlive it (None: its own timeouts stand)."""
        if left < (self._timeout or target.timeout or self._first_byte):
            return max(left, 0.001)
        return None

    def time_left(self) -> float:
        """Seconds until the call's deadline (what a retry's wait must fit into)."""
        deadline = self._deadline
        return math.inf if deadline is None else deadline - self._clock.now()

    def _use(self, target: ResolvedTarget, ask: AttemptAsk, admission: AttemptAdmission) -> Slot | None:
        """The pre-admitted first attempt (its wait was slept with the call's)."""
        decision, grant = admission.decision, admission.grant
        if not decision.allowed:
            self._skip(target, CircuitOpen(target.key, decision.retry_after))
            return None
        if grant is None or not grant.granted:   # the probe slot, if any, was handed back with it
            self._skip(target, refused(grant) if grant is not None else CircuitOpen(target.key, None))
            return None
        reservation = reservation_of(list(ask.buckets), grant) if ask.buckets else None
        return self._slot(target, decision.probe, reservation)

    def _skip(self, target: ResolvedTarget, error: Exception) -> None:
        """A target refused locally (open circuit, full rate limit): record it, maybe move on."""
        self._tracker.add_attempt(target.key, target.provider, error, 0.0)
        if not classify(error, self.route).fallback:
            raise error

    # -- outcomes reported by the caller ----------------------------------------------
    def latency_ms(self, slot: Slot) -> float:
        return (self._clock.now() - slot.started) * 1000.0

    def note_success(self, slot: Slot) -> float:
        """A success's trace half: the attempt is on the call's record now."""
        latency = self.latency_ms(slot)
        self._tracker.add_attempt(slot.target.key, slot.target.provider, None, latency)
        return latency

    async def settle_success(self, slot: Slot, usage: Usage | None, latency: float) -> None:
        """A success's shared-state half (what ``StateBackend.finish`` does in one operation):
        rate limits, breaker, latency score."""
        await self._limiter.settle(slot.reservation, usage.total_tokens if usage is not None else None)
        await self._state.breaker_record(slot.target.key, True, self._clock.now(), self._breaker)
        await self._state.record_latency(slot.target.key, latency)

    async def answered(self, slot: Slot) -> None:
        """A stream's first output: the target is up. A half-open probe closes the circuit
        now, not when a stream that may run for minutes ends (by then the probe slot would
        have timed out and let a second probe in)."""
        if slot.probe:
            slot.probe = False
            await self._state.breaker_record(slot.target.key, True, self._clock.now(), self._breaker)

    async def record_failure(self, slot: Slot, error: BaseException, *, output_sent: bool = False) -> Verdict:
        """Book a failed attempt (trace, rate limits, breaker) and return its verdict."""
        target = slot.target
        self._tracker.add_attempt(target.key, target.provider, error, self.latency_ms(slot))
        verdict = classify(error, self.route)
        if not reached_upstream(error):
            await self._limiter.release(slot.reservation)
        elif isinstance(error, GenerationFailedError) and error.response is not None:
            # a whole answer the provider billed, then called failed: its reported usage counts
            await self._limiter.settle(slot.reservation, error.response.usage.total_tokens)
        else:   # the request went out: it counts; its tokens too if output was sent
            used = getattr(error, "stream_usage", None)
            await self._limiter.settle(slot.reservation, self.booked(used) if output_sent else 0)
        if verdict.target_fault:
            snap = await self._state.breaker_record(target.key, False, self._clock.now(), self._breaker,
                                                    type(error).__name__, probe=slot.was_probe,
                                                    retry_after=throttled_for(error))
            if snap.state == "open" and self._breaker.enabled and verdict.retry:
                # this failure opened the circuit (or found it open): a retry would only be
                # refused by it, after a backoff, and hide the upstream's own error
                verdict = replace(verdict, retry=False)
        elif slot.probe:   # says nothing about the target's health: the next call may probe
            await self._state.breaker_abandon(target.key)
        return verdict

    async def failed(self, slot: Slot, error: BaseException) -> None:
        """Book a failed attempt; re-raise ``error`` unless the loop should go on."""
        verdict = await self.record_failure(slot, error)
        if not verdict.fallback and not (verdict.skip_fallback and slot.target is not self._targets[0]):
            if verdict.retry and self._retry_same(slot, error):   # the upstream said to retry it
                return
            raise error
        if verdict.larger_context_only:
            # the next target must have a known window larger than this one's, or, when this
            # one's is unknown, larger than the prompt itself
            needed = slot.target.context_window or self._prompt_tokens
            self._min_context = max(self._min_context or 0, needed)
        elif verdict.retry:
            self._retry_same(slot, error)   # else: on to the next target, if any

    def _retry_same(self, slot: Slot, error: BaseException) -> bool:
        """Schedule a retry of ``slot``'s target if one is left and its wait fits the deadline."""
        if self._tries > self._retries:
            return False
        delay = self._backoff(getattr(error, "retry_after", None))
        if delay is None or delay >= self.time_left():
            return False
        self._retry = (slot.target, delay)
        return True

    async def abandoned(self, slot: Slot) -> None:
        """The caller went away mid-attempt (cancelled): keep the estimate, free a probe."""
        self.cut_off = True
        self._tracker.add_attempt(slot.target.key, slot.target.provider, asyncio.CancelledError("cancelled"),
                                  self.latency_ms(slot))
        await self._limiter.settle(slot.reservation, None)
        if slot.probe:
            await self._state.breaker_abandon(slot.target.key)

    def _backoff(self, retry_after: float | None) -> float | None:
        if retry_after is not None:
            return retry_after if retry_after <= MAX_RETRY_AFTER_SECONDS else None
        ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** (self._tries - 1))
        jitter: float = 0.5 + self._rng.random() / 2   # "equal jitter": never zero, never in lockstep
        return ceiling * jitter

    # -- the end -----------------------------------------------------------------------
    def exhausted(self) -> BaseException:
        """The error to raise when no target is left: AllTargetsFailed, or for a plain model
        id (a one-target route the caller never configured) that target's own error — the last
        one its upstream gave, when it gave any (not a local refusal that followed it)."""
        attempts = self._tracker.attempts
        if self.route.implicit:
            errors = [a.error for a in attempts if a.error is not None]
            answered = [e for e in errors if reached_upstream(e)]
            if errors:
                return (answered or errors)[-1]
        return AllTargetsFailed(self.route.name, list(attempts))
