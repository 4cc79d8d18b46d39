"""A conversation one provider produced, continued on another by changing the model string:
each history here is refused by the second provider's real API rules before the fix (the
mock upstream checks them: :mod:`tests.providers.api_rules`) and answered after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloverleaf import Client, Message
from cloverleaf._config import ProviderSettings, Settings
from cloverleaf._types import Attachment, Reasoning, Role, Text, ToolCall, ToolResult
from tests.providers.api_rules import RuleCheckingUpstream, serving

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
CLAUDE_ON_BEDROCK = "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"


@pytest.fixture
def upstream() -> Iterator[RuleCheckingUpstream]:
    yield from serving()


def _client(upstream: RuleCheckingUpstream) -> Client:
    providers = {"openai": ProviderSettings("openai", base_url=f"{upstream.url}/v1", api_key="sk-mock"),
                 "anthropic": ProviderSettings("anthropic", base_url=upstream.url, api_key="sk-ant-mock"),
                 "bedrock": ProviderSettings("bedrock", base_url=upstream.url, api_key="bedrock-mock-key",
                                             extra={"region": "us-east-1"})}
    return Client(Settings.load(env={}, providers=providers))


def _screenshot(call_id: str) -> Message:
    return Message(Role.TOOL, [ToolResult(call_id, [Text("the screen"), Attachment(type="image",
                                                                                  media_type="image/png", data=PNG)])])


def test_claudes_parallel_calls_returning_images_continue_on_openai(upstream: RuleCheckingUpstream) -> None:
    """Claude called two tools at once and the first returned a screenshot: its attachments' user
    turn went between the two tool messages, which OpenAI refuses (400); now it follows them."""
    history = [
        Message.user("Look at both windows."),
        Message.assistant([Reasoning("Two looks.", signature="EqQBsig", provider="anthropic"),
                           ToolCall("toolu_01A", "screenshot", {"window": 1}),
                           ToolCall("toolu_01B", "screenshot", {"window": 2})]),
        _screenshot("toolu_01A"),
        Message.tool("toolu_01B", "window 2 is closed"),
    ]
    with _client(upstream) as client:
        assert client.chat("openai/gpt-4o", history).text == "Done."
    assert upstream.refused == []
    sent = upstream.bodies[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool", "user"]
    assert sent[4]["content"][1]["type"] == "image_url"


def test_images_of_every_result_follow_the_run_and_precede_the_next_user_turn(upstream: RuleCheckingUpstream) -> None:
    history = [
        Message.user("Look."),
        Message.assistant([ToolCall("call_1", "screenshot", {}), ToolCall("call_2", "screenshot", {})]),
        _screenshot("call_1"), _screenshot("call_2"),
        Message.user("And now?"),
    ]
    with _client(upstream) as client:
        assert client.chat("openai/gpt-4o", history).text == "Done."
    sent = upstream.bodies[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool", "user", "user", "user"]
    assert "call_1" in sent[4]["content"][0]["text"] and "call_2" in sent[5]["content"][0]["text"]
    assert sent[6]["content"] == "And now?"


def test_tool_ids_from_other_providers_reach_converse_in_its_form(upstream: RuleCheckingUpstream) -> None:
    """Kimi K2's ``functions.get_weather:0`` and an id over 64 characters (a compatible server's)
    failed Converse's ``toolUseId`` constraint; they are mapped alike for a call and its result."""
    long_id = "call_" + "a1b2c3d4" * 9
    history = [
        Message.user("Weather in Paris and Rome?"),
        Message.assistant([ToolCall("functions.get_weather:0", "get_weather", {"city": "Paris"}),
                           ToolCall(long_id, "get_weather", {"city": "Rome"}),
                           ToolCall("tooluse_kept-1", "get_weather", {"city": "Oslo"})]),
        Message.tool("functions.get_weather:0", "sunny"), Message.tool(long_id, "rainy"),
        Message.tool("tooluse_kept-1", "snow"),
    ]
    with _client(upstream) as client:
        assert client.chat(CLAUDE_ON_BEDROCK, history).text == "Done."
    assert upstream.refused == []
    turns = upstream.bodies[-1]["messages"]
    calls = [b["toolUse"]["toolUseId"] for b in turns[1]["content"] if "toolUse" in b]
    results = [b["toolResult"]["toolUseId"] for b in turns[2]["content"] if "toolResult" in b]
    assert calls == results and calls[2] == "tooluse_kept-1" and len(set(calls)) == 3


def test_a_chat_opened_by_the_assistant_continues_on_bedrock(upstream: RuleCheckingUpstream) -> None:
    """A chat UI's greeting comes first (OpenAI takes that); Converse refused it with "A
    conversation must start with a user message"; a neutral user turn now opens it."""
    history = [Message.system("Be brief."), Message.assistant("Hi! How can I help?"), Message.user("Weather?")]
    with _client(upstream) as client:
        assert client.chat(CLAUDE_ON_BEDROCK, history).text == "Done."
        assert client.chat("bedrock/us.amazon.nova-micro-v1:0", history).text == "Done."
    assert upstream.refused == []
    turns = upstream.bodies[-1]["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [{"text": "Hi! How can I help?"}]


@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4-5", CLAUDE_ON_BEDROCK])
def test_a_prefill_from_another_providers_client_reaches_claude_with_reasoning_asked(
        upstream: RuleCheckingUpstream, model: str) -> None:
    """A history ending with an assistant turn (OpenAI and Gemini take it as a plain turn) sent
    with a reasoning effort was a 400 from Claude, which refuses a prefill while thinking is on;
    the call now goes without thinking, as a tool loop that lost its signature does."""
    history = [Message.user("Name a colour."), Message.assistant("The colour is")]
    with _client(upstream) as client:
        assert client.chat(model, history, reasoning="low").text == "Done."
    assert upstream.refused == []
    body = upstream.bodies[-1]
    assert "thinking" not in body and "thinking" not in (body.get("additionalModelRequestFields") or {})


def test_a_prefill_that_starts_with_claudes_signed_thinking_keeps_it(upstream: RuleCheckingUpstream) -> None:
    history = [Message.user("Search."), Message.assistant([Reasoning("Go on.", signature="EqQBsig", provider="anthropic"),
                                                           Text("Searching")])]
    with _client(upstream) as client:
        assert client.chat("anthropic/claude-sonnet-4-5", history, reasoning="low").text == "Done."
    assert upstream.bodies[-1]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
