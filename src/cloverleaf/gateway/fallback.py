"""Which failures move a call on to the next target, which are retried, which trip a breaker.

One table, read by the attempt loop for chat, streams, embeddings and images alike:

=============================  ========  =====  ============  ==============================
error                          fallback  retry  breaker fail  why
=============================  ========  =====  ============  ==============================
RateLimitError (429)           yes       yes    yes           the target is throttling (a circuit
                                                              it opens stays open for its
                                                              Retry-After, if shorter)
QuotaExceededError             yes       no     yes           its quota is spent: seconds do not refill it
ServerError / Overloaded (5xx) yes       yes    yes           the target is unwell (Overloaded:
                                                              a 503 or 529, busy for now)
InsufficientMemoryError        yes       no     yes           the model does not fit in its memory:
                                                              the next try fails the same way
ConnectError / ConnectTimeout  yes       yes    yes           no answer at all
ReadTimeout                    yes       no     yes           it took the call and went quiet:
                                                              asking again doubles the wait
MalformedResponseError         yes       yes    yes           garbage or a cut-off stream
GenerationFailedError          no        no     no            the model's answer came out broken (finish
                                                              reason "error"): the provider billed it, so
                                                              another attempt would bill again beyond what
                                                              the call reserved; its usage and cost are
                                                              booked, and the caller gets a 502 (the
                                                              official SDKs retry that); the target is up
GenerationInterruptedError     no        no     yes           as GenerationFailedError (billed, booked, a
                                                              502), but the provider cut the answer short
                                                              for want of capacity (DeepSeek's
                                                              insufficient_system_resource): the target is
                                                              short of it, and an open circuit sends the
                                                              next calls to the route's other targets
AuthenticationError            yes       no     yes           *this target's* key is bad
PermissionDenied / NotFound    yes       no     yes           this target's account/deployment
RedirectError (3xx)            yes       no     yes           this target's base_url: the API moved
CircuitOpen                    yes       no     no            we did not call it
RateLimitExceeded (local)      if opted  no     no            ``fallback_on_rate_limit``
ContextWindowExceededError     larger    no     no            only targets with a bigger window
ContentFilterError             if opted  no     no            ``fallback_on_content_filter``
RequestTooLargeError (413)     yes       no     no            over this provider's byte limit; another's
                                                              may be larger
UnsupportedCapability          skip      no     no            the call's first target: same request, same
                                                              answer, a clear error; a fallback: skipped
InvalidRequestError            never     no     no            the request is wrong everywhere
=============================  ========  =====  ============  ==============================

A capability a target lacks is known before anything is sent. On the call's first target it is
raised (what the caller asked of the model it named cannot be done there: a clear error, never a
silent reroute); a *fallback* that lacks it is skipped, because raising there would hide the
failure that led to it and leave the targets after it untried — it is named in the call's
attempts (and in :class:`~cloverleaf.AllTargetsFailed` when nothing answers).

An upstream that says ``x-should-retry`` is followed, as the SDK's own transport follows it
(``ProviderError.should_retry``): ``false`` drops the same-target retry (the call still moves on
to the next target where the table says so); ``true`` retries an error the table would not,
except a spent quota and a failed generation
(within the route's ``retries``; one that would be raised is raised once they are spent).

Anything else (configuration, attachments, budgets, bugs) propagates unchanged. Only a
target fault counts against the breaker and only a success resets it; every other outcome
is neutral (a half-open probe slot it held is given back for the next call).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .._errors import (
    AuthenticationError,
    CircuitOpen,
    ContentFilterError,
    ContextWindowExceededError,
    GenerationFailedError,
    GenerationInterruptedError,
    InsufficientMemoryError,
    InvalidRequestError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    QuotaExceededError,
    RateLimitError,
    RateLimitExceeded,
    ReadTimeout,
    RedirectError,
    RequestTooLargeError,
    ServerError,
    TransportError,
    UnsupportedCapability,
)
from .config import RouteConfig


@dataclass(frozen=True, slots=True)
class Verdict:
    fallback: bool
    retry: bool = False
    target_fault: bool = False
    larger_context_only: bool = False
    #: raised on the call's first target, skipped on a fallback (``fallback`` is False)
    skip_fallback: bool = False


RAISE = Verdict(False)
_LACKS = Verdict(False, skip_fallback=True)
_TRANSIENT = Verdict(True, retry=True, target_fault=True)
_TARGET_BROKEN = Verdict(True, target_fault=True)
#: a billed answer the target cut short for want of capacity: raised, and a mark against the target
_BILLED_TARGET_SHORT = Verdict(False, target_fault=True)


def classify(error: BaseException, route: RouteConfig) -> Verdict:
    verdict = _by_table(error, route)
    hint = error.should_retry if isinstance(error, ProviderError) else None
    if (hint is None or hint == verdict.retry or verdict.larger_context_only or verdict.skip_fallback
            or isinstance(error, QuotaExceededError | GenerationFailedError)):
        return verdict   # a spent quota is never retried (waiting does not refill it), as in the transport
    return replace(verdict, retry=hint)


def _by_table(error: BaseException, route: RouteConfig) -> Verdict:
    """The table above, before the upstream's own ``x-should-retry``."""
    if isinstance(error, UnsupportedCapability):
        return _LACKS
    if isinstance(error, RequestTooLargeError):
        return Verdict(True)
    if isinstance(error, InvalidRequestError):
        return RAISE
    if isinstance(error, GenerationInterruptedError):
        return _BILLED_TARGET_SHORT
    if isinstance(error, GenerationFailedError):
        return RAISE
    if isinstance(error, ReadTimeout | QuotaExceededError | InsufficientMemoryError):
        return _TARGET_BROKEN
    if isinstance(error, RateLimitError | ServerError | TransportError | MalformedResponseError):
        return _TRANSIENT
    if isinstance(error, AuthenticationError | PermissionDeniedError | NotFoundError | RedirectError):
        return _TARGET_BROKEN
    if isinstance(error, CircuitOpen):
        return Verdict(True)
    if isinstance(error, RateLimitExceeded):
        return Verdict(route.fallback_on_rate_limit)
    if isinstance(error, ContextWindowExceededError):
        return Verdict(True, larger_context_only=True)
    if isinstance(error, ContentFilterError):
        return Verdict(route.fallback_on_content_filter)
    if isinstance(error, ProviderError):
        return _TRANSIENT if error.retryable else RAISE
    return RAISE


def throttled_for(error: BaseException) -> float | None:
    """The wait a throttling upstream named (a 429's ``Retry-After``), which bounds how long a
    circuit it opens stays open (``breaker.opening_cooldown``). Not a spent quota's (seconds do
    not refill it) nor an unwell target's 5xx."""
    if isinstance(error, RateLimitError) and not isinstance(error, QuotaExceededError):
        return error.retry_after
    return None


def reached_upstream(error: BaseException) -> bool:
    """Did the attempt get as far as the provider (or try to reach it)? Errors raised before
    any I/O — unsupported capability, a refused attachment, configuration — did not."""
    return isinstance(error, ProviderError | TransportError)
