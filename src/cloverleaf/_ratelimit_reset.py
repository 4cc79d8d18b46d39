"""The wait a 429 implies through its rate-limit headers when it names none in ``Retry-After``.

OpenAI answers many 429s without ``retry-after``/``retry-after-ms``; what it sends is when each
limit fills again, ``x-ratelimit-reset-requests`` / ``x-ratelimit-reset-tokens``, as Go durations
(``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"``), beside ``x-ratelimit-remaining-*``. Anthropic
sends ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset`` as RFC 3339
times. Without reading them a throttled call had no ``retry_after``: the SDK's
``RateLimitError.retry_after`` was None, the gateway's client was told ``Retry-After: 1`` (and
retried into the same wall), the gateway's breaker closed again before the limit refilled, and
the SDK's own retries burned their backoff a second in.

The wait is the latest reset among the limits the headers say are spent (remaining ``0``); when
they say nothing of what remains, the latest reset given; when they say every limit has room, no
hint (the 429 is about something else: concurrency, a spend cap). Anthropic's reset times are
read against the answer's own clock, its ``Date``, where it has one: against ours, a clock ahead
of the provider's put the reset in the past, a clock behind it added the skew to every wait. A
reset that has already come (a past time, ``"0s"``) names no wait: taken as "now", it made the
SDK retry at once, without backoff, into the same wall. Read only for a 429, and only
when ``Retry-After`` is absent: a provider's own wait always wins. A leaf module, as
:mod:`cloverleaf._http` is: the transport's retries and the adapters' errors both read it.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from ._http import parse_retry_after, sane_retry_after

#: (remaining header, reset header, how the reset is written) of every limit a 429 may name.
_LIMITS = (
    ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", "duration"),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", "duration"),
    ("anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset", "time"),
    ("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset", "time"),
    ("anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-input-tokens-reset", "time"),
    ("anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset", "time"),
)

_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")


def go_duration(text: str) -> float | None:
    """Seconds of a Go duration (``"6m0s"`` -> 360.0, ``"20ms"`` -> 0.02, a bare ``"2"`` -> 2.0);
    None when it is not one."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    pieces = _DURATION.findall(text)
    if not pieces or "".join(number + unit for number, unit in pieces) != text:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in pieces)


def _until(stamp: str, now: float) -> float | None:
    """Seconds from ``now`` until an RFC 3339 time (``2025-01-01T00:00:30Z``); None when unreadable."""
    try:
        when = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp() - now


def _answer_now(headers: dict[str, str]) -> float:
    """Now on the clock that wrote the answer (its ``Date``, to the second), else on ours."""
    date = headers.get("date")
    if date:
        from email.utils import parsedate_to_datetime  # only for a 429 without Retry-After

        try:
            when = parsedate_to_datetime(date)
        except (TypeError, ValueError, OverflowError):
            return time.time()
        return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()
    return time.time()


def reset_wait(headers: dict[str, str]) -> float | None:
    """Seconds until the spent limit a 429's rate-limit headers name fills again (see the module
    docstring); None when they name none."""
    spent: list[float] = []
    unsaid: list[float] = []
    now = _answer_now(headers)
    for remaining_name, reset_name, kind in _LIMITS:
        reset = headers.get(reset_name)
        if not reset:
            continue
        wait = go_duration(reset) if kind == "duration" else _until(reset, now)
        if wait is None:
            continue
        remaining = headers.get(remaining_name)
        if remaining is None:
            unsaid.append(wait)
        elif remaining.strip() in ("0", "0.0"):
            spent.append(wait)
    waits = spent or unsaid
    # a reset that has come already says nothing of when to come back: the caller's backoff does
    return sane_retry_after(max(waits)) if waits and max(waits) > 0 else None


def throttle_wait(status: int, headers: dict[str, str]) -> float | None:
    """The wait an error answer names: its ``Retry-After`` (``retry-after-ms``), else, for a 429,
    what its rate-limit headers imply (:func:`reset_wait`)."""
    asked = parse_retry_after(headers)
    if asked is None and status == 429:
        return reset_wait(headers)
    return asked


__all__ = ["go_duration", "reset_wait", "throttle_wait"]
