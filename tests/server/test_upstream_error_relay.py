"""How a provider's error reaches the server's clients, read through the official OpenAI and
Anthropic SDKs against a live server and a mock upstream on 127.0.0.1: the request's id, the field
at fault, no retry the SDKs would waste, no invented status, no configured secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from cloverleaf._config import ProviderSettings

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

PORTKEY = "pk-live-9f8e7d6c5b4a3210zz"
HI: Any = [{"role": "user", "content": "hi"}]
COMPLETION = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": [
    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hello"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    providers = {"anth": ProviderSettings("anth", kind="anthropic", base_url=upstream.url, api_key="sk-ant-mock"),
                 "oai": ProviderSettings("oai", kind="openai", base_url=f"{upstream.url}/v1", api_key="sk-mock"),
                 "gem": ProviderSettings("gem", kind="gemini", base_url=f"{upstream.url}/v1beta",
                                         api_key="AIzaMOCK0000000000000"),
                 "viaportkey": ProviderSettings("viaportkey", kind="openai", base_url=f"{upstream.url}/v1",
                                                headers={"x-portkey-api-key": PORTKEY})}
    server = start_live(settings(providers=providers))
    yield server
    stop_live(server)


def reply(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, headers={"content-type": "application/json", **(headers or {})},
                 body=json.dumps(body).encode())


@pytest.fixture(autouse=True)
def _fresh(upstream: Upstream) -> Iterator[None]:
    upstream.replies.clear()
    yield
    upstream.replies.clear()


BAD_TEMPERATURE = {"error": {"message": "Invalid value for 'temperature': must be <= 2.",
                             "type": "invalid_request_error", "param": "temperature", "code": "invalid_value"}}


def test_the_sdks_see_the_request_id_the_upstreams_or_the_gateways(live: Live, upstream: Upstream) -> None:
    """Every answer names its request: the provider's id when it gave one (what its support asks
    for), else the gateway's call id (what the traces find the call by). Each SDK reads its own
    header (x-request-id, request-id); the server sent neither, so ``e.request_id`` was None."""
    upstream.queue(reply(BAD_TEMPERATURE, 400, {"x-request-id": "req_abc123"}))
    with pytest.raises(openai.BadRequestError) as raised:
        live.openai().chat.completions.create(model="oai/gpt-4o", messages=HI, temperature=1)
    assert raised.value.request_id == "req_abc123"
    upstream.queue(reply(BAD_TEMPERATURE, 400, {"x-request-id": "req_abc124"}))
    with pytest.raises(anthropic.BadRequestError) as refused:
        live.anthropic().messages.create(model="oai/gpt-4o", max_tokens=10, messages=HI)
    assert refused.value.request_id == "req_abc124"

    upstream.queue(reply(COMPLETION, headers={"x-request-id": "req_ok1"}))
    answer = live.openai().chat.completions.create(model="oai/gpt-4o", messages=HI)
    assert answer._request_id == "req_ok1"
    upstream.queue(reply(COMPLETION, headers={"x-request-id": "req_ok2"}))
    raw = live.anthropic().messages.with_raw_response.create(model="oai/gpt-4o", max_tokens=10, messages=HI)
    assert raw.request_id == "req_ok2" and raw.parse().content[0].text == "hello"   # type: ignore[union-attr]

    # a provider that sends no id (Gemini), a stream, a request refused before any call: the gateway's
    gemini = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hello"}]}, "finishReason": "STOP"}],
              "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2}}
    upstream.queue(reply(gemini))
    call_id = live.openai().chat.completions.create(model="gem/gemini-2.5-flash", messages=HI)._request_id
    assert call_id is not None and call_id.startswith("call_")
    chunk = {**COMPLETION, "object": "chat.completion.chunk",
             "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
    with live.http() as http:
        upstream.queue(Reply(headers={"content-type": "text/event-stream"},
                             chunks=[f"data: {json.dumps(chunk)}\n\n".encode(), b"data: [DONE]\n\n"]))
        with http.stream("POST", "/v1/chat/completions", json={"model": "oai/gpt-4o", "messages": HI,
                                                               "stream": True}) as streamed:
            assert streamed.status_code == 200 and streamed.headers["x-request-id"].startswith("call_")
            streamed.read()
        refused_early = http.post("/v1/messages", json={"model": "nobody/nothing", "max_tokens": 1, "messages": HI})
        assert refused_early.status_code == 404 and refused_early.headers["request-id"].startswith("req_")
        assert "x-request-id" not in refused_early.headers


def test_the_field_at_fault_reaches_the_client(live: Live, upstream: Upstream) -> None:
    """OpenAI's ``param`` was dropped on the way (``param: null``)."""
    upstream.queue(reply(BAD_TEMPERATURE, 400))
    with pytest.raises(openai.BadRequestError) as raised:
        live.openai().chat.completions.create(model="oai/gpt-4o", messages=HI, temperature=1)
    assert (raised.value.param, raised.value.code) == ("temperature", "invalid_value")


