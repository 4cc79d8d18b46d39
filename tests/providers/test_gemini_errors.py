"""Gemini error mapping: by HTTP status, ``error.status`` and ``ErrorInfo.reason``."""

from __future__ import annotations

import json

import pytest

from cloverleaf._errors import (
    AuthenticationError,
    ContextWindowExceededError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from cloverleaf._http import HttpResponse
from tests.providers.test_gemini_support import EMBED, KEY, SYNTHETIC, adapter
from tests.wire import cassette

SYNTHETIC_ERRORS = [
    (0, AuthenticationError, "API_KEY_INVALID"),
    (1, PermissionDeniedError, "PERMISSION_DENIED"),
    (2, RateLimitError, "RESOURCE_EXHAUSTED"),
    (3, ContextWindowExceededError, "INVALID_ARGUMENT"),
    (4, InvalidRequestError, "INVALID_ARGUMENT"),
    (5, PermissionDeniedError, "FAILED_PRECONDITION"),   # the account or region, not the request
    (6, ServerError, "INTERNAL"),
    (7, OverloadedError, "UNAVAILABLE"),
]


@pytest.mark.parametrize(("index", "cls", "code"), SYNTHETIC_ERRORS)
def test_published_error_shapes(index: int, cls: type[ProviderError], code: str):
    resp = cassette(SYNTHETIC + "errors.yaml")[index].response
    err = adapter().parse_error(resp, "gemini-2.5-flash")
    assert type(err) is cls
    assert err.status == resp.status and err.code == code and err.provider == "gemini"
    assert err.message.startswith(resp.json()["error"]["message"].strip()[:20])
    assert KEY not in str(err)


def test_invalid_key_message_says_what_to_do():
    err = adapter().parse_error(cassette(SYNTHETIC + "errors.yaml")[0].response)
    assert "GEMINI_API_KEY" in str(err)
    assert not err.retryable


def test_rate_limit_retry_delay_from_retry_info():
    err = adapter().parse_error(cassette(SYNTHETIC + "errors.yaml")[2].response)
    assert err.retry_after == 57.0 and err.retryable


def test_overloaded_and_internal_are_server_errors():
    for index in (6, 7):
        err = adapter().parse_error(cassette(SYNTHETIC + "errors.yaml")[index].response)
        assert isinstance(err, ServerError) and err.retryable


@pytest.mark.parametrize("name", ["TestGoogle.test_embed_error.yaml", "TestGoogle.test_count_tokens_error.yaml"])
def test_recorded_not_found(name: str):
    resp = cassette(EMBED + name)[0].response
    err = adapter().parse_error(resp, "nonexistent-model")
    assert type(err) is NotFoundError
    assert (err.status, err.code, err.model) == (404, "NOT_FOUND", "nonexistent-model")
    assert "models/nonexistent-model is not found" in err.message


def test_error_array_from_non_sse_stream_and_plain_text():
    body = json.dumps([{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}]).encode()
    assert type(adapter().parse_error(HttpResponse(429, {}, body))) is RateLimitError
    err = adapter().parse_error(HttpResponse(502, {}, b"<html>Bad Gateway</html>"))
    assert type(err) is ServerError and "Bad Gateway" in err.message


def test_failed_precondition_is_the_account_or_region_so_a_route_falls_back():
    """Gemini's 400 FAILED_PRECONDITION ("User location is not supported", "free tier is not available in
    your country") says nothing is wrong with the request: another target serves the same one. A
    PermissionDeniedError (a route moves on; not retried), with what to do; an InvalidRequestError
    stopped every route at Gemini."""
    from cloverleaf.gateway.config import make_route
    from cloverleaf.gateway.fallback import classify

    for message in ("User location is not supported for the API use.",
                    "Gemini API free tier is not available in your country. Please enable billing on your project "
                    "in Google AI Studio."):
        body = json.dumps({"error": {"code": 400, "message": message, "status": "FAILED_PRECONDITION"}}).encode()
        err = adapter().parse_error(HttpResponse(400, {}, body), "gemini-2.5-flash")
        assert type(err) is PermissionDeniedError and err.status == 400 and not err.retryable
        assert err.message.startswith(message) and "enable billing" in err.message and "region" in err.message
        verdict = classify(err, make_route("smart", ["gemini/gemini-2.5-flash", "openai/gpt-4o"]))
        assert verdict.fallback and not verdict.retry
