"""How a gateway call ends: its price on the answer, what it took settled once, one record.

However a call ends — answered, failed, cancelled, a stream closed early — the call-level
rate-limit ticket and budget reservations it took at admission are settled exactly once, with
the real usage and cost when there is an answer, and one record goes to the store's batch
writer (as ``[store] record`` allows) and to OpenTelemetry. When the provider may have billed
the call anyway (output reached the caller, or an attempt was cut off in flight) its token
estimate stays booked and its reservation is charged: cancelling is no way around a limit.

Why a module of its own: the gateway decides *what* happens to a call (admission, attempts,
fallback); this is the bookkeeping every ending shares, and the response cache's answers
(``cached_calls.py``) end through it too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .._errors import CloverleafError, StateUnavailable, StreamInterrupted, billed_answer
from .._types import Usage
from .budget import Budgets
from .call import Call
from .clock import Clock
from .protocols import EngineLike
from .router import ResolvedTarget
from .telemetry import Telemetry
from .trace_context import CallSpan

if TYPE_CHECKING:
    from .breaker import BreakerPolicy
    from .store import Store

log = logging.getLogger("cloverleaf.gateway")


class Settlement:
    def __init__(self, *, engine: EngineLike, budgets: Budgets, store: Store, telemetry: Telemetry | None,
                 clock: Clock, state_clock: Clock, breaker: BreakerPolicy, record: str,
                 close_shielded: bool) -> None:
        self._engine = engine
        self._budgets = budgets
        self._store = store
        self._telemetry = telemetry
        self._clock = clock
        self._state_clock = state_clock
        self._breaker = breaker
        #: a shared or store-backed settlement awaits I/O: a cancellation must not cut it in half
        self._shielded = close_shielded
        # [store] record: which call records the store keeps ("all" | "errors" | "none");
        # spans need a record of every call whatever the store keeps
        self._store_ok = record == "all"
        self._store_errors = record != "none"
        self.record_ok = self._store_ok or telemetry is not None
        self.record_errors = self._store_errors or telemetry is not None

    def price(self, call: Call, target: ResolvedTarget, resp: Any) -> float | None:
        """What the answer needs before it leaves: its cost, target and attempts."""
        call.finished = True
        usage = resp.usage
        cost = resp.cost if resp.cost is not None else (self._engine.cost(target.target, usage) if usage is not None
                                                        else None)
        resp.cost = cost
        resp.metadata.target = target.key
        resp.metadata.attempts = list(call.tracker.attempts)
        if call.tracker.cache is not None:
            resp.metadata.extra["cache"] = call.tracker.cache
        return cost

    async def settle_ok(self, call: Call, slot: Any, usage: Usage | None, latency: float, cost: float | None,
                        model: str | None, ready: float | None = None) -> None:
        """What can wait until the answer is on its way: shared state, budgets, the record.
        Never raises for the bookkeeping (see :meth:`_settle_answered`).

        An answer whose usage or cost is unknown (the upstream reported no usage) settles as an
        interrupted call does: its token estimate stays booked and its budgets are charged the
        reservation, which the record keeps as ``charged``: never a made-up 0."""
        target = slot.target
        counted = usage if usage is not None and usage.reported else None
        tokens = counted.total_tokens if counted is not None else None
        charge = cost if cost is not None else call.reserved_usd
        try:
            await self._settle_answered(call, slot, counted, tokens, latency, charge)
        finally:   # even when cancelled while settling: the call happened
            if self.record_ok:
                record = call.tracker.record(self._clock, status="ok", target=target.key, provider=target.provider,
                                             model=model, usage=usage, cost=cost, ttft_ms=call.ttft_ms,
                                             charged=None if cost is not None else charge or None,
                                             incomplete=getattr(call.response, "incomplete", None))
                if ready is not None:
                    record.latency_ms = (ready - call.tracker.started) * 1000.0
                self.record(call, record)

    async def finish_ok(self, call: Call, slot: Any, resp: Any) -> None:
        """A stream's end (``resp`` is None when it ended without a ``done`` event): settled
        as an answered call is, so its text already sent is never followed by an error."""
        call.finished = True
        latency = call.loop.note_success(slot)
        cost = self.price(call, slot.target, resp) if resp is not None else None
        await self.settle_ok(call, slot, resp.usage if resp is not None else None, latency, cost,
                             getattr(resp, "model", None))

    async def _settle_answered(self, call: Call, slot: Any, usage: Usage | None, tokens: int | None,
                               latency: float, charge: float) -> None:
        """Settle an answered call: its ticket and budgets, its attempt's ticket, breaker and
        latency. The answer is complete, so a failure here (the state backend went away) is
        logged once and goes no further: the caller gets the answer, the record its real cost,
        and the ledger the spend (``Budgets.close``/``finish`` write it whatever the backend
        did); what the backend could not settle comes back with its window or reservation TTL."""
        try:
            admission = call.admission
            if admission is not None and self._budgets.mode == "state":
                # the call's ticket and budgets, the attempt's ticket, breaker and latency: one operation
                call.admission = None
                target = slot.target
                work = self._budgets.finish(admission, tokens, charge, slot.reservation, target.key,
                                            self._state_clock.now(), self._breaker, latency, target)
                await (asyncio.shield(work) if self._shielded else work)
            else:
                # Each step runs even when one before it raised or was cancelled: call.finished is
                # already set, so finish_error will not settle the call's ticket and budgets later.
                try:
                    await call.loop.settle_success(slot, usage, latency)
                finally:
                    await self._close(call, tokens, charge, slot.target)
        except Exception as exc:  # noqa: BLE001 - bookkeeping never fails an answered call
            log.warning("could not settle an answered call's limits and budgets (the answer stands): %s",
                        _reason(exc))

    async def finish_error(self, call: Call, exc: BaseException) -> None:
        if call.finished:
            return
        call.finished = True
        attempts = call.tracker.attempts
        if attempts and isinstance(exc, CloverleafError) and exc.upstream_ms is None:
            exc.upstream_ms = sum(a.latency_ms for a in attempts)   # not the gateway's own time
        if isinstance(exc, StreamInterrupted):
            status = "interrupted"
        elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
            status = "cancelled"
        else:
            status = "error"
        # when the provider may have billed the call, keep its token estimate and charge its
        # reservation: cancelling a call must not be a way around a limit or a budget
        billable = call.billable
        charged = call.reserved_usd if billable else 0.0
        failed = billed_answer(exc)
        # a stream that broke after output: what it is known to have used (unreported: the
        # upstream's counts so far, the rest estimated), booked when more than the estimate
        used = getattr(exc, "stream_usage", None) if billable else None
        # the attempt the provider may bill for is the last one made: the record keeps its target,
        # so `spend --by model/provider` puts the call (of unknown cost) where it was spent
        target, provider = call.tracker.last_target() if billable or failed is not None else (None, None)
        tokens = call.loop.booked(used) if billable else 0
        cost: float | None = None
        if failed is not None:   # an answer the provider billed and called failed: its own usage and cost
            used, cost = failed.usage, failed.cost
            tokens = used.total_tokens if used.reported else call.loop.booked(used)
            charged = cost if cost is not None else call.reserved_usd
        try:
            await self.close(call, tokens, charged, _resolved(call, target))
        finally:
            if self.record_errors:   # its cost is unknown; what its budgets were charged is not
                self.record(call, call.tracker.record(self._clock, status=status, error=exc, ttft_ms=call.ttft_ms,
                                                      usage=used, cost=cost,
                                                      charged=None if cost is not None else charged or None,
                                                      target=target, provider=provider))

    async def close(self, call: Call, tokens_used: int | None, cost: float, charged_to: object = None,
                    hit: bool = False) -> None:
        """Settle the call's own rate-limit ticket and budget reservations (one state
        operation), exactly once; a failure is logged. ``charged_to``: the resolved target the
        cost is billed for (a model budget of another model is charged 0: ``Budgets.close``).
        ``hit``: a response-cache hit, which gives the route's rate-limit buckets back."""
        try:
            await self._close(call, tokens_used, cost, charged_to, hit)
        except Exception as exc:  # noqa: BLE001 - bookkeeping never fails a call; the reservation expires
            log.warning("could not settle the call's limits and budgets: %s", _reason(exc))

    async def _close(self, call: Call, tokens_used: int | None, cost: float, charged_to: object = None,
                     hit: bool = False) -> None:
        """:meth:`close`, raising what failed."""
        admission, call.admission = call.admission, None
        if admission is None:
            return
        try:
            if admission.first is not None:
                await call.loop.discard()   # a first attempt admitted with the call but never made
        finally:
            if self._shielded:   # a cancellation must not leave the reservation half settled
                await asyncio.shield(self._budgets.close(admission, tokens_used, cost, charged_to, hit))
            else:                # memory state: closing never yields, nothing to shield
                await self._budgets.close(admission, tokens_used, cost, charged_to, hit)

    def record(self, call: Call, record: Any) -> None:
        """The call's record to the store (as ``[store] record`` allows) and its spans."""
        if self._telemetry is not None:
            span = call.trace
            if isinstance(span, CallSpan):   # always, with telemetry on (``Gateway._admit``)
                self._telemetry.export(record, call.tracker.attempt_ends, span, call.request, call.response,
                                       withhold_content=call.withhold_content, targets=call.loop.targets)
            if not (self._store_ok if record.status == "ok" else self._store_errors):
                return
        try:
            self._store.record_call(record)
        except Exception as exc:  # noqa: BLE001 - bookkeeping never fails a call
            log.warning("could not queue the call record: %s", type(exc).__name__)


def _resolved(call: Call, target: str | None) -> ResolvedTarget | None:
    """The resolved target of the call's route whose key is ``target`` (the attempt a failed
    call's cost is billed for), or None."""
    if target is None:
        return None
    return next((t for t in call.loop.targets if t.key == target), None)


def _reason(exc: BaseException) -> str:
    """What to log of a bookkeeping failure: its type, and the message of a
    StateUnavailable (written to name the backend without its secrets)."""
    return f"{type(exc).__name__}: {exc}" if isinstance(exc, StateUnavailable) else type(exc).__name__

