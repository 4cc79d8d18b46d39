"""Where breakers, rate-limit windows, budget counters and latency averages live: behind one interface.

Every operation is one atomic method (``take``, ``breaker_acquire``, ...), never a
get-then-set pair, so a shared backend (Redis, with one Lua script per method) can replace
:class:`~cloverleaf.gateway.state.memory.MemoryState` without the router changing: several
server workers would then share limits instead of multiplying them. The in-memory backend
is per process, and says so.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import NamedTuple

from ..breaker import BreakerDecision, BreakerPolicy, BreakerSnapshot

#: weight of the newest latency in a target's moving average (every backend, every path)
LATENCY_ALPHA = 0.3


class Bucket(NamedTuple):
    """One rolling-window limit taking ``amount`` (requests or tokens) for this call.
    (Tuples: a few are built per call, and a tuple is the cheapest immutable record.)

    ``max_wait``: the longest this bucket may make the call wait, on top of the operation's
    own ``max_wait`` (the smaller wins). Buckets of different scopes taken together wait by
    their own rules: a virtual key's never wait (0) while its route's may."""

    key: str          # e.g. "target:openai/gpt-4o:rpm"
    limit: float      # per window
    amount: float
    max_wait: float = math.inf


class Lanes(NamedTuple):
    """A scope's request and token limits taken as ONE bucket: a call takes one request and
    ``tokens`` tokens, in one rolling window with two lanes (rpm, tpm).

    Why: a route or a key with both limits was two buckets, so every call walked two logs,
    made two ticket entries and settled two; the two windows always move together (one
    admission, at one time), and one log with two running totals answers both for the work of
    one (``window.PairLog``). Only the memory state keeps it as one; a backend that keeps the
    windows apart (Redis: its scripts and the keys it holds are unchanged) takes the lanes as
    the two buckets they stand for (:func:`flatten`). A lane without a limit (``math.inf``) is
    no bucket: memory logs nothing in it either (so a limit given to it later starts from an
    empty lane, as in Redis, not from a minute of token estimates nobody settled). The lanes' keys are the buckets' (``route:smart:rpm``,
    ``route:smart:tpm``): refusals, settlement and status name them as before."""

    scope: str              # "route:smart": where the memory state logs the pair
    requests_limit: float   # rpm (math.inf: none)
    tokens_limit: float     # tpm (math.inf: none)
    tokens: float           # what this call takes of the token lane (it takes one request)
    max_wait: float
    requests_key: str       # "route:smart:rpm"
    tokens_key: str         # "route:smart:tpm"

    def buckets(self) -> list[Bucket]:
        """The buckets the lanes stand for: one per lane that has a limit."""
        out = []
        if self.requests_limit != math.inf:
            out.append(Bucket(self.requests_key, self.requests_limit, 1.0, self.max_wait))
        if self.tokens_limit != math.inf:
            out.append(Bucket(self.tokens_key, self.tokens_limit, self.tokens, self.max_wait))
        return out


#: What a backend is asked to take: single buckets and two-lane ones.
AnyBucket = Bucket | Lanes


def flatten(buckets: Sequence[AnyBucket]) -> list[Bucket]:
    """``buckets`` with every :class:`Lanes` replaced by the buckets it stands for (in order)."""
    out: list[Bucket] = []
    for b in buckets:
        if isinstance(b, Lanes):
            out += b.buckets()
        else:
            out.append(b)
    return out


class Grant(NamedTuple):
    """The result of :meth:`StateBackend.take` (a tuple, like the other records here: one is
    built for every call's first attempt, and a frozen dataclass costs a ``__setattr__`` a field).

    ``granted``: the amounts were reserved at ``now + wait`` (the caller sleeps ``wait``
    first). Not granted: nothing was taken; ``wait`` is how long it would have had to wait.
    """

    granted: bool
    wait: float
    ticket: str | None = None
    #: The bucket that forced the longest wait (for the error message); when refused, the
    #: bucket that refused (``wait`` is then how long that one would have made it wait).
    limiting_key: str | None = None
    #: The clock time the reservation is logged at: ``now + wait``, or later when the amounts
    #: fit at once but a bucket's newest admission is later (see ``Log.earliest``).
    at: float | None = None


class Hold(NamedTuple):
    """One budget reservation for this call: ``amount`` dollars against the counter ``key``
    (``"<scope>|<period>"``, e.g. ``"route:smart|2025-01-31"``) whose limit is ``limit``."""

    key: str
    limit: float
    amount: float


#: ``new_bucket((key, limit, amount, max_wait))`` is ``Bucket(key, limit, amount, max_wait)``
#: without the Python-level ``__new__`` a NamedTuple call runs (this is what that ``__new__``
#: does, in C): a call's token buckets and budget holds are built for every call.
new_bucket: Callable[[tuple[str, float, float, float]], Bucket] = partial(tuple.__new__, Bucket)
#: ``new_hold((key, limit, amount))``: a :class:`Hold`, the same way.
new_hold: Callable[[tuple[str, float, float]], Hold] = partial(tuple.__new__, Hold)
#: ``new_lanes((scope, rpm, tpm, tokens, max_wait, rpm_key, tpm_key))``: a :class:`Lanes`, the same way.
new_lanes: Callable[[tuple[str, float, float, float, float, str, str]], Lanes] = partial(tuple.__new__, Lanes)


class AttemptAsk(NamedTuple):
    """The first attempt of a call, admitted in the same operation as the call itself: the
    target's circuit breaker, then its provider/target rate-limit buckets.

    ``max_wait`` (and each bucket's own) bounds only the wait the attempt *adds* to its call's:
    the call sleeps its route's wait anyway, and an attempt whose target has room then (or no
    limits at all) goes with it, whatever its own bound."""

    key: str                    # the target (its breaker)
    policy: BreakerPolicy
    buckets: Sequence[AnyBucket]
    max_wait: float


class AttemptAdmission(NamedTuple):
    """What :meth:`StateBackend.admit` decided for an :class:`AttemptAsk` (when the call
    itself was granted). ``decision``: the breaker's (a refusal took nothing). ``grant``: the
    buckets', placed no earlier than the call's own admission; not granted → nothing was
    taken and a probe slot the breaker gave was handed back. ``grant.wait`` counts from the
    same ``now`` as the call's wait."""

    decision: BreakerDecision
    grant: Grant | None = None


class Admission(NamedTuple):
    """The result of :meth:`StateBackend.admit`: rate-limit buckets and budget holds, all or nothing.

    Granted: everything is reserved at ``now + wait`` and ``ticket`` closes it. Refused by a
    bucket: ``limiting_key`` is the bucket and ``wait`` how long it would have taken. Refused
    by a budget: ``limiting_key`` is the hold's key, with the counter's ``spent`` and
    ``reserved``. ``unseeded``: the backend does not hold these budget counters yet (a fresh
    start, or a Redis that came back empty); nothing was taken — seed them from the ledger
    (:meth:`StateBackend.budget_seed`) and ask again.
    """

    granted: bool
    wait: float = 0.0
    ticket: object = None
    limiting_key: str | None = None
    spent: float = 0.0
    reserved: float = 0.0
    unseeded: tuple[str, ...] = ()
    #: the first attempt's admission, when one was asked for and the call was granted
    attempt: AttemptAdmission | None = None


class StateBackend(ABC):
    """Shared mutable gateway state. All times are the gateway clock's ``now()``."""

    #: True when several processes see the same state (Redis); False for memory.
    shared: bool = False

    @abstractmethod
    async def take(self, buckets: Sequence[AnyBucket], now: float, max_wait: float, window: float = 60.0) -> Grant:
        """Reserve every bucket's amount at the earliest time all of them allow, if that is
        within ``max_wait`` and within each bucket's own ``Bucket.max_wait`` of the moment
        that bucket alone would allow; all or nothing."""

    @abstractmethod
    async def settle(self, ticket: str, amounts: Mapping[str, float]) -> None:
        """Close a reservation, replacing what it took from the named keys with the real
        amounts (reconcile the token estimate with the reported usage); other keys keep theirs."""

    @abstractmethod
    async def release(self, ticket: str) -> None:
        """Give back everything a reservation took (the call never reached the upstream)."""

    @abstractmethod
    async def usage(self, key: str, now: float, window: float = 60.0) -> float:
        """How much of ``key`` the last window holds (for status pages and tests)."""

    # -- one call's limits and budgets in one operation -------------------------------
    @abstractmethod
    async def admit(self, buckets: Sequence[AnyBucket], holds: Sequence[Hold], now: float, max_wait: float,
                    window: float = 60.0, attempt: AttemptAsk | None = None) -> Admission:
        """Take every bucket (as :meth:`take`) and reserve every hold (``spent + reserved +
        amount <= limit``), all or nothing; then, if the call was granted and ``attempt`` is
        given, admit its first attempt (breaker, then buckets, as ``breaker_acquire`` and
        ``take`` would). ONE atomic operation — one round trip for a shared backend: a call's
        limit, budget and breaker checks together."""

    @abstractmethod
    async def close(self, ticket: object, amounts: Mapping[str, float] | None, cost: float,
                    costs: Sequence[float] | None = None) -> None:
        """Close an :meth:`admit` ticket: its buckets as :meth:`settle` with ``amounts``
        (``None``: give everything back, as :meth:`release`), and every hold's reservation
        turned into ``cost`` dollars of spend (0 releases it). Closing twice does nothing.

        ``costs``: one figure per hold, in the order they were admitted, instead of ``cost``
        for all — a call's holds are charged differently when a model budget's model did not
        answer it (``gateway/model_budgets.py``): that hold is released, the others charged."""

    async def finish(self, ticket: object, amounts: Mapping[str, float], cost: float, attempt_ticket: str | None,
                     attempt_amounts: Mapping[str, float], target: str, now: float, policy: BreakerPolicy,
                     latency_ms: float, costs: Sequence[float] | None = None) -> None:
        """A successful call's whole settlement: :meth:`close` its own ticket (if any; ``cost``
        and ``costs`` as there), settle the answering attempt's ticket (if any), record the
        target's success and latency. A shared backend does it in ONE round trip; this default
        runs the four in order — the call's own ticket first, so a later step failing never
        strands it."""
        if ticket is not None:
            await self.close(ticket, amounts, cost, costs)
        if attempt_ticket is not None:
            await self.settle(attempt_ticket, attempt_amounts)
        await self.breaker_record(target, True, now, policy)
        await self.record_latency(target, latency_ms)

    @abstractmethod
    async def budget_seed(self, key: str, spent: float) -> None:
        """Start the counter ``key`` at ``spent`` (the ledger's figure) unless it exists."""

    @abstractmethod
    async def budget_raise(self, key: str, spent: float) -> None:
        """Make the counter ``key``'s settled spend at least ``spent`` (the ledger's figure when a
        budget starts to apply to spend made before it), creating the counter if it is absent;
        its open reservations stay. Never lowers it: spend it holds and the ledger does not yet
        (other processes' last flush interval) stays counted."""

    @abstractmethod
    async def budget_usage(self, key: str) -> tuple[float, float] | None:
        """(spent, reserved) of a budget counter, or None when the backend does not hold it."""

    @abstractmethod
    async def breaker_acquire(self, key: str, now: float, policy: BreakerPolicy) -> BreakerDecision: ...

    @abstractmethod
    async def breaker_record(self, key: str, ok: bool, now: float, policy: BreakerPolicy,
                             error: str | None = None, probe: bool = False,
                             retry_after: float | None = None) -> BreakerSnapshot:
        """Fold a call's outcome into the target's breaker (``breaker.on_result``)."""

    @abstractmethod
    async def breaker_abandon(self, key: str) -> None:
        """Give back a half-open probe slot that was granted but not used."""

    @abstractmethod
    async def breaker_snapshots(self) -> dict[str, BreakerSnapshot]: ...

    @abstractmethod
    async def record_latency(self, key: str, latency_ms: float, alpha: float = LATENCY_ALPHA) -> None:
        """Fold one latency into the key's exponential moving average."""

    @abstractmethod
    async def latencies(self, keys: Sequence[str]) -> dict[str, float]:
        """Moving averages for the keys that have one."""

    @property
    def location(self) -> str:
        """Where the state lives, fit to print (a URL without its password)."""
        return "memory"

    async def ping(self) -> None:  # noqa: B027 - memory is always there
        """Raise :class:`~cloverleaf.StateUnavailable` when the backend cannot be reached (the
        server's ``/ready``)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        pass
