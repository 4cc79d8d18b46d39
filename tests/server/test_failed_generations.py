"""An answer the upstream says failed is an error through the server, never a 200 ``stop``.

Two shapes of one situation, both a 200 from the upstream: Gemini's ``finishReason``
``MALFORMED_FUNCTION_CALL`` and Bedrock's ``stopReason`` ``malformed_tool_use`` (an answer
that came out broken, our ``finish_reason`` ``"error"``), and OpenRouter's ``choices[].error``
(the upstream behind it failed mid-answer). Mock upstreams behind a live server, read with
the official OpenAI and Anthropic SDKs: a 502 naming what the upstream said (a route does not try
again: the provider billed the answer), and, when text was already streamed, an error event.
DeepSeek's ``insufficient_system_resource`` (it cut the answer short for want of capacity) is
one too: its text read as a complete answer (``stop``, ``end_turn``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from cloverleaf._config import ProviderSettings

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

FINISH_MESSAGE = "Malformed function call: print(default_api.get_weather(city='Paris'"
MALFORMED = {"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "MALFORMED_FUNCTION_CALL",
                             "finishMessage": FINISH_MESSAGE}],
             "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10}, "modelVersion": "gemini-2.5-flash"}
CHOICE_ERROR = {"code": 502, "message": "Provider returned error",
                "metadata": {"raw": "upstream connection reset", "provider_name": "Anthropic"}}
ASK: dict[str, Any] = {"messages": [{"role": "user", "content": "Weather in Paris?"}]}


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    providers = {
        "gem": ProviderSettings("gem", kind="gemini", base_url=upstream.url, api_key="gk-mock"),
        "bed": ProviderSettings("bed", kind="bedrock", base_url=upstream.url, extra={"region": "us-east-1"}),
        "openrouter": ProviderSettings("openrouter", base_url=upstream.url),
        "deepseek": ProviderSettings("deepseek", base_url=upstream.url),
    }
    routes = {"weather": {"targets": ["gem/gemini-2.5-flash", "fake/echo"]},
              "steps": {"targets": ["deepseek/deepseek-chat", "fake/echo"]},
              "metered": {"targets": ["deepseek/deepseek-reasoner"]}}   # a breaker of its own
    server = start_live(settings(providers=providers, routes=routes, env={
        "AWS_BEARER_TOKEN_BEDROCK": "bk-mock", "OPENROUTER_API_KEY": "ork-mock", "DEEPSEEK_API_KEY": "dk-mock"}))
    yield server
    stop_live(server)


@pytest.fixture(autouse=True)
def fresh_queue(upstream: Upstream) -> None:
    """A test's replies are its own, whatever an earlier test left unanswered."""
    with upstream.lock:
        upstream.replies.clear()


def _json(body: dict[str, Any]) -> Reply:
    return Reply(body=json.dumps(body).encode())


