"""Error mapping: every recorded error status, plus the documented codes no recording has."""

from __future__ import annotations

import json

import pytest

from cloverleaf._errors import (
    AuthenticationError,
    ContentFilterError,
    ContextWindowExceededError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
)
from cloverleaf._http import HttpResponse
from tests.providers._openai_replay import PA, PA_ROOT, adapter, interaction

SYN = "../synthetic/openai"


def _error(row: str, path: str, index: int = -1, model: str = "m"):
    resp = interaction(path, index).response
    assert resp.status >= 400
    return adapter(row).parse_error(resp, model)


def test_recorded_400_unsupported_value() -> None:
    err = _error("openai", f"{PA}/test_openai/test_openai_o1_mini_system_role[developer].yaml", model="o1-mini")
    assert type(err) is InvalidRequestError
    assert (err.status, err.code, err.provider, err.model) == (400, "unsupported_value", "openai", "o1-mini")
    assert "does not support 'developer'" in str(err)
    assert not err.retryable


def test_recorded_400_with_null_code_uses_type() -> None:
    err = _error("openai", f"{PA}/test_openai/test_openai_web_search_tool_model_not_supported.yaml")
    assert type(err) is InvalidRequestError and err.code == "invalid_request_error"
    assert "Web search options not supported" in err.message


def test_recorded_embeddings_404_model_not_found() -> None:
    err = _error("openai", f"{PA_ROOT}/cassettes/test_embeddings/TestOpenAI.test_embed_error.yaml", model="nonexistent")
    assert type(err) is NotFoundError and err.status == 404 and err.code == "model_not_found"


def test_invalid_api_key_is_authentication_error_with_hint() -> None:
    err = _error("openai", f"{SYN}/error_invalid_api_key.yaml")
    assert type(err) is AuthenticationError and err.code == "invalid_api_key"
    assert "OPENAI_API_KEY" in str(err)


def test_rate_limit_reads_retry_after_ms_and_request_id() -> None:
    err = _error("openai", f"{SYN}/error_rate_limit.yaml")
    assert type(err) is RateLimitError and err.retryable
    assert err.retry_after == pytest.approx(19.5)  # retry-after-ms wins over retry-after
    assert err.request_id == "req_synthetic_1"


def test_retry_after_seconds_when_no_ms_header() -> None:
    body = json.dumps({"error": {"message": "slow", "type": "tokens", "code": "rate_limit_exceeded"}}).encode()
    err = adapter("openai").parse_error(HttpResponse(429, {"retry-after": "7"}, body))
    assert isinstance(err, RateLimitError) and err.retry_after == 7.0


def test_insufficient_quota_is_rate_limit_but_not_retryable() -> None:
    err = _error("openai", f"{SYN}/error_insufficient_quota.yaml")
    assert isinstance(err, RateLimitError) and type(err).__name__ == "QuotaExceededError"
    assert err.retryable is False and type(err).retryable is False  # on the class, not set per instance
    assert RateLimitError.retryable is True


def test_the_transport_hands_back_every_429_the_mapping_calls_a_spent_quota() -> None:
    """The transport (which knows no provider) must not retry what the adapter maps to a
    QuotaExceededError: both read one set of codes, checked here against the mapping."""
    from cloverleaf._quota import says_quota_spent
    from cloverleaf.transport.httpx import map_httpx_exception
    from cloverleaf.transport.retry import Retry, RetryPolicy

    def retry() -> Retry:
        return Retry(RetryPolicy(), "http://127.0.0.1:9/v1", None, map_httpx_exception)

    recorded = interaction(f"{SYN}/error_insufficient_quota.yaml").response
    bodies = [recorded.body] + [json.dumps({"error": {"message": "x", "code": code}}).encode()
                                for code in ("billing_hard_limit_reached", "insufficient_credits")] + [
        # an account whose billing is off: no wait turns it on (it was retried, and its circuit opened)
        json.dumps({"error": {"message": "Your account is not active, please check your billing details on our "
                              "website.", "type": "billing_not_active", "param": None,
                              "code": "billing_not_active"}}).encode(),
        json.dumps({"error": {"message": "x", "type": "insufficient_quota", "code": None}}).encode(),
        json.dumps({"object": "error", "message": "x", "type": "insufficient_quota"}).encode()]
    for body in bodies:
        answer = HttpResponse(429, {}, body)
        assert type(adapter("openai").parse_error(answer, "m")).__name__ == "QuotaExceededError", body
        assert says_quota_spent(body), body
        assert retry().after_answer(answer) is None
    limited = HttpResponse(429, {}, json.dumps({"error": {"message": "x", "code": "rate_limit_exceeded"}}).encode())
    assert type(adapter("openai").parse_error(limited, "m")) is RateLimitError and not says_quota_spent(limited.body)
    assert retry().after_answer(limited) is not None


