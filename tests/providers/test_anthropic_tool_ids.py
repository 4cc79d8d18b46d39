"""Tool-call ids from another provider reach Anthropic's API in the form it takes (letters, digits,
``_`` and ``-``): a conversation begun on Kimi K2 (ids like ``functions.get_weather:0``, as in
the recorded ``test_bedrock_moonshotai_tool_call``) and continued on Claude was a 400."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf import Client, Message
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._types import ChatRequest, ToolCall
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.registry import get_spec
from tests.sdk.upstream import Reply, Upstream

ANTHROPIC_ID = re.compile(r"[a-zA-Z0-9_-]+")
KIMI_ID = "functions.get_weather:0"


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


def _ids(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    blocks = [b for turn in body["messages"] for b in turn["content"]]
    return ([b["id"] for b in blocks if b["type"] == "tool_use"],
            [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"])


def test_a_conversation_begun_on_kimi_continues_on_claude(upstream: Upstream) -> None:
    upstream.queue(Reply(body=json.dumps({
        "id": "x", "object": "chat.completion", "created": 1, "model": "moonshotai/kimi-k2-instruct",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None,
                     "tool_calls": [{"id": KIMI_ID, "type": "function",
                                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}).encode()))
    upstream.queue(Reply(body=json.dumps({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "It is sunny."}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 70, "output_tokens": 5}}).encode()))
    providers = {"groq": ProviderSettings("groq", base_url=f"{upstream.url}/v1", api_key="gk-mock"),
                 "anthropic": ProviderSettings("anthropic", base_url=upstream.url, api_key="sk-ant-mock")}
    with Client(Settings.load(env={}, providers=providers)) as client:
        first = client.chat("groq/moonshotai/kimi-k2-instruct", "Weather in Paris?", tools=[get_weather])
        assert first.tool_calls[0].id == KIMI_ID
        history = [Message.user("Weather in Paris?"), first.to_message(), Message.tool(KIMI_ID, "sunny")]
        assert client.chat("anthropic/claude-sonnet-4-5", history, tools=[get_weather]).text == "It is sunny."
    calls, results = _ids(json.loads(upstream.seen[-1].body))
    assert calls == results and all(ANTHROPIC_ID.fullmatch(i) for i in calls)


def test_ids_in_the_apis_form_stay_and_others_map_alike_every_turn() -> None:
    adapter = AnthropicAdapter(get_spec("anthropic"))
    cfg = ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", api_key="sk-ant-test")
    history = [Message.user("Weather?"),
               Message.assistant([ToolCall("toolu_01A-b_c", "get_weather", {}), ToolCall(KIMI_ID, "get_weather", {}),
                                  ToolCall("functions.get_weather:1", "get_weather", {})]),
               Message.tool("toolu_01A-b_c", "sunny"), Message.tool(KIMI_ID, "rainy"),
               Message.tool("functions.get_weather:1", "windy")]
    first = _ids(json.loads(adapter.build_chat(ChatRequest("claude-sonnet-4-5", history), cfg).body or b""))
    again = _ids(json.loads(adapter.build_chat(ChatRequest("claude-sonnet-4-5", history), cfg).body or b""))
    calls, results = first
    assert first == again and calls == results and len(set(calls)) == 3
    assert calls[0] == "toolu_01A-b_c" and all(ANTHROPIC_ID.fullmatch(i) for i in calls)
