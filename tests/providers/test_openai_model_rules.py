"""Requests to OpenAI's model families carry only the fields each family takes: through the real
client and transport, against a mock that refuses the rest with OpenAI's own 400s
(:mod:`tests.providers.openai_rules`). Each call here was refused before the fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloverleaf import Client
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._types import Tool
from tests.providers.openai_rules import OpenAIRulesUpstream, serving

WEATHER = Tool("weather", "The weather in a city.", {"type": "object", "properties": {"city": {"type": "string"}}})


@pytest.fixture
def upstream() -> Iterator[OpenAIRulesUpstream]:
    yield from serving()


def _client(upstream: OpenAIRulesUpstream) -> Client:
    providers = {name: ProviderSettings(name, base_url=upstream.url, api_key="sk-mock")
                 for name in ("openai", "openai-responses")}
    return Client(Settings.load(env={}, providers=providers))


@pytest.mark.parametrize("model", ["o3", "o4-mini", "o3-mini-2025-01-31", "o1"])
def test_the_o_series_gets_no_parallel_tool_calls(upstream: OpenAIRulesUpstream, model: str) -> None:
    """A client that always says ``parallel_tool_calls`` (a gateway's OpenAI SDK client) got a 400
    from every o-series model; gpt-5 and gpt-4.1 take it and still get it."""
    with _client(upstream) as client:
        assert client.chat(f"openai/{model}", "Weather in Oslo?", tools=[WEATHER], parallel_tool_calls=False,
                           max_retries=0).text == "Done."
        for other in ("gpt-5", "gpt-4.1"):
            client.chat(f"openai/{other}", "Weather in Oslo?", tools=[WEATHER], parallel_tool_calls=False)
            assert upstream.bodies[-1]["parallel_tool_calls"] is False
    assert upstream.refused == []
    assert "parallel_tool_calls" not in upstream.bodies[0]


@pytest.mark.parametrize("model", ["gpt-4o-search-preview", "gpt-4o-mini-search-preview-2025-03-11"])
def test_the_web_search_models_get_no_sampling(upstream: OpenAIRulesUpstream, model: str) -> None:
    """"Model incompatible request arguments supplied: temperature, top_p" on every call that set one."""
    with _client(upstream) as client:
        assert client.chat(f"openai/{model}", "News today?", temperature=0.2, top_p=0.9,
                           max_retries=0).text == "Done."
    assert upstream.refused == []
    assert "temperature" not in upstream.bodies[0] and "top_p" not in upstream.bodies[0]


@pytest.mark.parametrize(("model", "sent"), [("o3", "low"), ("o4-mini", "low"), ("gpt-5.1", "low"),
                                             ("gpt-5.2-2025-12-11", "low"), ("gpt-5-codex", "low"),
                                             ("gpt-5", "minimal"), ("gpt-5-mini-2025-08-07", "minimal")])
@pytest.mark.parametrize("row", ["openai", "openai-responses"])
def test_minimal_effort_is_low_where_the_model_has_no_minimal(upstream: OpenAIRulesUpstream, row: str,
                                                              model: str, sent: str) -> None:
    """Only the first gpt-5 models take ``minimal``; the o-series and gpt-5.1 and later answered it
    with "Unsupported value: 'minimal' is not supported with the 'gpt-5.1' model"."""
    with _client(upstream) as client:
        assert client.chat(f"{row}/{model}", "2+2?", reasoning="minimal", max_retries=0).text == "Done."
    assert upstream.refused == []
    body = upstream.bodies[0]
    assert (body.get("reasoning_effort") or body["reasoning"]["effort"]) == sent


def test_other_efforts_and_other_services_models_are_sent_as_given(upstream: OpenAIRulesUpstream) -> None:
    with _client(upstream) as client:
        client.chat("openai/o3", "2+2?", reasoning="high")
    assert upstream.bodies[-1]["reasoning_effort"] == "high"
    from cloverleaf.providers.openai.model_rules import effort_for_model

    assert effort_for_model("grok-3-mini", "minimal") == "minimal"   # not an OpenAI model: its own levels


def test_a_model_newer_than_the_name_pattern_gets_the_reasoning_rules(upstream: OpenAIRulesUpstream) -> None:
    """gpt-6 and later are read as reasoning models (max_completion_tokens, its effort kept); Azure's
    ``gpt-35-turbo`` is not one."""
    with _client(upstream) as client:
        client.chat("openai/gpt-6", "2+2?", max_tokens=50, temperature=0.2, reasoning="high", max_retries=0)
    assert upstream.refused == []
    sent = upstream.bodies[0]
    assert (sent["max_completion_tokens"], sent["reasoning_effort"]) == (50, "high") and "temperature" not in sent
    from cloverleaf.providers.openai.messages import is_reasoning_model

    assert not is_reasoning_model("gpt-35-turbo") and not is_reasoning_model("gpt-5-chat-latest")


@pytest.fixture
def deployments() -> Iterator[OpenAIRulesUpstream]:
    yield from serving(frozenset({"prod-chat", "prod-chat-2"}))


def test_a_reasoning_model_under_a_name_of_its_own_is_learned_from_its_refusal(
        deployments: OpenAIRulesUpstream) -> None:
    """A deployment named by its owner got max_tokens and temperature and OpenAI's 400 on every call;
    now the call is sent once more by the reasoning rules and the model is remembered."""
    settings = Settings.load(env={}, providers={"corp": ProviderSettings(
        "corp", kind="openai", base_url=deployments.url, api_key="sk-mock")})
    with Client(settings) as client:
        assert client.chat("corp/prod-chat", "2+2?", max_tokens=50, temperature=0.2, reasoning="high",
                           max_retries=0).text == "Done."
        assert [r["error"]["param"] for r in deployments.refused] == ["max_tokens"]
        resent = deployments.bodies[1]
        assert (resent["max_completion_tokens"], resent["reasoning_effort"]) == (50, "high")
        assert "temperature" not in resent and "max_tokens" not in resent
        client.chat("corp/prod-chat", "3+3?", max_tokens=50, temperature=0.2, max_retries=0)
        assert len(deployments.bodies) == 3   # remembered: no refusal this time
        # a sampling value refused (no max_tokens sent) teaches the same
        assert client.chat("corp/prod-chat-2", "4+4?", temperature=0.2, max_retries=0).text == "Done."
        assert [r["error"]["param"] for r in deployments.refused] == ["max_tokens", "temperature"]


def test_other_refusals_are_not_sent_again(upstream: OpenAIRulesUpstream) -> None:
    from cloverleaf._errors import InvalidRequestError

    with _client(upstream) as client, pytest.raises(InvalidRequestError, match="parallel_tool_calls"):
        client.chat("openai/o3", "Weather?", tools=[WEATHER], max_retries=0,
                    extra_body={"parallel_tool_calls": True})   # the caller's own field, sent as given
    assert len(upstream.bodies) == 1