def test_context_length_exceeded() -> None:
    err = _error("openai", f"{SYN}/error_context_length.yaml")
    assert type(err) is ContextWindowExceededError and err.code == "context_length_exceeded"


def test_context_window_from_codeless_400_message() -> None:
    body = json.dumps({"object": "error", "message": "This model's maximum context length is 4096 tokens.",
                       "type": "BadRequestError", "code": 400}).encode()  # vLLM's shape
    err = adapter("vllm").parse_error(HttpResponse(400, {}, body))
    assert type(err) is ContextWindowExceededError and err.status == 400


def test_content_policy_violation_is_content_filter() -> None:
    err = _error("openai", f"{SYN}/error_content_policy_image.yaml")
    assert type(err) is ContentFilterError and err.code == "content_policy_violation"


def test_server_error_is_retryable() -> None:
    err = _error("openai", f"{SYN}/error_server.yaml")
    assert type(err) is ServerError and err.retryable


@pytest.mark.parametrize("body", [
    {"error": {"message": "The server is overloaded, slow down.", "type": "server_error", "code": None}},
    {"error": {"message": "Service Unavailable", "type": None, "code": None}},
    "upstream connect error",  # a proxy in front of the provider, in plain words
])
def test_a_503_is_overloaded_and_keeps_its_retry_after(body: object) -> None:
    """OpenAI answers "overloaded, slow down" with a 503 and a Retry-After: an OverloadedError
    (retryable, falls back like any ServerError), so the server answers its client 503 with that
    wait, not a 502 without one."""
    raw = json.dumps(body).encode() if isinstance(body, dict) else str(body).encode()
    err = adapter("openai").parse_error(HttpResponse(503, {"retry-after": "120"}, raw))
    assert type(err) is OverloadedError and err.retryable and err.status == 503 and err.retry_after == 120.0


def test_non_json_error_body() -> None:
    err = adapter("openai").parse_error(HttpResponse(502, {}, b"<html>Bad gateway</html>"))
    assert type(err) is ServerError and "Bad gateway" in err.message


def test_error_body_never_contains_the_api_key() -> None:
    err = _error("openai", f"{SYN}/error_invalid_api_key.yaml")
    assert "sk-test-secret" not in str(err) and "sk-test-secret" not in repr(err.to_dict())


def test_413_is_request_too_large_unless_it_names_the_context_window() -> None:
    """A 413 is a body over the server's byte limit (a proxy's client_max_body_size, attachments):
    RequestTooLargeError, which a gateway answers with 413; one that says the prompt is over the
    context window is that."""
    nginx = adapter("vllm").parse_error(HttpResponse(413, {}, b"<html>413 Request Entity Too Large</html>"))
    assert type(nginx) is RequestTooLargeError and nginx.status == 413 and not nginx.retryable
    body = json.dumps({"error": {"message": "Request too large: 25 MB is over the 20 MB limit",
                                 "type": "invalid_request_error", "code": None}}).encode()
    assert type(adapter("openai").parse_error(HttpResponse(413, {}, body))) is RequestTooLargeError
    long = json.dumps({"object": "error", "message": "This model's maximum context length is 4096 tokens.",
                       "type": "BadRequestError", "code": 413}).encode()
    assert type(adapter("vllm").parse_error(HttpResponse(413, {}, long))) is ContextWindowExceededError


def test_the_field_at_fault_is_kept() -> None:
    """OpenAI's ``param`` names the request field at fault; it was dropped, so a gateway's client
    got ``param: null``."""
    body = json.dumps({"error": {"message": "Invalid value for 'temperature': must be <= 2.",
                                 "type": "invalid_request_error", "param": "temperature",
                                 "code": "invalid_value"}}).encode()
    err = adapter("openai").parse_error(HttpResponse(400, {}, body), "m")
    assert type(err) is InvalidRequestError and err.param == "temperature"
    unnamed = json.dumps({"error": {"message": "x", "type": "invalid_request_error", "param": None}}).encode()
    assert adapter("openai").parse_error(HttpResponse(400, {}, unnamed), "m").param is None