def _sse(*chunks: Any) -> Reply:
    return Reply(headers={"content-type": "text/event-stream"},
                 chunks=[f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n".encode() for c in chunks])


def test_a_malformed_gemini_answer_is_a_502_with_gemini_s_words(live: Live, upstream: Upstream) -> None:
    upstream.queue(_json(MALFORMED), _json(MALFORMED), _sse(MALFORMED))
    with pytest.raises(openai.APIStatusError) as chat:
        live.openai().chat.completions.create(model="gem/gemini-2.5-flash", **ASK)
    assert chat.value.status_code == 502
    assert chat.value.body["code"] == "upstream_generation_failed"   # type: ignore[index]
    assert FINISH_MESSAGE in chat.value.message and "MALFORMED_FUNCTION_CALL" in chat.value.message
    with pytest.raises(anthropic.APIStatusError) as messages:
        live.anthropic().messages.create(model="gem/gemini-2.5-flash", max_tokens=50, **ASK)
    assert messages.value.status_code == 502 and FINISH_MESSAGE in messages.value.message
    # streamed: nothing was sent before the failure, so it is the same HTTP error
    with pytest.raises(openai.APIStatusError) as streamed:
        list(live.openai().chat.completions.create(model="gem/gemini-2.5-flash", stream=True, **ASK))
    assert streamed.value.status_code == 502 and FINISH_MESSAGE in streamed.value.message


def test_a_malformed_bedrock_answer_is_a_502(live: Live, upstream: Upstream) -> None:
    body = {"output": {"message": {"role": "assistant", "content": []}}, "stopReason": "malformed_tool_use",
            "usage": {"inputTokens": 10, "outputTokens": 3, "totalTokens": 13}}
    upstream.queue(_json(body))
    with pytest.raises(anthropic.APIStatusError) as err:
        live.anthropic().messages.create(model="bed/anthropic.claude-sonnet-4-5-20250929-v1:0", max_tokens=50, **ASK)
    assert err.value.status_code == 502 and "malformed_tool_use" in err.value.message


def test_a_route_does_not_try_again_after_a_billed_malformed_answer(live: Live, upstream: Upstream) -> None:
    """The provider billed the broken answer: the route neither resamples nor falls back (that
    could spend past what the call reserved); the client gets the 502, which its SDK retries."""
    upstream.queue(_json(MALFORMED), _sse(MALFORMED))
    seen = len(upstream.seen)
    with pytest.raises(openai.APIStatusError) as whole:
        live.openai().with_options(max_retries=0).chat.completions.create(model="weather", **ASK)
    assert whole.value.status_code == 502 and FINISH_MESSAGE in whole.value.message
    with pytest.raises(openai.APIStatusError) as streamed:
        list(live.openai().with_options(max_retries=0).chat.completions.create(model="weather", stream=True, **ASK))
    assert streamed.value.status_code == 502
    assert len(upstream.seen) == seen + 2   # one upstream request per call


def test_an_openrouter_choice_error_is_an_error(live: Live, upstream: Upstream) -> None:
    whole = {"id": "gen-1", "object": "chat.completion", "model": "anthropic/claude-3.5-sonnet",
             "choices": [{"index": 0, "finish_reason": "error", "native_finish_reason": "error",
                          "message": {"role": "assistant", "content": ""}, "error": CHOICE_ERROR}],
             "usage": {"prompt_tokens": 10, "completion_tokens": 0, "total_tokens": 10}}
    head = {"id": "gen-1", "object": "chat.completion.chunk", "model": "anthropic/claude-3.5-sonnet",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "The answer is"}, "finish_reason": None}]}
    failed = {**head, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error", "error": CHOICE_ERROR}]}
    upstream.queue(_json(whole), _sse(head, failed, "[DONE]"))
    with pytest.raises(openai.APIStatusError) as err:
        live.openai().chat.completions.create(model="openrouter/anthropic/claude-3.5-sonnet", **ASK)
    assert err.value.status_code == 502 and "upstream connection reset" in err.value.message
    # streamed: never a finish; the failure is an error event after the text that came before it
    # (or the HTTP error, when both chunks reached the gateway in one read and nothing was sent yet)
    text = ""
    with pytest.raises(openai.APIError) as mid:
        for chunk in live.openai().chat.completions.create(model="openrouter/anthropic/claude-3.5-sonnet",
                                                           stream=True, **ASK):
            text += chunk.choices[0].delta.content or "" if chunk.choices else ""
            assert not (chunk.choices and chunk.choices[0].finish_reason)
    assert text in ("", "The answer is") and "upstream connection reset" in str(mid.value)


# --------------------------------------------------------------------------- DeepSeek cut the answer short

INTERRUPTED_TEXT = "The three steps are: 1."
DEEPSEEK_HEAD = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "deepseek-chat"}
DEEPSEEK_USAGE = {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}
INTERRUPTED_WHOLE = {"id": "x", "object": "chat.completion", "created": 1, "model": "deepseek-chat",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": INTERRUPTED_TEXT},
                                  "finish_reason": "insufficient_system_resource"}], "usage": DEEPSEEK_USAGE}
INTERRUPTED_CHUNKS = (
    {**DEEPSEEK_HEAD, "choices": [{"index": 0, "delta": {"role": "assistant", "content": INTERRUPTED_TEXT},
                                   "finish_reason": None}]},
    {**DEEPSEEK_HEAD, "choices": [{"index": 0, "delta": {"content": ""},
                                   "finish_reason": "insufficient_system_resource"}], "usage": DEEPSEEK_USAGE},
    "[DONE]")


def test_an_answer_deepseek_interrupted_is_a_502_not_a_complete_answer(live: Live, upstream: Upstream) -> None:
    upstream.queue(_json(INTERRUPTED_WHOLE), _json(INTERRUPTED_WHOLE))
    with pytest.raises(openai.APIStatusError) as chat:
        live.openai().with_options(max_retries=0).chat.completions.create(model="deepseek/deepseek-chat", **ASK)
    assert chat.value.status_code == 502 and chat.value.body["code"] == "upstream_generation_failed"  # type: ignore[index]
    assert "insufficient_system_resource" in chat.value.message and "ran short of resources" in chat.value.message
    with pytest.raises(anthropic.APIStatusError) as messages:
        live.anthropic().with_options(max_retries=0).messages.create(model="deepseek/deepseek-chat", max_tokens=50,
                                                                     **ASK)
    assert messages.value.status_code == 502 and "insufficient_system_resource" in messages.value.message


