"""What a call bills besides its tokens at the standard rates: Anthropic's server-side web
searches ($10 per 1,000, reported as ``usage.server_tool_use.web_search_requests``) and OpenAI's
processing tiers (``service_tier`` ``flex`` at half the standard rates, ``priority`` above them).
Both used to be left out of ``cost``: the searches were never billed, and a flex or priority
call was billed at the standard rates (a priority call under-counted, so budgets overran)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloverleaf import Client
from cloverleaf._config import Settings
from cloverleaf._pricing import ModelPrice, lookup
from cloverleaf._types import Usage
from tests.wire import cassette

from .upstream import Reply, Upstream

CASSETTES = "pydantic-ai/tests/models/cassettes/test_anthropic/"
WEB_SEARCH = {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}
SSE = {"content-type": "text/event-stream"}


def client() -> Client:
    return Client(Settings.load(env={"ANTHROPIC_API_KEY": "k", "OPENAI_API_KEY": "k"}), max_retries=0)


def tokens_only(model: str, usage: dict[str, Any]) -> float:
    read, written = usage.get("cache_read_input_tokens") or 0, usage.get("cache_creation_input_tokens") or 0
    price = lookup("anthropic", model)
    assert price is not None
    cost = price.cost(Usage(usage["input_tokens"] + read + written, usage["output_tokens"], read, written))
    assert cost is not None
    return cost


def test_recorded_web_searches_are_billed_whole_and_streamed(upstream: Upstream) -> None:
    """Real recorded answers: one search in a whole answer, two in a stream (the count comes in
    ``message_delta``'s usage)."""
    whole = cassette(CASSETTES + "test_anthropic_web_search_tool.yaml")[0].response
    usage = json.loads(whole.body)["usage"]
    assert usage["server_tool_use"]["web_search_requests"] == 1
    streamed = cassette(CASSETTES + "test_anthropic_model_web_search_tool_stream.yaml")[0].response
    upstream.queue(Reply(body=whole.body), Reply(headers=SSE, body=streamed.body))
    with client() as c:
        r = c.chat("anthropic/claude-sonnet-4-0", "weather?", base_url=upstream.url, extra_body=WEB_SEARCH)
        s = c.stream("anthropic/claude-sonnet-4-0", "weather?", base_url=upstream.url, extra_body=WEB_SEARCH)
        s.until_done()
    assert r.usage.web_search_requests == 1
    assert r.cost == pytest.approx(tokens_only("claude-sonnet-4-0", usage) + 0.01)
    assert s.response.usage.web_search_requests == 2
    streamed_tokens = tokens_only("claude-sonnet-4-0", {"input_tokens": 22397, "output_tokens": 637})
    assert s.response.cost == pytest.approx(streamed_tokens + 0.02)


def test_an_entrys_own_rates_keep_the_search_fee_and_the_tiers() -> None:
    """A negotiated token price does not change the per-search fee; a tier keeps its ratio."""
    sonnet = ModelPrice.per_1k(0.0015, 0.0075, like=lookup("anthropic", "claude-sonnet-4-5"))
    assert sonnet.cost(Usage(1_000, 100, web_search_requests=4)) == pytest.approx((1_000 * 1.5 + 100 * 7.5) / 1e6
                                                                                  + 0.04)
    gpt5 = ModelPrice.per_1k(0.000625, 0.005, like=lookup("openai", "gpt-5"))   # half the list price
    assert gpt5.cost(Usage(1_000_000, 100_000, service_tier="flex")) == pytest.approx(0.3125 + 0.25)


def openai_answer(tier: str) -> bytes:
    return json.dumps({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-5", "service_tier": tier,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1_000_000, "completion_tokens": 100_000, "total_tokens": 1_100_000}}).encode()


def openai_stream(tier: str) -> bytes:
    chunks = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-5", "service_tier": tier,
               "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]},
              {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-5", "service_tier": tier,
               "choices": [], "usage": {"prompt_tokens": 1_000_000, "completion_tokens": 100_000,
                                        "total_tokens": 1_100_000}}]
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode() + b"data: [DONE]\n\n"


def responses_answer(tier: str) -> bytes:
    return json.dumps({
        "id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5", "service_tier": tier,
        "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": "hi", "annotations": []}]}],
        "usage": {"input_tokens": 1_000_000, "output_tokens": 100_000, "total_tokens": 1_100_000}}).encode()


