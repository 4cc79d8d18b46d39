"""The error table: every cloverleaf error to a status and each API's shape, checked
against the SDKs' own error bodies."""

from __future__ import annotations

import json

import pytest

from cloverleaf import _errors as cl
from cloverleaf.server.errors import error_body, error_payload, to_api_error

from .openai_schema import validate


def _attempt(error: BaseException) -> cl.Attempt:
    return cl.Attempt("t", error, 1.0)


@pytest.mark.parametrize("exc, status, code", [
    (cl.RateLimitError("slow down", provider="openai", retry_after=7.2), 429, "rate_limit_exceeded"),
    (cl.RateLimitExceeded("key:k", "rpm", retry_after=0.2), 429, "rate_limit_exceeded"),
    (cl.AuthenticationError("Incorrect API key provided: sk-abc***", provider="openai"), 502, "upstream_auth_failed"),
    (cl.ContextWindowExceededError("too long", provider="openai"), 400, "context_length_exceeded"),
    (cl.ContentFilterError("blocked", provider="openai"), 400, "content_filter"),
    (cl.InvalidRequestError("bad", provider="openai", code="invalid_value"), 400, "invalid_value"),
    (cl.NotFoundError("no such model", provider="openai"), 404, "model_not_found"),
    (cl.ServerError("boom", provider="openai", status=500), 502, "upstream_error"),
    (cl.OverloadedError("busy", provider="anthropic"), 503, "upstream_overloaded"),
    (cl.MalformedResponseError("garbage", provider="openai"), 502, "upstream_malformed_response"),
    (cl.TimeoutError("read timeout"), 504, "upstream_timeout"),
    (cl.ConnectError("refused"), 502, "upstream_unreachable"),
    (cl.UnsupportedCapability("simple", "text", ["openai"]), 422, "unsupported_capability"),
    (cl.BudgetExceeded("key:k", 1.0, 0.9, 0.5), 402, "budget_exceeded"),
    (cl.CircuitOpen("openai/gpt-4o", retry_after=12), 503, "circuit_open"),
    (cl.AttachmentError("private address", rule="private-address"), 400, "attachment_private_address"),
    (cl.ConfigError("no API key for openai: set OPENAI_API_KEY"), 503, "gateway_misconfigured"),
    (cl.PermissionDeniedError("no", provider="gateway", code="model_not_allowed", status=403), 403,
     "model_not_allowed"),
    (cl.AllTargetsFailed("smart", [_attempt(cl.TimeoutError("t")), _attempt(cl.TimeoutError("t"))]), 504,
     "upstream_timeout"),
    (cl.AllTargetsFailed("smart", [_attempt(cl.RateLimitError("r", retry_after=3)),
                                   _attempt(cl.RateLimitExceeded("x", "tpm", 5))]), 429, "rate_limit_exceeded"),
    (cl.AllTargetsFailed("smart", [_attempt(cl.CircuitOpen("a", 9)), _attempt(cl.OverloadedError("o"))]), 503,
     "all_targets_unavailable"),
    (cl.AllTargetsFailed("smart", [_attempt(cl.ServerError("a")), _attempt(cl.TimeoutError("t"))]), 502,
     "all_targets_failed"),
    (cl.AllTargetsFailed("smart", [_attempt(cl.ContextWindowExceededError("long"))]), 400,
     "context_length_exceeded"),
    (cl.StreamInterrupted("cut"), 502, "stream_interrupted"),
    (RuntimeError("secret detail"), 500, "internal_error"),
])
def test_status_table(exc: BaseException, status: int, code: str) -> None:
    err = to_api_error(exc)
    assert (err.status, err.code) == (status, code)
    if status == 429:
        assert int(err.headers["retry-after"]) >= 1
    payload = error_payload(err, "openai")
    validate("ErrorResponse", payload)
    anthropic = json.loads(error_body(err, "anthropic"))
    assert anthropic["type"] == "error" and anthropic["error"]["message"] == err.message
    assert "secret detail" not in err.message
    assert "sk-abc" not in err.message


def test_a_request_too_large_for_a_limit_is_a_429_without_retry_after() -> None:
    """As OpenAI's "Request too large": retrying never helps, so nothing invites it, and the
    official SDKs (which retry any 429) are told not to."""
    too_large = cl.RateLimitExceeded("key:k_1", "tpm", requested=17_000, limit=50)
    for exc in (too_large, cl.AllTargetsFailed("smart", [_attempt(too_large), _attempt(too_large)])):
        err = to_api_error(exc)
        assert (err.status, err.code, err.headers) == (429, "request_too_large", {"x-should-retry": "false"})
        assert "17,000" in err.message and "no wait lets it through" in err.message
        validate("ErrorResponse", error_payload(err, "openai"))


