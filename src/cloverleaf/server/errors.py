"""Every failure a request can meet, as the right HTTP status in each API's own error shape.

One table decides the status (:func:`to_api_error`); two renderers write it the way the
OpenAI and Anthropic SDKs expect, so a client's SDK raises its usual exception class
(``BadRequestError``, ``RateLimitError``...) with a message that says what to do.

Rules this module keeps:

- A client's mistake (malformed JSON, unknown model, missing key, an attachment the server
  refuses) is a 4xx, never a 500.
- An upstream failure is a 5xx the client can tell apart: 502 the provider failed or sent
  garbage, 503 overloaded / every target unavailable, 504 it timed out.
- The upstream provider rejecting *the gateway's* credentials is a 502, not a 401: the
  client's key was fine, and the provider's message (which may quote part of our key) is
  not passed on. It says ``x-should-retry: false`` (the SDKs retry a 502 otherwise), as does
  any upstream error whose kind is not retryable.
- The field an upstream named as at fault (OpenAI's ``param``) is passed on as ``param``.
- 429 (upstream or a local bucket) and 503 carry ``Retry-After`` (and ``retry-after-ms``,
  which both SDKs read first) when the wait is known; so does a 502 whose upstream said when
  to come back (the shortest wait of a route's targets).
- An upstream whose quota or credit is spent (``insufficient_quota``) is a 429 that keeps the
  upstream's code, with no ``Retry-After`` and ``x-should-retry: false``: no wait refills a
  quota, and both SDKs would otherwise retry a 429 by themselves.
- An upstream that redirects (a 3xx, never followed: the key would go along) is a 502
  ``upstream_redirected`` naming where it points, with ``x-should-retry: false``: the
  operator's base_url must change first.
- An unexpected exception is a 500 with an id to find it in the server log; nothing of
  its text, type or traceback reaches the client.
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from typing import Any, Literal

from .. import _errors as cl
from .._http import sane_retry_after
from .._jsoncodec import utf8_replacing

log = logging.getLogger("cloverleaf.server")

Flavor = Literal["openai", "anthropic"]


class ApiError(Exception):
    """An HTTP error the server answers with. ``kind`` is the API-neutral error class
    (see ``_OPENAI_TYPE``); ``extra`` fields are added to the error object verbatim, and
    ``openai_extra`` ones to OpenAI's shape only (Azure's ``innererror``, which an Anthropic
    client has no place for)."""

    status = 500
    kind = "internal"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        kind: str | None = None,
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
        openai_extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if kind is not None:
            self.kind = kind
        self.code = code
        self.param = param
        self.extra = extra or {}
        self.headers = headers or {}
        self.details = details or {}
        self.openai_extra = openai_extra or {}


class BadRequest(ApiError):
    """The request body is wrong; ``param`` names the offending field (``messages[2].content``)."""

    status = 400
    kind = "invalid_request"


class Unauthorized(ApiError):
    status = 401
    kind = "authentication"


class Forbidden(ApiError):
    status = 403
    kind = "permission"


class NotFound(ApiError):
    status = 404
    kind = "not_found"


class PayloadTooLarge(ApiError):
    status = 413
    kind = "request_too_large"


class ClientClosed(ApiError):
    """The client hung up before the answer (nginx's 499): nothing can be sent, only counted."""

    status = 499
    kind = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="client_closed_request")


# --------------------------------------------------------------------------- mapping


def _retry_headers(seconds: float | None, default: float | None = None) -> dict[str, str]:
    """``Retry-After`` (whole seconds, at least 1) and ``retry-after-ms``; a 429 always has one.
    A hint that is no usable wait (non-finite, beyond a day: whatever produced it) is dropped
    for ``default``, never turned into a 500."""
    if seconds is None or seconds < 0 or sane_retry_after(seconds) is None:
        seconds = default
    if seconds is None:
        return {}
    return {"retry-after": str(max(1, math.ceil(seconds))), "retry-after-ms": str(int(seconds * 1000))}


#: What tells the official SDKs (which retry a 429 and every 5xx by themselves) not to retry an
#: answer no retry can change: a spent quota, the gateway's provider key refused, a model too large.
NO_RETRY = {"x-should-retry": "false"}

