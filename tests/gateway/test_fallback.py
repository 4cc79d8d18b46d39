"""Fallback through a real Engine and the fake provider's fault injection."""

from __future__ import annotations

import pytest

from cloverleaf._config import ModelEntry
from cloverleaf._errors import (
    AllTargetsFailed,
    AuthenticationError,
    CircuitOpen,
    ContentFilterError,
    ContextWindowExceededError,
    InvalidRequestError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    UnsupportedCapability,
)
from cloverleaf._types import EmbeddingRequest, Tool

from .conftest import Harness, chat_request, upstream


def _route(*targets: str, **options: object) -> dict[str, object]:
    return {"smart": {"targets": list(targets), **options}}


async def test_server_error_falls_back_to_next_target(harness: Harness) -> None:
    gw = harness.gateway(routes=_route("fake/fail-500", "fake/echo"))
    resp = await gw.achat("smart", chat_request("fall back please"))
    assert resp.text == "fall back please"
    assert resp.metadata.target == "fake/echo"
    assert [(a.target, type(a.error).__name__ if a.error else None) for a in resp.metadata.attempts] == [
        ("fake/fail-500", "ServerError"), ("fake/echo", None)]
    assert [r.json["model"] for r in upstream(gw).requests] == ["fail-500", "echo"]


async def test_rate_limited_target_is_retried_with_backoff_then_succeeds(harness: Harness) -> None:
    gw = harness.gateway(routes=_route("fake/echo", retries=2))
    upstream(gw).script.fail(429).fail(429)
    resp = await gw.achat("smart", chat_request("third time lucky"))
    assert resp.text == "third time lucky"
    kinds = [type(a.error).__name__ if a.error else "ok" for a in resp.metadata.attempts]
    assert kinds == ["RateLimitError", "RateLimitError", "ok"]
    assert len(upstream(gw).requests) == 3


async def test_retries_are_bounded_before_falling_back(harness: Harness) -> None:
    gw = harness.gateway(routes=_route("fake/fail-503", "fake/echo", retries=1))
    resp = await gw.achat("smart", chat_request())
    assert [r.json["model"] for r in upstream(gw).requests] == ["fail-503", "fail-503", "echo"]
    assert resp.metadata.target == "fake/echo"


async def test_authentication_failure_of_one_target_falls_back(harness: Harness) -> None:
    gw = harness.gateway(routes=_route("fake/fail-401", "fake/echo", retries=3))
    resp = await gw.achat("smart", chat_request("key trouble"))
    assert resp.text == "key trouble"
    assert isinstance(resp.metadata.attempts[0].error, AuthenticationError)
    assert len(upstream(gw).requests) == 2  # an auth failure is not retried on the same target


async def test_invalid_request_never_falls_back(harness: Harness) -> None:
    gw = harness.gateway(routes=_route("fake/echo", "fake/other"))
    upstream(gw).script.fail(400)
    with pytest.raises(InvalidRequestError):
        await gw.achat("smart", chat_request())
    assert len(upstream(gw).requests) == 1


async def test_a_body_over_one_providers_size_limit_falls_back_without_a_retry(harness: Harness) -> None:
    """A 413 is this provider's byte limit: the same body again fails the same way, another
    provider may take it."""
    gw = harness.gateway(routes=_route("fake/echo", "fake/other", retries=2))
    upstream(gw).script.fail(413)
    resp = await gw.achat("smart", chat_request("smaller elsewhere"))
    assert resp.metadata.target == "fake/other"
    assert isinstance(resp.metadata.attempts[0].error, RequestTooLargeError)
    assert resp.metadata.attempts[0].error.status == 413
    assert [r.json["model"] for r in upstream(gw).requests] == ["echo", "other"]


async def test_unsupported_capability_never_falls_back(harness: Harness) -> None:
    gw = harness.gateway(routes={"emb": {"targets": ["anthropic/claude-sonnet-4-5", "fake/echo"]}},
                         env={"ANTHROPIC_API_KEY": "test-anthropic-key"})
    with pytest.raises(UnsupportedCapability):
        await gw.aembed("emb", EmbeddingRequest(model="", inputs=["a"]))
    assert upstream(gw).requests == []


_TOOLS = [Tool("get_weather", "Weather in a city.")]
_PERPLEXITY = {"PERPLEXITY_API_KEY": "pk-test"}   # perplexity/sonar takes no tools: refused before sending


async def test_a_primary_that_lacks_a_capability_raises(harness: Harness) -> None:
    gw = harness.gateway(routes=_route("perplexity/sonar", "fake/echo"), env=_PERPLEXITY)
    with pytest.raises(UnsupportedCapability):
        await gw.achat("smart", chat_request(tools=_TOOLS))
    assert upstream(gw).requests == []   # never a silent reroute


