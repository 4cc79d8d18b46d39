"""Anthropic's spent credit balance, in both its forms, is a spent quota."""

from __future__ import annotations

import json

import pytest

from cloverleaf._errors import InvalidRequestError, QuotaExceededError
from cloverleaf._http import HttpResponse
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.registry import get_spec


@pytest.fixture(scope="module")
def adapter() -> AnthropicAdapter:
    return AnthropicAdapter(get_spec("anthropic"))


def _error(status: int, etype: str, message: str) -> HttpResponse:
    payload = {"type": "error", "error": {"type": etype, "message": message}, "request_id": "req_1"}
    return HttpResponse(status, {}, json.dumps(payload).encode())


CREDIT_TOO_LOW = ("Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to "
                  "upgrade or purchase credits.")


def test_a_spent_credit_balance_is_a_spent_quota_in_its_400_form_too(adapter):
    """Most accounts get a spent credit balance as a 400 invalid_request_error, not the 402
    billing_error: a QuotaExceededError either way (code billing_error), so a route falls back to
    its next target and nothing retries it; as an InvalidRequestError no route ever moved on."""
    from cloverleaf.gateway.config import make_route
    from cloverleaf.gateway.fallback import classify

    err = adapter.parse_error(_error(400, "invalid_request_error", CREDIT_TOO_LOW), "m")
    assert type(err) is QuotaExceededError and not err.retryable
    assert (err.status, err.code, err.request_id) == (400, "billing_error", "req_1") and CREDIT_TOO_LOW in str(err)
    verdict = classify(err, make_route("smart", ["anthropic/claude-sonnet-4-5", "openai/gpt-4o"]))
    assert verdict.fallback and not verdict.retry
    in_stream = adapter.stream_error({"type": "error", "error": {"type": "invalid_request_error",
                                                                 "message": CREDIT_TOO_LOW}}, "m")
    assert type(in_stream) is QuotaExceededError and in_stream.code == "billing_error"
    # other 400s stay the caller's mistake
    assert type(adapter.parse_error(_error(400, "invalid_request_error", "max_tokens: must be positive"), "m")) \
        is InvalidRequestError
