"""Reasoning a client sends back through the gateway reaches the provider that needs it: the
signed thinking blocks of an Anthropic SDK tool loop reach Claude on Bedrock (they were dropped as
another vendor's, and thinking was switched off for every turn of the loop), and a Chat
Completions client's ``reasoning_content`` reaches DeepSeek (whose thinking mode refuses a tool
loop without it). Driven by the official SDKs against a mock upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf._config import ProviderSettings

from ..sdk.upstream import Upstream
from .conftest import Live, settings, start_live, stop_live
from .two_upstreams import answer, sent

CLAUDE = "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"
TOOLS: Any = [{"name": "get_weather", "description": "The weather.",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
CONVERSE_TEXT = {"output": {"message": {"role": "assistant", "content": [{"text": "Sunny."}]}},
                 "stopReason": "end_turn", "usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 6}}


@pytest.fixture(scope="module")
def live(upstream: Upstream) -> Iterator[Live]:
    providers = {"bedrock": ProviderSettings("bedrock", base_url=upstream.url, api_key="bedrock-mock-key",
                                             extra={"region": "us-east-1"}),
                 "deepseek": ProviderSettings("deepseek", base_url=f"{upstream.url}/v1", api_key="dk-mock")}
    server = start_live(settings(providers=providers))
    yield server
    stop_live(server)


def test_signed_thinking_from_an_anthropic_client_reaches_claude_on_bedrock(live: Live, upstream: Upstream) -> None:
    upstream.queue(answer({"output": {"message": {"role": "assistant", "content": [
        {"reasoningContent": {"reasoningText": {"text": "Need the weather.", "signature": "SIGbedrock123"}}},
        {"toolUse": {"toolUseId": "tooluse_abc", "name": "get_weather", "input": {"city": "Paris"}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 10, "outputTokens": 20, "totalTokens": 30}}))
    client = live.anthropic()
    question: Any = {"role": "user", "content": "Weather in Paris?"}
    thinking: Any = {"type": "enabled", "budget_tokens": 2000}
    first = client.messages.create(model=CLAUDE, max_tokens=8000, thinking=thinking, tools=TOOLS,
                                   messages=[question])
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    upstream.queue(answer(CONVERSE_TEXT))
    client.messages.create(model=CLAUDE, max_tokens=8000, thinking=thinking, tools=TOOLS, messages=[
        question, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tooluse_abc", "content": "sunny"}]}])
    body = sent(upstream)
    assert body["messages"][1]["content"][0] == {
        "reasoningContent": {"reasoningText": {"text": "Need the weather.", "signature": "SIGbedrock123"}}}
    assert body["additionalModelRequestFields"]["thinking"] == thinking


def test_a_chat_completions_clients_reasoning_content_reaches_deepseek(live: Live, upstream: Upstream) -> None:
    upstream.queue(answer({"id": "c1", "object": "chat.completion", "created": 1, "model": "deepseek-reasoner",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": "Sunny."}}]}))
    call = {"id": "call_00_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    live.openai().chat.completions.create(
        model="deepseek/deepseek-reasoner", reasoning_effort="high",
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        messages=[{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": None, "tool_calls": [call],   # type: ignore[list-item]
                   "reasoning_content": "I should call get_weather."},
                  {"role": "tool", "tool_call_id": "call_00_abc", "content": "sunny"}])
    turn = sent(upstream)["messages"][1]
    assert turn["reasoning_content"] == "I should call get_weather." and turn["tool_calls"][0]["id"] == "call_00_abc"
    assert json.loads(turn["tool_calls"][0]["function"]["arguments"]) == {}