async def test_a_fallback_that_lacks_a_capability_is_skipped_not_raised(harness: Harness) -> None:
    """The primary's 503 led to a fallback without tools, whose UnsupportedCapability ended the
    call: the real failure was hidden and the third target, which could answer, never tried."""
    gw = harness.gateway(routes=_route("fake/fail-503", "perplexity/sonar", "fake/echo"), env=_PERPLEXITY)
    resp = await gw.achat("smart", chat_request("tools please", tools=_TOOLS))
    assert resp.metadata.target == "fake/echo"
    assert [(a.target, type(a.error).__name__ if a.error else None) for a in resp.metadata.attempts] == [
        ("fake/fail-503", "OverloadedError"), ("perplexity/sonar", "UnsupportedCapability"), ("fake/echo", None)]
    events = [e async for e in gw.astream("smart", chat_request("streamed", tools=_TOOLS))]
    done = events[-1].response
    assert done is not None and done.metadata.target == "fake/echo"


async def test_a_skipped_fallback_is_named_when_nothing_answers(harness: Harness) -> None:
    gw = harness.gateway(routes=_route("fake/fail-503", "perplexity/sonar"), env=_PERPLEXITY)
    with pytest.raises(AllTargetsFailed) as info:
        await gw.achat("smart", chat_request(tools=_TOOLS))
    assert [(a.target, type(a.error).__name__) for a in info.value.attempts] == [
        ("fake/fail-503", "OverloadedError"), ("perplexity/sonar", "UnsupportedCapability")]
    assert "does not support tools" in str(info.value)


async def test_context_window_error_goes_only_to_larger_windows(harness: Harness) -> None:
    models = [ModelEntry(name="small", identifier="echo", provider="fake", context_window=8_000),
              ModelEntry(name="same", identifier="echo", provider="fake", context_window=8_000),
              ModelEntry(name="big", identifier="echo", provider="fake", context_window=128_000)]
    gw = harness.gateway(routes=_route("small", "same", "big"), models=models)
    upstream(gw).script.fail(400, {"error": {"message": "This model's maximum context length is 8000 tokens",
                                             "type": "invalid_request_error", "code": "context_length_exceeded"}})
    resp = await gw.achat("smart", chat_request("long prompt"))
    assert resp.metadata.target == "big"
    assert [a.target for a in resp.metadata.attempts] == ["small", "big"]
    assert isinstance(resp.metadata.attempts[0].error, ContextWindowExceededError)


async def test_context_window_error_with_no_larger_target_fails(harness: Harness) -> None:
    models = [ModelEntry(name="small", identifier="echo", provider="fake", context_window=8_000),
              ModelEntry(name="same", identifier="echo", provider="fake", context_window=8_000)]
    gw = harness.gateway(routes=_route("small", "same"), models=models)
    upstream(gw).script.fail(400, {"error": {"message": "too long", "code": "context_length_exceeded"}})
    with pytest.raises(AllTargetsFailed) as info:
        await gw.achat("smart", chat_request())
    assert [a.target for a in info.value.attempts] == ["small"]


_FILTERED = {"error": {"message": "blocked", "type": "invalid_request_error", "code": "content_filter"}}


async def test_content_filter_does_not_fall_back_by_default(harness: Harness) -> None:
    gw = harness.gateway(routes=_route("fake/echo", "fake/other"))
    upstream(gw).script.fail(400, _FILTERED)
    with pytest.raises(ContentFilterError):
        await gw.achat("smart", chat_request())


async def test_content_filter_falls_back_when_opted_in(harness: Harness) -> None:
    gw = harness.gateway(routes=_route("fake/echo", "fake/other", fallback_on_content_filter=True))
    upstream(gw).script.fail(400, _FILTERED)
    resp = await gw.achat("smart", chat_request("filtered?"))
    assert resp.metadata.target == "fake/other"


async def test_all_targets_failed_lists_every_attempt(harness: Harness) -> None:
    gw = harness.gateway(routes=_route("fake/fail-500", "fake/fail-429", retries=1))
    with pytest.raises(AllTargetsFailed) as info:
        await gw.achat("smart", chat_request())
    err = info.value
    assert err.route == "smart"
    assert [(a.target, type(a.error)) for a in err.attempts] == [
        ("fake/fail-500", ServerError), ("fake/fail-500", ServerError),
        ("fake/fail-429", RateLimitError), ("fake/fail-429", RateLimitError)]
    assert all(a.status in (500, 429) for a in err.attempts)
    assert "fake/fail-429" in str(err)


async def test_plain_model_id_is_a_one_target_route_raising_its_own_error(harness: Harness) -> None:
    gw = harness.gateway()
    resp = await gw.achat("fake/echo", chat_request("plain id"))
    assert resp.text == "plain id" and resp.metadata.target == "fake/echo"
    with pytest.raises(ServerError):
        await gw.achat("fake/fail-502", chat_request())


