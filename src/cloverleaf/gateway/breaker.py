"""Circuit breaker per target: stop calling a target that keeps failing, probe it later.

closed --(``failure_threshold`` consecutive failures)--> open --(``cooldown`` elapsed)-->
half-open: exactly one probe call is let through; success closes the circuit, failure
reopens it for another cooldown. An open circuit rejects at once, with no network call.

A streaming probe closes the circuit at its first output (a stream may run for longer than
the probe timeout, which would otherwise let a second probe in), but it stays *the probe*:
if it fails later, at any point, the circuit reopens at once (``probe=True`` below) rather
than counting one failure towards the threshold — otherwise a target that breaks every
stream after its first token would get ``failure_threshold`` broken streams per cooldown.

A throttled upstream's 429 that opens the circuit and says when to come back
(``Retry-After``) opens it for that long, if that is shorter than ``cooldown_seconds``: a
provider throttling for two seconds is not shut out for a minute, its traffic sent to the
route's (often dearer) fallbacks all that time. The policy's cooldown stays the ceiling, and
one second the floor (a ``Retry-After: 0`` must not turn the breaker into a probe per call).
An unwell target's 5xx keeps the policy's cooldown whatever it says.

The transitions are pure functions over a small record, so every state backend (memory
now, Redis later) applies the same rules atomically in its own way, and tests drive them
with a manual clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

BreakerStateName = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    cooldown_seconds: float = 60.0
    #: A half-open probe that never reports back (its caller vanished) frees the slot after this.
    probe_timeout_seconds: float = 60.0
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """What ``gateway.breakers[target]`` shows (and the admin API will)."""

    state: BreakerStateName = "closed"
    consecutive_failures: int = 0
    opened_at: float | None = None
    probe_started_at: float | None = None
    last_error: str | None = None
    #: this opening's cooldown, when a throttled upstream's ``Retry-After`` made it shorter than the policy's
    cooldown_seconds: float | None = None

    def cooldown(self, policy: BreakerPolicy) -> float:
        return policy.cooldown_seconds if self.cooldown_seconds is None else self.cooldown_seconds

    def retry_after(self, now: float, policy: BreakerPolicy) -> float | None:
        if self.state != "open" or self.opened_at is None:
            return None
        return max(0.0, self.opened_at + self.cooldown(policy) - now)


#: The state of a healthy target (immutable, so shared rather than built per call).
CLOSED = BreakerSnapshot()


@dataclass(frozen=True, slots=True)
class BreakerDecision:
    allowed: bool
    probe: bool = False
    retry_after: float | None = None


def on_acquire(snap: BreakerSnapshot, now: float, policy: BreakerPolicy) -> tuple[BreakerSnapshot, BreakerDecision]:
    """May a call go to this target now? Returns the new record and the decision."""
    if not policy.enabled or snap.state == "closed":
        return snap, BreakerDecision(True)
    if snap.state == "open":
        assert snap.opened_at is not None
        remaining = snap.opened_at + snap.cooldown(policy) - now
        if remaining > 0:
            return snap, BreakerDecision(False, retry_after=remaining)
        return replace(snap, state="half_open", probe_started_at=now), BreakerDecision(True, probe=True)
    # half-open: one probe at a time
    started = snap.probe_started_at
    if started is not None and now - started < policy.probe_timeout_seconds:
        return snap, BreakerDecision(False, retry_after=started + policy.probe_timeout_seconds - now)
    return replace(snap, probe_started_at=now), BreakerDecision(True, probe=True)


def on_result(snap: BreakerSnapshot, ok: bool, now: float, policy: BreakerPolicy,
              error: str | None = None, probe: bool = False,
              retry_after: float | None = None) -> BreakerSnapshot:
    """Record the outcome of a call that ``on_acquire`` allowed (``probe``: it was let
    through as the half-open probe, even if its first output has closed the circuit since;
    ``retry_after``: the wait a throttled upstream asked for, if it named one)."""
    if ok:
        return CLOSED
    if snap.state == "half_open" or (probe and policy.enabled):
        return BreakerSnapshot("open", snap.consecutive_failures + 1, now, None, error,
                               opening_cooldown(retry_after, policy))
    failures = snap.consecutive_failures + 1
    if snap.state == "closed" and failures >= policy.failure_threshold:
        return BreakerSnapshot("open", failures, now, None, error, opening_cooldown(retry_after, policy))
    return replace(snap, consecutive_failures=failures, last_error=error)


#: The shortest cooldown a throttled upstream's ``Retry-After`` can give an opened circuit.
MIN_THROTTLED_COOLDOWN_SECONDS = 1.0


def opening_cooldown(retry_after: float | None, policy: BreakerPolicy) -> float | None:
    """The cooldown of a circuit a throttled upstream opened now: its wait, at least a second,
    when that is shorter than the policy's (None: the policy's)."""
    if retry_after is None:
        return None
    cooldown = max(MIN_THROTTLED_COOLDOWN_SECONDS, retry_after)
    return cooldown if cooldown < policy.cooldown_seconds else None


def on_abandon(snap: BreakerSnapshot) -> BreakerSnapshot:
    """A probe slot was granted but no call was made (e.g. a local rate limit said no)."""
    if snap.state == "half_open":
        return replace(snap, probe_started_at=None)
    return snap


def as_reported(snap: BreakerSnapshot, now: float, wall: float, policy: BreakerPolicy) -> BreakerSnapshot:
    """``snap`` as a status page shows it. Its times are on the state's clock (``now``):
    monotonic in memory, epoch on Redis; shown, they are epoch seconds (``wall`` is the same
    moment as ``now``) on every backend. An open circuit whose cooldown has passed is shown as
    what it is now, ``half_open``: the next call is let through as its probe (the record turns
    half-open only when that call comes)."""
    shift = wall - now
    opened = None if snap.opened_at is None else snap.opened_at + shift
    probe = None if snap.probe_started_at is None else snap.probe_started_at + shift
    state = snap.state
    if state == "open" and policy.enabled and snap.retry_after(now, policy) == 0.0:
        state = "half_open"
    if (state, opened, probe) == (snap.state, snap.opened_at, snap.probe_started_at):
        return snap
    return replace(snap, state=state, opened_at=opened, probe_started_at=probe)