#: gpt-5 for 1M input and 100k output tokens: standard $1.25/$10, flex $0.625/$5, priority $2.50/$20
@pytest.mark.parametrize("tier, cost", [("default", 2.25), ("flex", 1.125), ("priority", 4.5)])
def test_openai_bills_the_tier_the_answer_says_served_it(upstream: Upstream, tier: str, cost: float) -> None:
    upstream.queue(Reply(body=openai_answer(tier)), Reply(headers=SSE, body=openai_stream(tier)),
                   Reply(body=responses_answer(tier)))
    with client() as c:
        whole = c.chat("openai/gpt-5", "hi", base_url=f"{upstream.url}/v1", extra_body={"service_tier": tier})
        s = c.stream("openai/gpt-5", "hi", base_url=f"{upstream.url}/v1", extra_body={"service_tier": tier})
        s.until_done()
        responses = c.chat("openai-responses/gpt-5", "hi", base_url=f"{upstream.url}/v1",
                           extra_body={"service_tier": tier})
    for r in (whole, s.response, responses):
        assert r.usage.service_tier == tier
        assert r.cost == pytest.approx(cost)


def audio_answer(model: str, tier: str | None = None) -> bytes:
    """An audio answer (``modalities: ["text", "audio"]``): 1,000 of its 1,200 output tokens audio."""
    return json.dumps({
        "id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": model,
        **({"service_tier": tier} if tier else {}),
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": None,
            "audio": {"id": "audio_1", "data": "UklGRg==", "expires_at": 2, "transcript": "hello"}}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 1_200, "total_tokens": 1_300,
                  "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 1_000}}}).encode()


AUDIO_OUT = {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}


def test_audio_output_tokens_bill_at_the_audio_rate_or_leave_the_call_unpriced(upstream: Upstream) -> None:
    """``completion_tokens_details.audio_tokens`` was read nowhere: an audio answer billed all its
    output at the text rate ($10/M on gpt-4o-audio-preview, where audio output is $80/M). It bills
    at the row's audio output rate now, and where the rates list none (a [[models]] entry's own,
    gpt-4o's) the call is unpriced: cost None, never the text rate."""
    upstream.queue(Reply(body=audio_answer("gpt-4o-audio-preview")), Reply(body=audio_answer("gpt-4o-mini-audio-preview")))
    with client() as c:
        full = c.chat("openai/gpt-4o-audio-preview", "hi", base_url=f"{upstream.url}/v1", extra_body=AUDIO_OUT)
        mini = c.chat("openai/gpt-4o-mini-audio-preview-2024-12-17", "hi", base_url=f"{upstream.url}/v1",
                      extra_body=AUDIO_OUT)
    assert full.usage.audio_output_tokens == 1_000
    assert full.cost == pytest.approx((100 * 2.5 + 200 * 10.0 + 1_000 * 80.0) / 1e6)
    assert mini.cost == pytest.approx((100 * 0.15 + 200 * 0.6 + 1_000 * 20.0) / 1e6)
    # the first snapshot billed audio at $100/$200
    legacy = lookup("openai", "gpt-4o-audio-preview-2024-10-01")
    assert legacy is not None and legacy.cost(full.usage) == pytest.approx((100 * 2.5 + 200 * 10.0 + 200_000) / 1e6)
    # rates with no audio output price: unpriced, not $10/M
    no_audio_rate = ModelPrice.per_1k(0.0025, 0.01)
    assert no_audio_rate.cost(full.usage) is None
    # an entry's own rates for the audio model keep its audio rate in proportion (half here)
    half = ModelPrice.per_1k(0.00125, 0.005, like=lookup("openai", "gpt-4o-audio-preview"))
    assert half.cost(full.usage) == pytest.approx((100 * 1.25 + 200 * 5.0 + 1_000 * 40.0) / 1e6)
    # a budget bounds the output at the dearer audio rate
    assert lookup("openai", "gpt-4o-audio-preview").bound_rates(1_000) == (40.0, 80.0)   # type: ignore[union-attr]


@pytest.mark.parametrize("model, tier, priced", [
    ("gpt-5", "priority", True), ("gpt-5", "flex", True),            # rates of their own in the table
    ("gpt-4o", "priority", False), ("gpt-5-codex", "flex", False),   # none listed: unpriced
    ("gpt-4o", "default", True), ("gpt-4o", "auto", True)])
def test_a_tier_the_table_has_no_rates_for_is_unpriced_not_billed_as_standard(model: str, tier: str,
                                                                             priced: bool) -> None:
    """A priority call on a model whose priority rates the table does not list was billed at the
    standard rates: up to half its bill uncounted, and budgets overran by it."""
    price = lookup("openai", model)
    assert price is not None
    assert (price.cost(Usage(1_000, 100, service_tier=tier)) is not None) is priced


def test_gemini_bills_the_tier_that_served_it_or_leaves_the_call_unpriced() -> None:
    """Google bills flex at half the standard rates and priority at 75-100 % more (a priority call
    past its limit is served, and billed, at standard); the answer says which tier served it
    (``usageMetadata.serviceTier``; Vertex's ``trafficType``). Both were read nowhere, so every
    call was billed at standard. With no flex or priority rates in the table such a call is now
    unpriced; a standard one keeps its price."""
    from cloverleaf.providers.gemini.stream import usage_from

    row = lookup("gemini", "gemini-2.5-flash")
    assert row is not None
    base = {"promptTokenCount": 1_000, "candidatesTokenCount": 100, "totalTokenCount": 1_100}
    for meta, tier in (({"serviceTier": "flex"}, "flex"), ({"serviceTier": "priority"}, "priority"),
                       ({"trafficType": "ON_DEMAND_FLEX"}, "flex"), ({"trafficType": "ON_DEMAND_PRIORITY"}, "priority")):
        usage = usage_from({**base, **meta})
        assert usage.service_tier == tier and row.cost(usage) is None, meta
    for meta in ({"serviceTier": "standard"}, {"trafficType": "ON_DEMAND"}, {}):
        usage = usage_from({**base, **meta})
        assert usage.service_tier is None and row.cost(usage) == pytest.approx((1_000 * 0.3 + 100 * 2.5) / 1e6)


def audio_stream(model: str) -> bytes:
    """:func:`audio_answer` streamed (``stream_options.include_usage``): the usage in the last chunk."""
    chunks = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model,
               "choices": [{"index": 0, "delta": {"role": "assistant", "audio": {"id": "audio_1", "transcript": "hello"}},
                            "finish_reason": "stop"}]},
              {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [],
               "usage": json.loads(audio_answer(model))["usage"]}]
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode() + b"data: [DONE]\n\n"


