"""Upstream errors whose kind the client must still be able to tell, in each API's shape: a spent
quota (not a rate limit to retry) and a request over the provider's size limit (413, not 400)."""

from __future__ import annotations

import math

from cloverleaf import _errors as cl
from cloverleaf.server.errors import error_payload, to_api_error

from .openai_schema import validate


def _attempt(error: BaseException) -> cl.Attempt:
    return cl.Attempt("t", error, 1.0)


def test_a_spent_quota_keeps_its_code_and_invites_no_retry() -> None:
    quota = cl.QuotaExceededError("You exceeded your current quota, please check your plan and billing details.",
                                  provider="openai", code="insufficient_quota")
    for exc in (quota, cl.AllTargetsFailed("smart", [_attempt(quota), _attempt(quota)])):
        err = to_api_error(exc)
        assert (err.status, err.code) == (429, "insufficient_quota")
        assert err.headers == {"x-should-retry": "false"}   # no Retry-After: no wait refills a quota
        assert "check your plan" in err.message and "retrying will not help" in err.message
        openai = error_payload(err, "openai")
        validate("ErrorResponse", openai)
        assert (openai["error"]["type"], openai["error"]["code"]) == ("insufficient_quota", "insufficient_quota")
        assert error_payload(err, "anthropic")["error"]["type"] == "billing_error"
    # the upstream's own code when it is one (OpenAI's billing_hard_limit_reached), else insufficient_quota
    assert to_api_error(cl.QuotaExceededError("x", code="billing_hard_limit_reached")).code == "billing_hard_limit_reached"
    assert to_api_error(cl.QuotaExceededError("x", status=402)).code == "insufficient_quota"
    assert to_api_error(cl.QuotaExceededError("x", code="<b>odd code</b>")).code == "insufficient_quota"
    # a plain rate limit is still one to retry
    assert to_api_error(cl.RateLimitError("slow down")).headers["retry-after"] == "1"



def test_a_request_over_the_providers_size_limit_is_a_413() -> None:
    too_large = cl.RequestTooLargeError("Request exceeds the maximum allowed number of bytes.", provider="anthropic",
                                        code="request_too_large")
    assert isinstance(too_large, cl.InvalidRequestError) and not too_large.retryable and too_large.status == 413
    for exc in (too_large, cl.AllTargetsFailed("smart", [_attempt(too_large)])):
        err = to_api_error(exc)
        assert (err.status, err.code) == (413, "request_too_large")
        assert "maximum allowed number of bytes" in err.message
        openai = error_payload(err, "openai")
        validate("ErrorResponse", openai)
        assert openai["error"]["type"] == "invalid_request_error"
        anthropic = error_payload(err, "anthropic")
        assert anthropic["type"] == "error" and anthropic["error"]["type"] == "request_too_large"


def test_a_retry_after_that_is_no_usable_wait_never_makes_a_500() -> None:
    """Whatever produced it, a non-finite or absurd wait is dropped for the default: a 429 still
    says 1 s, a 503 says nothing, and neither turns into an OverflowError."""
    for wait in (math.inf, math.nan, 1e300):
        limited = to_api_error(cl.RateLimitError("slow down", retry_after=wait))
        assert limited.status == 429 and limited.headers == {"retry-after": "1", "retry-after-ms": "1000"}
        busy = to_api_error(cl.OverloadedError("busy", retry_after=wait))
        assert busy.status == 503 and "retry-after" not in busy.headers
    assert to_api_error(cl.OverloadedError("busy", retry_after=120.0)).headers["retry-after"] == "120"


def test_an_upstream_error_no_retry_helps_tells_the_sdks_not_to_retry() -> None:
    """The SDKs retry every 502 by themselves: a rejected provider key and a model too large for
    its server's memory say x-should-retry: false; a retryable 502 keeps its Retry-After."""
    for exc in (cl.AuthenticationError("invalid x-api-key", provider="anthropic", status=401),
                cl.InsufficientMemoryError("model requires more system memory", provider="ollama")):
        err = to_api_error(exc)
        assert err.status == 502 and err.headers == {"x-should-retry": "false"}
    assert to_api_error(cl.ServerError("boom", retry_after=5.0)).headers["retry-after"] == "5"


def test_the_field_an_upstream_named_is_passed_on() -> None:
    err = to_api_error(cl.InvalidRequestError("bad temperature", provider="openai", code="invalid_value",
                                              param="temperature"))
    assert err.status == 400 and error_payload(err, "openai")["error"]["param"] == "temperature"
    assert to_api_error(cl.ContextWindowExceededError("too long", param="messages")).param == "messages"