def test_a_rejected_provider_key_is_not_retried_by_the_sdks(live: Live, upstream: Upstream) -> None:
    """A bad provider key at the gateway is a 502 upstream_auth_failed, which the SDKs retry like
    any 502 (three calls each, until the target's circuit opened): it says x-should-retry: false."""
    bad_key = {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
    upstream.queue(*[reply(bad_key, 401, {"request-id": "req_1"}) for _ in range(3)])
    before = len(upstream.seen)
    with pytest.raises(anthropic.InternalServerError) as raised:
        anthropic.Anthropic(base_url=live.url, api_key="unused", max_retries=2).messages.create(
            model="anth/claude-haiku-4-5", max_tokens=10, messages=HI)
    assert len(upstream.seen) - before == 1
    assert raised.value.status_code == 502 and raised.value.response.headers["x-should-retry"] == "false"
    assert raised.value.body["error"]["details"]["error_code"] == "upstream_auth_failed"  # type: ignore[index]


def test_a_billing_not_active_429_is_a_spent_quota(live: Live, upstream: Upstream) -> None:
    """OpenAI's 429 billing_not_active was a rate limit: retried, and passed on with a Retry-After
    the SDKs followed. It is a spent quota: one call, no Retry-After, x-should-retry: false."""
    inactive = {"error": {"message": "Your account is not active, please check your billing details on our website.",
                          "type": "billing_not_active", "param": None, "code": "billing_not_active"}}
    upstream.queue(*[reply(inactive, 429) for _ in range(3)])
    before = len(upstream.seen)
    with pytest.raises(openai.RateLimitError) as raised:
        openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=2).chat.completions.create(
            model="oai/gpt-4o", messages=HI)
    assert len(upstream.seen) - before == 1
    assert raised.value.code == "billing_not_active"
    assert "retry-after" not in raised.value.response.headers
    assert raised.value.response.headers["x-should-retry"] == "false"


def test_an_error_inside_a_200_stream_is_not_called_a_500(live: Live, upstream: Upstream) -> None:
    """A rate-limit object inside a 200 stream was labelled HTTP 500 (``upstream_status: 500``)."""
    limited = {"error": {"message": "Rate limit reached", "type": "tokens", "param": None,
                         "code": "rate_limit_exceeded"}}
    upstream.queue(Reply(headers={"content-type": "text/event-stream"},
                         chunks=[f"data: {json.dumps(limited)}\n\n".encode()]))
    with live.http() as http:
        answer = http.post("/v1/chat/completions", json={"model": "oai/gpt-4o", "messages": HI, "stream": True})
    assert answer.status_code == 429
    assert answer.json()["error"]["upstream_status"] == 429 and "500" not in answer.json()["error"]["message"]


def test_a_configured_header_secret_never_reaches_the_client(live: Live, upstream: Upstream) -> None:
    """A proxy that echoes the request's headers in its 400 put the provider's configured
    x-portkey-api-key into the 400 every client of the gateway could read."""
    echoed = {"error": {"message": f"invalid request; headers: x-portkey-api-key: {PORTKEY}; "
                                   "content-type: application/json", "type": "invalid_request_error", "code": None}}
    upstream.queue(reply(echoed, 400))
    with pytest.raises(openai.BadRequestError) as raised:
        live.openai().chat.completions.create(model="viaportkey/gpt-4o", messages=HI)
    assert upstream.seen[-1].headers["x-portkey-api-key"] == PORTKEY   # it was sent...
    text = raised.value.response.text
    assert PORTKEY not in text and "x-portkey-api-key: <redacted>" in text   # ...and masked in the echo
