"""DeepSeek's thinking mode in a tool loop: each assistant turn that calls tools goes back with its
``reasoning_content``, which DeepSeek requires (its API answers the loop's next turn with a 400
otherwise: api-docs.deepseek.com/guides/thinking_mode); a turn without tool calls does not carry
it (ignored there, and refused by the first deepseek-reasoner)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cloverleaf import Client
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._types import ChatRequest, Message, Reasoning, Text, ToolCall
from tests.providers._openai_replay import adapter, config
from tests.sdk.upstream import Reply, Upstream

THOUGHT = "I should call get_weather for Paris."


def _completion(message: dict[str, Any], finish: str) -> Reply:
    return Reply(body=json.dumps({
        "id": "x", "object": "chat.completion", "created": 1, "model": "deepseek-reasoner",
        "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", **message}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}}).encode())


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


def test_a_run_tools_loop_sends_the_tool_calling_turns_reasoning_back(upstream: Upstream) -> None:
    upstream.queue(_completion({"content": "", "reasoning_content": THOUGHT, "tool_calls": [
        {"id": "call_00_abc", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}, "tool_calls"))
    upstream.queue(_completion({"content": "Sunny.", "reasoning_content": "Done."}, "stop"))
    deepseek = ProviderSettings("deepseek", base_url=f"{upstream.url}/v1")
    with Client(Settings.load(env={"DEEPSEEK_API_KEY": "dk-mock"}, providers={"deepseek": deepseek})) as client:
        resp = client.chat("deepseek/deepseek-reasoner", "Weather in Paris?", tools=[get_weather], run_tools=True,
                           reasoning="high")
    assert resp.text == "Sunny."
    turn = json.loads(upstream.seen[1].body)["messages"][1]
    assert turn["reasoning_content"] == THOUGHT and turn["tool_calls"][0]["id"] == "call_00_abc"


def test_only_turns_that_call_tools_carry_reasoning_content() -> None:
    call = ToolCall("call_1", "get_weather", {"city": "Paris"})
    req = ChatRequest("deepseek-reasoner", [
        Message.user("Hi"), Message.assistant([Reasoning("Greeting."), Text("Hello.")]),
        Message.user("Weather?"), Message.assistant([Reasoning("Client-sent thinking."), call]),
        Message.tool("call_1", "sunny")])
    sent = adapter("deepseek").build_chat(req, config("deepseek")).json()["messages"]
    assert "reasoning_content" not in sent[1]
    assert sent[3]["reasoning_content"] == "Client-sent thinking."
    # rows without the echo keep sending none
    assert "reasoning_content" not in adapter("groq").build_chat(req, config("groq")).json()["messages"][3]