#: An upstream error code passed on as ours: short and plain (it is the upstream's text).
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _quota_spent(exc: cl.QuotaExceededError, extra: dict[str, Any]) -> ApiError:
    """A spent quota: 429 with the upstream's code (OpenAI's ``insufficient_quota``) and nothing
    that invites a retry, as OpenAI answers it."""
    code = exc.code if exc.code and _CODE.fullmatch(exc.code) else "insufficient_quota"
    return ApiError(f"the upstream provider's quota or credit is spent: {exc}; retrying will not help until the "
                    "operator adds credit or raises the quota", status=429, kind="quota_exceeded", code=code,
                    extra=extra, headers=dict(NO_RETRY))


def _upstream(exc: cl.ProviderError) -> ApiError:
    """An error the provider answered with, as seen by the gateway's client."""
    where = exc.provider or "provider"
    extra = {"provider": exc.provider, "upstream_status": exc.status}
    if isinstance(exc, cl.QuotaExceededError):
        return _quota_spent(exc, extra)
    if isinstance(exc, cl.RateLimitError):
        return ApiError(f"upstream rate limit: {exc}", status=429, kind="rate_limit", code="rate_limit_exceeded",
                        extra=extra, headers=_retry_headers(exc.retry_after, 1.0))
    if exc.provider == "gateway" and exc.code == "model_not_allowed":  # the gateway's own key check
        return Forbidden(exc.message, code="model_not_allowed")
    if isinstance(exc, (cl.AuthenticationError, cl.PermissionDeniedError)):
        # x-should-retry: the SDKs retry every 502 by themselves, and no retry fixes the gateway's key
        what = ("the provider key" if isinstance(exc, cl.AuthenticationError) else
                "the provider key or account (its permissions, billing or region)")
        said = f" {exc.code}" if exc.code and _CODE.fullmatch(exc.code.lower()) else ""
        return ApiError(f"the upstream provider {where!r} rejected the gateway's credentials for this model "
                        f"(HTTP {exc.status}{said}); the operator must fix {what}",
                        status=502, kind="upstream_error", code="upstream_auth_failed", extra=extra,
                        headers=dict(NO_RETRY))
    param = exc.param   # the field the provider named (OpenAI's ``param``), which the client's SDK reads
    if isinstance(exc, cl.ContextWindowExceededError):
        return BadRequest(str(exc), code="context_length_exceeded", param=param, extra=extra)
    if isinstance(exc, cl.ContentFilterError):   # which category tripped, where an Azure client reads it
        inner = {"innererror": exc.innererror} if exc.innererror else None
        return BadRequest(str(exc), code="content_filter", param=param, extra=extra, openai_extra=inner)
    if isinstance(exc, cl.RequestTooLargeError):   # the provider's byte limit: the API's own 413
        return PayloadTooLarge(str(exc), code="request_too_large", param=param, extra=extra)
    if isinstance(exc, cl.InvalidRequestError):
        return BadRequest(str(exc), code=exc.code or "invalid_request", param=param, extra=extra)
    if isinstance(exc, cl.NotFoundError):
        return NotFound(str(exc), code="model_not_found", extra=extra)
    if isinstance(exc, cl.RedirectError):   # the operator's base_url to fix: a client's retry meets it again
        return ApiError(str(exc), status=502, kind="upstream_error", code="upstream_redirected", extra=extra,
                        headers={"x-should-retry": "false"})
    if isinstance(exc, cl.OverloadedError):
        return ApiError(str(exc), status=503, kind="overloaded", code="upstream_overloaded", extra=extra,
                        headers=_retry_headers(exc.retry_after))
    if isinstance(exc, cl.GenerationFailedError):   # a 200 whose answer the provider says failed
        return ApiError(str(exc), status=502, kind="upstream_error", code="upstream_generation_failed", extra=extra)
    if isinstance(exc, cl.MalformedResponseError):
        return ApiError(str(exc), status=502, kind="upstream_error", code="upstream_malformed_response", extra=extra)
    return ApiError(str(exc), status=502, kind="upstream_error", code="upstream_error", extra=extra,
                    headers=_retry_headers(exc.retry_after) if exc.retryable else dict(NO_RETRY))


