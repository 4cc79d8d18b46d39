"""Bedrock's per-model rules behind a live server, read with the official SDKs: a mock Converse
upstream on 127.0.0.1 records what each call sent, and the assertions check it the way Bedrock
does (a ``cachePoint`` to a model without prompt caching, a forced ``toolChoice`` to a model that
takes none, both refuse the whole call there)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings

from ..sdk.upstream import Reply, Upstream
from .conftest import Live, settings, start_live, stop_live

KIMI = "moonshot.kimi-k2-thinking"
LLAMA = "us.meta.llama3-3-70b-instruct-v1:0"


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    providers = {"bed": ProviderSettings("bed", kind="bedrock", base_url=upstream.url, extra={"region": "us-east-1"})}
    server = start_live(settings(providers=providers, env={"AWS_BEARER_TOKEN_BEDROCK": "bk-mock"}))
    yield server
    stop_live(server)


def _converse(*content: dict[str, Any], stop: str = "end_turn") -> Reply:
    return Reply(body=json.dumps({"output": {"message": {"role": "assistant", "content": list(content)}},
                                  "stopReason": stop,
                                  "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}}).encode())


def _sent(upstream: Upstream) -> dict[str, Any]:
    seen = upstream.seen[-1]
    assert seen.headers.get("authorization") == "Bearer bk-mock"
    return json.loads(seen.body)  # type: ignore[no-any-return]


def test_claude_codes_cache_marks_do_not_fail_a_model_without_prompt_caching(live: Live, upstream: Upstream) -> None:
    """Claude Code marks its system prompt, tools and newest turn with cache_control; sent to Kimi
    on Bedrock as cachePoints, every call was refused ("You invoked an unsupported model or your
    request did not allow prompt caching")."""
    upstream.queue(_converse({"text": "hello"}))
    mark = {"type": "ephemeral"}
    answer = live.anthropic().messages.create(
        model=f"bed/{KIMI}", max_tokens=100,
        system=[{"type": "text", "text": "You are a coding agent.", "cache_control": mark}],
        tools=[{"name": "read", "description": "read a file", "input_schema": {"type": "object"},
                "cache_control": mark}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": mark}]}])
    assert answer.content[0].text == "hello"   # type: ignore[union-attr]
    sent = _sent(upstream)
    assert "cachePoint" not in json.dumps(sent)
    assert sent["system"] == [{"text": "You are a coding agent."}] and sent["toolConfig"]["tools"][0]["toolSpec"]


def test_structured_output_on_llama_is_not_a_forced_tool(live: Live, upstream: Upstream) -> None:
    """Llama on Bedrock answers any forced toolChoice with a 400: structured output offers the
    answer tool unforced, and its call comes back as the JSON text."""
    upstream.queue(_converse({"toolUse": {"toolUseId": "t1", "name": "city", "input": {"name": "Tokyo"}}},
                             stop="tool_use"))
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    out = live.openai().chat.completions.create(
        model=f"bed/{LLAMA}", messages=[{"role": "user", "content": "Largest city in Japan?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}})
    assert json.loads(out.choices[0].message.content or "") == {"name": "Tokyo"}
    assert out.choices[0].finish_reason == "stop"
    tool_config = _sent(upstream)["toolConfig"]
    assert "toolChoice" not in tool_config and tool_config["tools"][0]["toolSpec"]["name"] == "city"


def test_a_forced_tool_choice_llama_refuses_is_a_400_saying_what_to_do(live: Live, upstream: Upstream) -> None:
    import openai

    before = len(upstream.seen)
    with pytest.raises(openai.BadRequestError) as err:
        live.openai().chat.completions.create(
            model=f"bed/{LLAMA}", messages=[{"role": "user", "content": "weather?"}], tool_choice="required",
            tools=[{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}])
    assert "tool_choice 'auto'" in str(err.value)
    assert len(upstream.seen) == before   # refused before sending