def test_an_error_inside_a_200_stream_has_its_kinds_status_not_500() -> None:
    """Nothing answered 500: the stream's status was 200. A rate-limit object in it is a 429
    (its text said "openai 500 [rate_limit_exceeded]"), one without a code a 500, and one whose
    object carries a status (OpenRouter's ``code``) keeps that."""
    def in_stream(error: dict[str, object]):
        return adapter("openai").stream_error({"error": error}, "gpt-4o")

    limited = in_stream({"message": "Rate limit reached", "type": "tokens", "param": None, "code": "rate_limit_exceeded"})
    assert type(limited) is RateLimitError and limited.status == 429 and " 429 " in str(limited)
    assert type(in_stream({"message": "boom", "type": None})) is ServerError
    assert in_stream({"message": "boom", "type": None}).status == 500
    assert in_stream({"message": "too long", "code": "context_length_exceeded"}).status == 400
    assert in_stream({"message": "upstream busy", "code": 502}).status == 502


#: llama.cpp's llama-server (tools/server, ``format_error_response`` with ERROR_TYPE_EXCEED_CONTEXT_SIZE):
#: a prompt longer than the slot's context is a 400 of type ``exceed_context_size_error``, its words
#: naming the context *size*; streamed, the same object comes in an ``error:`` line before ``[DONE]``.
LLAMA_CPP_TOO_LONG = {"code": 400, "type": "exceed_context_size_error", "n_prompt_tokens": 5000, "n_ctx": 4096,
                      "message": "request (5000 tokens) exceeds the available context size (4096 tokens), "
                                 "try increasing it"}


def test_llama_cpp_context_overflow_is_a_context_window_error() -> None:
    """It was an InvalidRequestError, which a route never falls back from: a local model with a
    small window could not hand a long conversation to a target with a larger one."""
    body = json.dumps({"error": LLAMA_CPP_TOO_LONG}).encode()
    err = adapter("chat_completions").parse_error(HttpResponse(400, {}, body), "qwen")
    assert type(err) is ContextWindowExceededError and err.status == 400
    assert "larger context window" in str(err)
    older = json.dumps({"error": {"code": 400, "type": "invalid_request_error",
                                  "message": "the request exceeds the available context size, try increasing it"}})
    assert type(adapter("chat_completions").parse_error(HttpResponse(400, {}, older.encode()))) \
        is ContextWindowExceededError


def test_llama_cpp_context_overflow_in_a_stream_is_a_context_window_error() -> None:
    from cloverleaf._types import ChatRequest, Message

    decoder = adapter("chat_completions").stream_decoder(ChatRequest("qwen", [Message.user("hi")], stream=True))
    with pytest.raises(ContextWindowExceededError) as caught:
        decoder.feed(b"error: " + json.dumps(LLAMA_CPP_TOO_LONG).encode() + b"\n\ndata: [DONE]\n\n")
    assert caught.value.status == 400 and "5000 tokens" in str(caught.value)


INVALID_PROMPT = {"error": {"message": "Invalid prompt: your prompt was flagged as potentially violating our usage "
                                       "policy. Please try again with a different prompt: "
                                       "https://platform.openai.com/docs/guides/reasoning#advice-on-prompting",
                            "type": "invalid_request_error", "param": None, "code": "invalid_prompt"}}


def test_a_prompt_flagged_by_the_usage_policy_is_a_content_filter_refusal() -> None:
    """OpenAI's 400 ``invalid_prompt`` (a reasoning model's safety check) was a plain invalid
    request, so a route with ``fallback_on_content_filter`` never moved on and the caller could not
    tell a policy refusal from a malformed call; it is a content-filter refusal on both APIs."""
    resp = HttpResponse(400, {"content-type": "application/json"}, json.dumps(INVALID_PROMPT).encode())
    for row in ("openai", "openai-responses"):
        err = adapter(row).parse_error(resp, "o3")
        assert type(err) is ContentFilterError and err.status == 400 and err.code == "invalid_prompt"
    failed = adapter("openai-responses").failure(INVALID_PROMPT["error"], "o3")   # a response.failed event
    assert type(failed) is ContentFilterError and "usage policy" in failed.message