def _all_failed(exc: cl.AllTargetsFailed) -> ApiError:
    errors = [a.error for a in exc.attempts if a.error is not None]
    attempts = [{"target": a.target, "status": a.status, "error": type(a.error).__name__ if a.error else None,
                 "latency_ms": round(a.latency_ms, 1)} for a in exc.attempts]
    extra = {"route": exc.route, "attempts": attempts}
    last = exc.last_error
    # The same client mistake at every target is still the client's mistake.
    if last is not None and isinstance(last, (cl.InvalidRequestError, cl.ContextWindowExceededError,
                                              cl.ContentFilterError, cl.UnsupportedCapability,
                                              cl.AttachmentError, cl.BudgetExceeded)):
        err = to_api_error(last)
        err.extra = {**err.extra, **extra}
        return err
    if errors and all(isinstance(e, cl.TimeoutError) for e in errors):
        return ApiError(f"every target of {exc.route!r} timed out", status=504, kind="timeout",
                        code="upstream_timeout", extra=extra)
    waits = [getattr(e, "retry_after", None) for e in errors]
    known = [w for w in waits if w is not None]
    if errors and all(getattr(e, "never_fits", False) for e in errors):
        return ApiError(f"this request is too large for every target of {exc.route!r}: {errors[0]}", status=429,
                        kind="rate_limit", code="request_too_large", extra=extra, headers={"x-should-retry": "false"})
    if errors and all(isinstance(e, cl.QuotaExceededError) for e in errors):   # retrying helps none of them
        err = to_api_error(errors[-1])
        err.extra = {**err.extra, **extra}
        return err
    if errors and all(isinstance(e, (cl.RateLimitExceeded, cl.RateLimitError)) for e in errors):
        return ApiError(f"every target of {exc.route!r} is rate limited; retry later", status=429, kind="rate_limit",
                        code="rate_limit_exceeded", extra=extra,
                        headers=_retry_headers(min(known) if known else None, 1.0))
    if errors and all(isinstance(e, (cl.CircuitOpen, cl.RateLimitExceeded, cl.RateLimitError, cl.OverloadedError))
                      for e in errors):
        return ApiError(f"no target of {exc.route!r} is available right now (circuit open, rate limited or "
                        "overloaded); retry later", status=503, kind="overloaded", code="all_targets_unavailable",
                        extra=extra, headers=_retry_headers(min(known) if known else None))
    return ApiError(f"all targets of {exc.route!r} failed; see 'attempts'", status=502, kind="upstream_error",
                    code="all_targets_failed", extra=extra, headers=_retry_headers(min(known) if known else None))


