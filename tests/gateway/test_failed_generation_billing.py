"""An answer the provider billed and then called failed (our ``finish_reason`` ``"error"``:
Gemini's ``MALFORMED_FUNCTION_CALL``, Bedrock's ``malformed_tool_use``) is raised as
GenerationFailedError, and the gateway books what it cost: its reported tokens against tpm,
its cost in the record and against the budget. It does not try again itself: a second billed
attempt could spend past what the call reserved, and budgets never overspend.

Before, the route resampled (two billed answers, one booked) or, with no retry left, booked
0 tokens and $0 for an answer the provider billed $2."""

from __future__ import annotations

import json

import pytest

from cloverleaf._config import ProviderSettings
from cloverleaf._errors import GenerationFailedError, GenerationInterruptedError, QuotaExceededError
from cloverleaf.gateway import SystemClock
from cloverleaf.gateway.config import RouteConfig
from cloverleaf.gateway.fallback import classify

from ..sdk.upstream import Reply, Upstream
from .conftest import Harness, chat_request

USAGE = {"promptTokenCount": 1000, "candidatesTokenCount": 500, "totalTokenCount": 1500}
MALFORMED = {"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "MALFORMED_FUNCTION_CALL",
                             "finishMessage": "Malformed function call"}],
             "usageMetadata": USAGE, "modelVersion": "gemini-2.5-flash"}
OK = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}],
      "usageMetadata": USAGE, "modelVersion": "gemini-2.5-flash"}


@pytest.mark.parametrize("retries", [0, 2])
async def test_a_failed_generation_is_booked_at_its_cost_and_not_tried_again(harness: Harness, retries: int) -> None:
    up = Upstream()
    try:
        gem = ProviderSettings("gem", kind="gemini", base_url=up.url, api_key="gk-mock",
                               input_cost_per_1k=1.0, output_cost_per_1k=2.0)
        s = harness.settings(routes={"r": {"targets": ["gem/gemini-2.5-flash", "fake/echo"], "retries": retries}},
                             providers={"gem": gem}, budgets={"r": {"limit_usd": 100.0}},
                             limits={"gem": {"tpm": 1_000_000, "max_wait": 0}})
        gw = harness.gateway(s, clock=SystemClock())
        up.queue(Reply(body=json.dumps(MALFORMED).encode()), Reply(body=json.dumps(OK).encode()))
        with pytest.raises(GenerationFailedError) as info:
            await gw.achat("r", chat_request())
        assert info.value.response.cost == pytest.approx(2.0)   # 1000 in at $1/1k, 500 out at $2/1k
        assert len(up.seen) == 1                                  # no resample, no fallback
        gw.store.flush()
        [record] = gw.store.recent_calls(5)
        assert (record.status, record.input_tokens, record.output_tokens) == ("error", 1000, 500)
        assert record.cost == pytest.approx(2.0)
        [budget] = await gw.budgets.status()
        assert budget.spent_usd == pytest.approx(2.0) and budget.reserved_usd == 0
        booked = await gw.state.usage("provider:gem:tpm", gw.clock.now())
        assert booked == 1500
    finally:
        up.close()


def test_neither_a_spent_quota_nor_a_failed_generation_is_retried_on_the_upstreams_say_so() -> None:
    """``x-should-retry: true`` on an ``insufficient_quota`` 429: waiting does not refill a quota
    (the SDK's transport checks the quota first and hands it back at once; so does the gateway)."""
    route = RouteConfig("r", ())
    quota = classify(QuotaExceededError("quota spent", provider="openai", should_retry=True), route)
    assert quota.retry is False and quota.fallback is True
    failed = classify(GenerationFailedError("broken", provider="gemini"), route)
    assert (failed.fallback, failed.retry, failed.target_fault) == (False, False, False)


# --------------------------------------------------------------------------- an answer the provider cut short

DEEPSEEK_INTERRUPTED = {"id": "x", "object": "chat.completion", "created": 1, "model": "deepseek-chat",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "The three steps are: 1."},
                                     "finish_reason": "insufficient_system_resource"}],
                        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}}


async def test_an_interrupted_answer_is_booked_and_counts_against_the_target(harness: Harness) -> None:
    """DeepSeek's insufficient_system_resource: billed (its usage reported), so booked at its cost
    and not tried again within the call, as any failed answer; but the target is short of
    capacity, so its breaker counts it, and once open the route's next target answers the next
    calls without DeepSeek being asked."""
    up = Upstream()
    try:
        ds = ProviderSettings("deepseek", base_url=up.url, input_cost_per_1k=1.0, output_cost_per_1k=2.0)
        s = harness.settings(routes={"r": {"targets": ["deepseek/deepseek-chat", "fake/echo"], "retries": 2}},
                             providers={"deepseek": ds}, budgets={"r": {"limit_usd": 100.0}},
                             breaker={"failure_threshold": 2}, env={"DEEPSEEK_API_KEY": "dk-mock"})
        gw = harness.gateway(s, clock=SystemClock())
        up.queue(*[Reply(body=json.dumps(DEEPSEEK_INTERRUPTED).encode())] * 2)
        for _ in range(2):
            with pytest.raises(GenerationInterruptedError) as info:
                await gw.achat("r", chat_request())
            assert info.value.response.cost == pytest.approx(2.0)   # 1000 in at $1/1k, 500 out at $2/1k
        assert len(up.seen) == 2                                      # one request per call
        gw.store.flush()
        records = gw.store.recent_calls(5)
        assert [(r.status, r.input_tokens, r.output_tokens) for r in records] == [("error", 1000, 500)] * 2
        [budget] = await gw.budgets.status()
        assert budget.spent_usd == pytest.approx(4.0) and budget.reserved_usd == 0
        # the circuit is open: the next call goes to fake/echo without asking DeepSeek
        resp = await gw.achat("r", chat_request("after the interruptions"))
        assert resp.text == "after the interruptions" and resp.metadata.target == "fake/echo"
        assert len(up.seen) == 2
    finally:
        up.close()


def test_an_interrupted_answer_is_not_retried_on_the_upstreams_say_so() -> None:
    route = RouteConfig("r", ())
    verdict = classify(GenerationInterruptedError("cut short", provider="deepseek", should_retry=True), route)
    assert (verdict.fallback, verdict.retry, verdict.target_fault) == (False, False, True)