async def test_timeouts_and_malformed_json_fall_back(harness: Harness) -> None:
    gw = harness.gateway(routes=_route("fake/garbage", "fake/echo"))
    resp = await gw.achat("smart", chat_request("after garbage"))
    assert resp.text == "after garbage"
    assert type(resp.metadata.attempts[0].error).__name__ == "MalformedResponseError"


async def test_open_circuit_is_skipped_without_a_network_call(harness: Harness) -> None:
    gw = harness.gateway(routes=_route("fake/fail-500", "fake/echo"), breaker={"failure_threshold": 2})
    for _ in range(2):
        await gw.achat("smart", chat_request())
    before = len(upstream(gw).requests)
    resp = await gw.achat("smart", chat_request("circuit"))
    assert len(upstream(gw).requests) == before + 1  # only fake/echo was called
    assert isinstance(resp.metadata.attempts[0].error, CircuitOpen)
    assert gw.breakers["fake/fail-500"].state == "open"


def test_sync_twin_shares_the_fallback_loop(harness: Harness) -> None:
    gw = harness.gateway(routes=_route("fake/fail-500", "fake/echo"))
    resp = gw.chat("smart", chat_request("sync works"))
    assert resp.text == "sync works"
    assert resp.metadata.target == "fake/echo"
    events = list(gw.stream("smart", chat_request("sync stream")))
    assert "".join(e.text or "" for e in events if e.type == "text") == "sync stream"
    assert events[-1].type == "done" and events[-1].response.metadata.target == "fake/echo"


def _local_models(**windows: int | None) -> tuple[dict[str, object], list[ModelEntry]]:
    """Entries on an OpenAI-compatible provider with no built-in prices, served by the fake
    upstream; a window of None stays unknown."""
    from cloverleaf._config import ProviderSettings
    from cloverleaf.providers.fake.adapter import BASE_URL

    providers = {"loc": ProviderSettings(name="loc", kind="openai", base_url=BASE_URL)}
    models = [ModelEntry(name=name, identifier="echo", provider="loc", context_window=window,
                         **({} if window is None else {"input_cost_per_1k": 0.001, "output_cost_per_1k": 0.002}))
              for name, window in windows.items()]
    return providers, models


_TOO_LONG = {"error": {"message": "maximum context length exceeded", "code": "context_length_exceeded"}}


async def test_context_window_error_on_an_unknown_window_skips_targets_too_small_for_the_prompt(
        harness: Harness) -> None:
    providers, models = _local_models(mystery=None, small=1_000, big=200_000)
    gw = harness.gateway(routes=_route("mystery", "small", "big"), models=models, providers=providers)
    upstream(gw).script.fail(400, _TOO_LONG)
    prompt = "word " * 4000                       # ~5,000 tokens: cannot fit a 1,000-token window
    resp = await gw.achat("smart", chat_request(prompt))
    assert [a.target for a in resp.metadata.attempts] == ["mystery", "big"]
    assert resp.metadata.target == "big"


async def test_context_window_error_never_goes_to_a_target_of_unknown_window(harness: Harness) -> None:
    providers, models = _local_models(small=8_000, mystery=None)
    gw = harness.gateway(routes=_route("small", "mystery"), models=models, providers=providers)
    upstream(gw).script.fail(400, _TOO_LONG)
    with pytest.raises(AllTargetsFailed) as info:
        await gw.achat("smart", chat_request())
    assert [a.target for a in info.value.attempts] == ["small"]


def test_a_failed_generation_is_raised_without_blaming_the_target() -> None:
    """finish_reason "error" (Gemini MALFORMED_FUNCTION_CALL, Bedrock malformed_tool_use) is raised as
    GenerationFailedError: the provider billed that answer, so the gateway books it and does not
    try again (see test_failed_generation_billing); the target answered, so its breaker does not
    count it."""
    from cloverleaf._errors import GenerationFailedError
    from cloverleaf.gateway.config import RouteConfig
    from cloverleaf.gateway.fallback import classify

    verdict = classify(GenerationFailedError("broken call", provider="gemini"), RouteConfig("smart", ()))
    assert (verdict.fallback, verdict.retry, verdict.target_fault) == (False, False, False)


def test_a_redirect_moves_on_to_the_next_target_without_asking_again() -> None:
    """A 3xx says this target's base_url is wrong (the API moved): like a 404 there, the next
    target is tried, the same one is not asked again, and its breaker counts it."""
    from cloverleaf._errors import RedirectError
    from cloverleaf.gateway.config import RouteConfig
    from cloverleaf.gateway.fallback import classify

    verdict = classify(RedirectError("moved", provider="openai", status=301), RouteConfig("smart", ()))
    assert (verdict.fallback, verdict.retry, verdict.target_fault) == (True, False, True)
