"""What a Responses client sends reaches OpenAI's Responses API on the relay (``openai-responses/...``)
as it meant it, and the answer says so: ``store: false`` and ``metadata``, reasoning efforts
above ``high``, function tools without ``strict``. Other providers get the nearest they take.
Driven by the official SDK against a stand-in for OpenAI (and the offline fake provider)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Live
from .verifying_upstream import VerifyingUpstream, gateway_on

TOOL: Any = {"type": "function", "name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Live, VerifyingUpstream]]:
    upstream = VerifyingUpstream()
    try:
        with gateway_on(upstream) as live:
            yield live, upstream
    finally:
        upstream.close()


@pytest.mark.parametrize("stream", [False, True])
def test_store_false_and_metadata_reach_openai_and_are_echoed(served: tuple[Live, VerifyingUpstream],
                                                               stream: bool) -> None:
    live, upstream = served
    client = live.openai()
    kwargs: Any = {"model": "openai-responses/gpt-4.1", "input": "private, do not keep", "store": False,
                   "metadata": {"ticket": "T-1"}}
    if stream:
        with client.responses.stream(**kwargs) as events:
            r = events.get_final_response()
    else:
        r = client.responses.create(**kwargs)
    sent = upstream.bodies["openai"][-1]
    assert sent["store"] is False and sent["metadata"] == {"ticket": "T-1"}
    assert r.store is False and r.metadata == {"ticket": "T-1"}


def test_the_prompt_cache_key_reaches_openai_on_the_relay(served: tuple[Live, VerifyingUpstream]) -> None:
    """Codex keys each conversation's prompt cache (``prompt_cache_key``): OpenAI routes requests
    that share a key to the same cache, so dropping it lowered Codex's cache hits through the gateway."""
    live, upstream = served
    live.openai().responses.create(model="openai-responses/gpt-4.1", input="hi", prompt_cache_key="conv-7",
                                   prompt_cache_retention="24h")
    sent = upstream.bodies["openai"][-1]
    assert (sent["prompt_cache_key"], sent["prompt_cache_retention"]) == ("conv-7", "24h")
    live.openai().responses.create(model="openai-responses/gpt-4.1", input="hi")
    assert "prompt_cache_key" not in upstream.bodies["openai"][-1]


def test_stateless_reasoning_goes_back_by_its_encrypted_content(served: tuple[Live, VerifyingUpstream]) -> None:
    """Under ``store: false`` OpenAI keeps no item: the reasoning is asked for encrypted and goes
    back without ids (the stand-in, like OpenAI, finds no id then)."""
    live, upstream = served
    client = live.openai()
    first = client.responses.create(model="openai-responses/o3", input="think", store=False)
    assert "reasoning.encrypted_content" in upstream.bodies["openai"][-1]["include"]
    history: Any = [{"role": "user", "content": "think"}, *[o.model_dump() for o in first.output],
                    {"role": "user", "content": "more"}]
    r = client.responses.create(model="openai-responses/o3", input=history, store=False)
    assert r.output_text == "echo: more"
    replayed = [i for i in upstream.bodies["openai"][-1]["input"] if i.get("type") == "reasoning"]
    assert [i["encrypted_content"] for i in replayed] == [first.output[0].encrypted_content]  # type: ignore[union-attr]
    assert not any("id" in i for i in upstream.bodies["openai"][-1]["input"])


@pytest.mark.parametrize("effort", ["xhigh", "max"])
def test_efforts_above_high(served: tuple[Live, VerifyingUpstream], effort: Any) -> None:
    """Accepted everywhere, as on Chat Completions: verbatim to OpenAI's Responses API on the
    relay (the summary asked for kept), ``high`` for every other provider."""
    live, upstream = served
    client = live.openai()
    r = client.responses.create(model="fake/echo", input="hi", reasoning={"effort": effort})
    assert r.status == "completed" and r.reasoning and r.reasoning.effort == effort
    client.responses.create(model="openai-responses/gpt-5", input="hi", reasoning={"effort": effort, "summary": "auto"})
    assert upstream.bodies["openai"][-1]["reasoning"] == {"effort": effort, "summary": "auto"}
    client.responses.create(model="mixed", input="hi", reasoning={"effort": effort})
    assert upstream.bodies["openai"][-1]["reasoning"]["effort"] == "high"


def test_a_tool_without_strict_is_echoed_as_called(served: tuple[Live, VerifyingUpstream]) -> None:
    """The gateway calls such a tool non-strict, and says so; on the relay ``strict`` is left
    out, so OpenAI's own default applies, and an explicit value goes up as sent."""
    live, upstream = served
    client = live.openai()
    r = client.responses.create(model="fake/echo", input="weather?", tools=[TOOL])
    assert r.tools[0].strict is False  # type: ignore[union-attr]
    assert "strict" not in live.fake.requests[-1].json["tools"][0]["function"]
    client.responses.create(model="openai-responses/gpt-4.1", input="weather?", tools=[TOOL])
    assert "strict" not in upstream.bodies["openai"][-1]["tools"][0]
    for strict in (False, True):
        client.responses.create(model="openai-responses/gpt-4.1", input="weather?", tools=[{**TOOL, "strict": strict}])
        assert upstream.bodies["openai"][-1]["tools"][0]["strict"] is strict