def test_a_stream_deepseek_interrupted_is_cut_after_its_text(live: Live, upstream: Upstream) -> None:
    """The text went out before the finish chunk said it was cut short: no finish follows it, an
    error does (or the HTTP error, when the whole stream reached the gateway in one read)."""
    upstream.queue(_sse(*INTERRUPTED_CHUNKS), _sse(*INTERRUPTED_CHUNKS))
    text = ""
    with pytest.raises(openai.APIError) as mid:
        for chunk in live.openai().with_options(max_retries=0).chat.completions.create(
                model="deepseek/deepseek-chat", stream=True, **ASK):
            text += chunk.choices[0].delta.content or "" if chunk.choices else ""
            assert not (chunk.choices and chunk.choices[0].finish_reason)
    assert text in ("", INTERRUPTED_TEXT) and "insufficient_system_resource" in str(mid.value)
    anthropic_text = ""
    with pytest.raises(anthropic.APIError) as anthropic_mid:
        with live.anthropic().with_options(max_retries=0).messages.stream(
                model="deepseek/deepseek-chat", max_tokens=50, **ASK) as stream:
            for event in stream:
                if event.type == "message_delta":
                    raise AssertionError(f"a stop reason was sent: {event.delta.stop_reason}")
                if event.type == "text":
                    anthropic_text += event.text
    assert anthropic_text in ("", INTERRUPTED_TEXT) and "insufficient_system_resource" in str(anthropic_mid.value)


def test_a_route_does_not_try_again_after_an_interrupted_answer(live: Live, upstream: Upstream) -> None:
    """Billed like any failed answer (see test_failed_generation_billing): one upstream request per call."""
    upstream.queue(_json(INTERRUPTED_WHOLE))
    seen = len(upstream.seen)
    with pytest.raises(openai.APIStatusError) as whole:
        live.openai().with_options(max_retries=0).chat.completions.create(model="steps", **ASK)
    assert whole.value.status_code == 502 and "insufficient_system_resource" in whole.value.message
    assert len(upstream.seen) == seen + 1



def _metric(live: Live, name: str, **labels: str) -> float:
    """The sum of ``name``'s series on /metrics whose labels include ``labels``."""
    with live.http() as http:
        text = http.get("/metrics").text
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and all(w in line for w in wanted))


def _booked(live: Live, calls: int = 0) -> tuple[int, float, int, int]:
    """Calls, cost, input and output tokens the store booked to the route metered, which holds
    ``calls`` of them (a call's record is queued after its answer is sent; a flush waits for it)."""
    store = live.state.backend.store
    store.flush()   # waits for the records of calls already answered
    rows = [r for r in store.spend("route") if r.group == "metered"]
    booked = (sum(r.calls for r in rows), sum(r.cost for r in rows), sum(r.input_tokens for r in rows),
              sum(r.output_tokens for r in rows))
    assert booked[0] >= calls, "the call's record is not in the store"
    return booked


def _counted(live: Live) -> tuple[float, float, float]:
    """Cost, input and output tokens /metrics counts for the route metered."""
    model = {"model": "metered"}
    return (_metric(live, "cloverleaf_cost_usd_total", **model),
            _metric(live, "cloverleaf_tokens_total", type="input", **model),
            _metric(live, "cloverleaf_tokens_total", type="output", **model))


def test_prometheus_counts_what_a_billed_failure_cost(live: Live, upstream: Upstream) -> None:
    """The 502 and the interrupted stream are billed, and the ledger, the call records and traces
    book their cost; /metrics left it out (and a 502's tokens), so it read less than was spent."""
    calls0, *booked0 = _booked(live)
    counted0 = _counted(live)
    upstream.queue(_json(INTERRUPTED_WHOLE))
    with pytest.raises(openai.APIStatusError):
        live.openai().with_options(max_retries=0).chat.completions.create(model="metered", **ASK)
    _, *booked = _booked(live, calls0 + 1)
    assert booked[0] > booked0[0] and booked[1] > booked0[1]
    assert _counted(live) == pytest.approx(tuple(c + b - b0 for c, b, b0 in zip(counted0, booked, booked0,
                                                                                 strict=True)))
    upstream.queue(_sse(*INTERRUPTED_CHUNKS))
    with pytest.raises(openai.APIError):
        for _ in live.openai().with_options(max_retries=0).chat.completions.create(
                model="metered", stream=True, **ASK):
            pass
    _, *streamed = _booked(live, calls0 + 2)
    assert streamed[0] > booked[0]
    wanted = counted0[0] + streamed[0] - booked0[0]
    deadline = time.monotonic() + 10    # a stream's metrics are recorded once its last byte is sent
    while _counted(live)[0] < wanted - 1e-12:
        assert time.monotonic() < deadline, (_counted(live), wanted)
        time.sleep(0.01)
    assert _counted(live)[0] == pytest.approx(wanted)