def test_a_streamed_audio_answer_bills_its_audio_output_too(upstream: Upstream) -> None:
    """A stream's usage is merged field by field, and ``audio_output_tokens`` was left out of the
    merge: a streamed audio answer came back with 0 audio output tokens and billed all of its
    output at the text rate ($0.01225 here instead of $0.08225, an eighth of the audio)."""
    upstream.queue(Reply(headers=SSE, body=audio_stream("gpt-4o-audio-preview")))
    with client() as c:
        s = c.stream("openai/gpt-4o-audio-preview", "hi", base_url=f"{upstream.url}/v1", extra_body=AUDIO_OUT)
        s.until_done()
    assert s.response.usage.audio_output_tokens == 1_000
    assert s.response.cost == pytest.approx((100 * 2.5 + 200 * 10.0 + 1_000 * 80.0) / 1e6)


def groq_answer(tier: str) -> bytes:
    return json.dumps({
        "id": "chatcmpl-3", "object": "chat.completion", "created": 1, "model": "llama-3.3-70b-versatile",
        "service_tier": tier,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1_000_000, "completion_tokens": 100_000, "total_tokens": 1_100_000}}).encode()


@pytest.mark.parametrize("tier", ["flex", "on_demand"])
def test_groq_flex_bills_at_the_on_demand_rates_and_stays_priced(upstream: Upstream, tier: str) -> None:
    """Groq answers ``service_tier: "flex"`` for a call served at flex (asked for, or taken by
    ``auto`` past the on-demand limits), which it bills at the on-demand rates. The rule that
    an unlisted flex tier is unpriced (OpenAI's, Google's) left every such call with no cost, so
    budgets charged each its whole reservation. It is priced at the row's rates now."""
    upstream.queue(Reply(body=groq_answer(tier)))
    with Client(Settings.load(env={"GROQ_API_KEY": "k"}), max_retries=0) as c:
        r = c.chat("groq/llama-3.3-70b-versatile", "hi", base_url=f"{upstream.url}/v1",
                   extra_body={"service_tier": tier})
    assert r.usage.service_tier == tier
    assert r.cost == pytest.approx(0.59 + 0.079)   # $0.59/M in, $0.79/M out
    # OpenAI's own flex is still unpriced where the table lists none for the model
    assert lookup("openai", "gpt-4o").cost(Usage(1_000, 100, service_tier="flex")) is None  # type: ignore[union-attr]