def test_retry_after_rounds_up_and_keeps_ms() -> None:
    err = to_api_error(cl.RateLimitError("x", retry_after=2.2))
    assert err.headers == {"retry-after": "3", "retry-after-ms": "2200"}
    assert to_api_error(cl.CircuitOpen("t")).headers == {}


def test_an_upstreams_wait_reaches_the_client_as_retry_after() -> None:
    """An upstream that said when to come back is passed on: an overloaded one as 503, a failing
    one as 502, and for a route the shortest wait any of its targets gave."""
    busy = [cl.OverloadedError("busy", status=503, retry_after=120), cl.OverloadedError("busy", retry_after=40)]
    cases = [
        (busy[0], 503, "120"),
        (cl.ServerError("down", status=500, retry_after=30), 502, "30"),
        (cl.AllTargetsFailed("smart", [_attempt(e) for e in busy]), 503, "40"),
        (cl.AllTargetsFailed("smart", [_attempt(cl.ServerError("a", retry_after=9)), _attempt(cl.TimeoutError("t"))]),
         502, "9"),
    ]
    for exc, status, wait in cases:
        err = to_api_error(exc)
        assert (err.status, err.headers.get("retry-after")) == (status, wait)
    assert to_api_error(cl.ServerError("down", status=500)).headers == {}


def test_unsupported_capability_is_structured() -> None:
    payload = error_payload(to_api_error(cl.UnsupportedCapability("ollama", "image generation", ["openai", "fake"])),
                            "openai")["error"]
    assert (payload["provider"], payload["operation"], payload["providers_that_can"]) == (
        "ollama", "image generation", ["openai", "fake"])


def test_anthropic_types() -> None:
    kinds = {status: json.loads(error_body(to_api_error(exc), "anthropic"))["error"]["type"] for status, exc in [
        (404, cl.NotFoundError("x")), (429, cl.RateLimitError("x")), (402, cl.BudgetExceeded("k", 1, 1)),
        (503, cl.OverloadedError("x")), (504, cl.TimeoutError("x")), (500, ValueError("x"))]}
    assert kinds == {404: "not_found_error", 429: "rate_limit_error", 402: "billing_error", 503: "overloaded_error",
                     504: "timeout_error", 500: "api_error"}


def test_a_store_outage_is_a_503_with_one_log_line_and_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    """The database down or not answering is a dependency outage (503, retry), logged in one
    line without a traceback, the SQL, its parameters (they may hold prompts) or a password;
    a query the database refused is still a bug (500)."""
    import sqlalchemy as sa

    from cloverleaf.gateway.store import StoreUnavailable

    class DriverError(Exception):
        pass

    refused = sa.exc.OperationalError(
        "SELECT * FROM virtual_keys WHERE secret_hash = %(h)s", {"h": "the-prompt-or-hash"},
        DriverError('connection to "postgresql://clv:hunter2@db:5432/x" failed: Connection refused\n'
                    "\tIs the server running on that host?"))
    for exc in (refused, sa.exc.InterfaceError("SELECT 1", {}, DriverError("connection already closed")),
                sa.exc.TimeoutError("QueuePool limit of size 10 overflow 20 reached, connection timed out"),
                StoreUnavailable("a virtual key lookup got no answer from the store within 5 s")):
        caplog.clear()
        with caplog.at_level("WARNING", logger="cloverleaf.server"):
            err = to_api_error(exc)
        assert (err.status, err.code, err.kind) == (503, "store_unavailable", "overloaded"), exc
        assert int(err.headers["retry-after"]) >= 1
        validate("ErrorResponse", error_payload(err, "openai"))
        anthropic = json.loads(error_body(err, "anthropic"))["error"]
        assert (anthropic["type"], anthropic["details"]["error_code"]) == ("overloaded_error", "store_unavailable")
        assert len(caplog.records) == 1 and caplog.records[0].exc_info is None
    caplog.clear()
    with caplog.at_level("WARNING", logger="cloverleaf.server"):
        err = to_api_error(refused)
    logged = caplog.text
    assert "Connection refused" in logged and "DriverError" in logged
    assert "hunter2" not in logged + err.message and "the-prompt-or-hash" not in logged and "SELECT" not in logged
    assert "Is the server running" not in logged   # one line
    duplicate = sa.exc.IntegrityError("INSERT", {}, DriverError("duplicate key"))
    assert to_api_error(duplicate).status == 500


@pytest.mark.parametrize("flavor", ["openai", "anthropic"])
def test_an_error_quoting_a_name_utf8_cannot_carry_is_still_written(flavor: str) -> None:
    """A provider error naming a model with a lone surrogate made error_body raise, and the
    client got a bare text/plain 500 instead of the error."""
    body = error_body(to_api_error(cl.InvalidRequestError("fake 400 (model echo\udcff)")), flavor)
    assert "echo\ufffd" in json.loads(body)["error"]["message"]