def to_api_error(exc: BaseException) -> ApiError:
    """The HTTP error for any exception a request raised (unexpected ones are logged here)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, cl.ProviderError):
        return _upstream(exc)
    if isinstance(exc, cl.UnsupportedCapability):
        return ApiError(str(exc), status=422, kind="unsupported_capability", code="unsupported_capability",
                        extra={"provider": exc.provider, "operation": exc.operation,
                               "providers_that_can": exc.alternatives})
    if isinstance(exc, cl.AttachmentError):
        return BadRequest(str(exc), code=f"attachment_{exc.rule}".replace("-", "_"))
    if isinstance(exc, cl.PrivacyViolation):
        return Forbidden(str(exc), code="privacy_violation",
                         extra={"policy": exc.policy, "rule": exc.rule,
                                "refused": [{"target": t, "reason": why} for t, why in exc.targets]})
    if isinstance(exc, cl.BudgetExceeded):
        return ApiError(str(exc), status=402, kind="budget_exceeded",
                        code=("budget_unpriced" if exc.unpriced else "budget_unsized_attachment" if exc.unsized
                              else "budget_exceeded"),
                        extra={"scope": exc.scope, "limit": exc.limit, "spent": round(exc.spent, 6)})
    if isinstance(exc, cl.RateLimitExceeded):
        if exc.never_fits:   # as OpenAI's "Request too large": a 429 with no Retry-After, since none helps,
            # and x-should-retry: false, since the official SDKs retry any 429 otherwise
            return ApiError(str(exc), status=429, kind="rate_limit", code="request_too_large",
                            extra={"scope": exc.scope, "limit": exc.kind}, headers={"x-should-retry": "false"})
        return ApiError(str(exc), status=429, kind="rate_limit", code="rate_limit_exceeded",
                        extra={"scope": exc.scope, "limit": exc.kind}, headers=_retry_headers(exc.retry_after, 1.0))
    if isinstance(exc, cl.StateUnavailable):   # limits cannot be enforced, so nothing is let through
        return ApiError(f"the gateway cannot check limits and budgets right now: {exc}", status=503,
                        kind="overloaded", code="state_unavailable", headers=_retry_headers(None, 1.0))
    if isinstance(exc, cl.CircuitOpen):
        return ApiError(str(exc), status=503, kind="overloaded", code="circuit_open",
                        headers=_retry_headers(exc.retry_after))
    if isinstance(exc, cl.AllTargetsFailed):
        return _all_failed(exc)
    if isinstance(exc, cl.TimeoutError):
        return ApiError(f"upstream timed out: {exc}", status=504, kind="timeout", code="upstream_timeout")
    if isinstance(exc, cl.TransportError):
        return ApiError(f"could not reach the upstream provider: {exc}", status=502, kind="upstream_error",
                        code="upstream_unreachable")
    if isinstance(exc, cl.StreamInterrupted):
        return ApiError(str(exc), status=502, kind="upstream_error", code="stream_interrupted")
    if isinstance(exc, cl.ConfigError):
        # Reaching here means the operator's configuration (a missing provider key, a bad
        # base URL), not the request: the routes answer unknown models with 404 before this.
        return ApiError(f"the gateway cannot serve this model as configured: {exc}", status=503,
                        kind="overloaded", code="gateway_misconfigured")
    unavailable = _store_outage(exc)
    if unavailable is not None:
        return unavailable
    incident = uuid.uuid4().hex[:12]
    missing = _store_schema_problem(exc)
    if missing is not None:   # one line, as for an outage: the SQL and its parameters may hold prompts
        log.error("the store's schema lacks a table or column this cloverleaf uses (incident %s): %s; a store "
                  "changed by hand, or migrated by a build of another version? Every server of one store must "
                  "run the same cloverleaf version", incident, missing)
    else:
        log.error("unexpected error (incident %s)", incident, exc_info=exc)
    return ApiError(f"internal error; the operator can find incident {incident} in the server log",
                    status=500, kind="internal", code="internal_error")


def _store_schema_problem(exc: BaseException) -> str | None:
    """What the store's schema lacks, when ``exc`` says so (see ``gateway/store/outage.py``): a
    server error, not an outage, since no retry helps."""
    try:
        from ..gateway.store.outage import schema_problem
    except ImportError:  # pragma: no cover - without SQLAlchemy there is no store to fail
        return None
    return schema_problem(exc)


def _store_outage(exc: BaseException) -> ApiError | None:
    """503 ``store_unavailable`` when ``exc`` means the store's database cannot be used (down,
    unreachable, not answering: see ``gateway/store/outage.py``), as a Redis outage is a 503
    ``state_unavailable``. Why goes to the log in one line (no traceback, no password), not to
    the client."""
    try:
        from ..gateway.store.outage import outage
    except ImportError:  # pragma: no cover - without SQLAlchemy there is no store to fail
        return None
    reason = outage(exc)
    if reason is None:
        return None
    log.warning("the store is unavailable, a request was answered 503: %s", reason)
    return ApiError("the gateway's store (its database) cannot be reached right now, so this request cannot be "
                    "served; retry shortly (the operator finds the reason in the server log)", status=503,
                    kind="overloaded", code="store_unavailable", headers=_retry_headers(None, 1.0))


# --------------------------------------------------------------------------- rendering

_OPENAI_TYPE = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "unsupported_capability": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "quota_exceeded": "insufficient_quota",
    "budget_exceeded": "insufficient_quota",
    "upstream_error": "api_error",
    "overloaded": "api_error",
    "timeout": "timeout_error",
    "internal": "server_error",
}

_ANTHROPIC_TYPE = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "unsupported_capability": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "quota_exceeded": "billing_error",
    "budget_exceeded": "billing_error",
    "upstream_error": "api_error",
    "overloaded": "overloaded_error",
    "timeout": "timeout_error",
    "internal": "api_error",
}


def error_payload(err: ApiError, flavor: Flavor) -> dict[str, Any]:
    if flavor == "anthropic":
        error = {"type": _ANTHROPIC_TYPE.get(err.kind, "api_error"), "message": err.message, **err.extra}
        if err.code is not None:  # Anthropic's machine-readable reason, which its SDK reads
            error["details"] = {"error_code": err.code, **err.details}
        return {"type": "error", "error": error}
    body = {"message": err.message, "type": _OPENAI_TYPE.get(err.kind, "api_error"), "param": err.param,
            "code": err.code}
    body.update(err.extra)
    body.update(err.openai_extra)
    return {"error": body}


def error_body(err: ApiError, flavor: Flavor) -> bytes:
    """The error as JSON. Never fails on its text: a message quoting a name no UTF-8 can carry
    (a lone surrogate) once turned the error itself into a bare text/plain 500."""
    return utf8_replacing(json.dumps(error_payload(err, flavor), separators=(",", ":"), ensure_ascii=False,
                                     default=str))
