"""One neutral request means the same thing on every native adapter (the rules in ``providers/_common``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloverleaf._errors import InvalidRequestError
from cloverleaf._types import (
    ChatRequest,
    Message,
    Reasoning,
    ReasoningConfig,
    Role,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.registry import get_adapter, get_spec
from cloverleaf.streams.accumulate import StreamAccumulator

ROWS = ("openai", "azure", "anthropic", "gemini", "bedrock", "ollama")
WEATHER = Tool("weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})


def cfg(row: str, **kw: Any) -> ProviderConfig:
    base = {"azure": "https://r.openai.azure.com/openai/deployments/d", "ollama": "http://127.0.0.1:11434",
            "bedrock": ""}.get(row, get_spec(row).base_url)
    return ProviderConfig(row, get_spec(row).kind, base, api_key="k-secret", extra={"region": "us-east-1"}, **kw)


def body(row: str, req: ChatRequest) -> dict[str, Any]:
    return get_adapter(get_spec(row)).build_chat(req, cfg(row)).json()


@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("choice", [ToolChoice("required"), ToolChoice("tool", "weather")])
def test_forcing_a_tool_without_tools_is_refused_everywhere(row: str, choice: ToolChoice) -> None:
    with pytest.raises(InvalidRequestError, match="needs tools"):
        body(row, ChatRequest("m", [Message.user("x")], tool_choice=choice))


@pytest.mark.parametrize("row", ROWS)
def test_naming_a_tool_that_is_not_offered_is_refused_everywhere(row: str) -> None:
    req = ChatRequest("m", [Message.user("x")], tools=[WEATHER], tool_choice=ToolChoice("tool", "forecast"))
    with pytest.raises(InvalidRequestError, match="not among the tools"):
        body(row, req)


@pytest.mark.parametrize("row", ROWS)
def test_tool_choice_none_or_auto_without_tools_sends_no_tool_settings(row: str) -> None:
    for mode in ("auto", "none"):
        sent = body(row, ChatRequest("m", [Message.user("x")], tool_choice=ToolChoice(mode)))  # type: ignore[arg-type]
        assert not {"tool_choice", "tools", "toolConfig"} & set(sent)


def test_an_effort_is_the_same_thinking_budget_everywhere() -> None:
    for effort, budget in (("minimal", 1024), ("low", 2048), ("medium", 8192), ("high", 16384)):
        reasoning = ReasoningConfig(effort=effort)  # type: ignore[arg-type]
        anthropic = body("anthropic", ChatRequest("claude-sonnet-4-5", [Message.user("x")], reasoning=reasoning,
                                                  max_tokens=32000))
        gemini = body("gemini", ChatRequest("gemini-2.5-flash", [Message.user("x")], reasoning=reasoning))
        bedrock = body("bedrock", ChatRequest("us.anthropic.claude-sonnet-4-20250514-v1:0", [Message.user("x")],
                                              reasoning=reasoning))
        assert anthropic["thinking"]["budget_tokens"] == budget
        assert gemini["generationConfig"]["thinkingConfig"]["thinkingBudget"] == budget
        assert bedrock["additionalModelRequestFields"]["thinking"]["budget_tokens"] == budget


def test_a_budget_is_the_same_effort_everywhere() -> None:
    for budget, effort in ((1024, "low"), (2048, "low"), (4096, "medium"), (8192, "medium"), (10_000, "high")):
        reasoning = ReasoningConfig(budget_tokens=budget)
        openai = body("openai", ChatRequest("o3-mini", [Message.user("x")], reasoning=reasoning))
        gpt_oss = body("bedrock", ChatRequest("openai.gpt-oss-120b-1:0", [Message.user("x")], reasoning=reasoning))
        nova = body("bedrock", ChatRequest("us.amazon.nova-premier-v1:0", [Message.user("x")], reasoning=reasoning))
        assert openai["reasoning_effort"] == effort
        assert gpt_oss["additionalModelRequestFields"]["reasoning_effort"] == effort
        assert nova["additionalModelRequestFields"]["reasoningConfig"]["maxReasoningEffort"] == effort


@pytest.mark.parametrize("row", ROWS)
def test_the_configured_timeout_reaches_the_request(row: str) -> None:
    adapter = get_adapter(get_spec(row))
    sent = adapter.build_chat(ChatRequest("m", [Message.user("x")]), cfg(row, timeout=12.5))
    assert sent.timeout == 12.5


def _history(reasoning: Reasoning) -> ChatRequest:
    return ChatRequest("m", [
        Message.user("weather in Paris?"),
        Message.assistant([reasoning, Text("Checking."), ToolCall("c1", "weather", {"city": "Paris"})]),
        Message(Role.TOOL, [ToolResult("c1", "sunny", name="weather")]),
    ], tools=[WEATHER])


def test_bedrock_replays_only_its_own_signed_reasoning() -> None:
    own = body("bedrock", _history(Reasoning("hmm", signature="sig-bedrock", provider="bedrock")))
    assert own["messages"][1]["content"][0] == {"reasoningContent": {"reasoningText": {"text": "hmm",
                                                                                       "signature": "sig-bedrock"}}}
    for foreign in (Reasoning("", signature="gemini-thought-signature", provider="gemini"),
                    Reasoning("", redacted="openai-encrypted", provider="openai-responses")):
        sent = body("bedrock", _history(foreign))
        assert [list(b) for b in sent["messages"][1]["content"]] == [["text"], ["toolUse"]]


def test_foreign_reasoning_is_dropped_by_every_native_adapter() -> None:
    """Another vendor's signature stays behind; Claude's is the exception between the kinds that
    serve Claude (model "m" is Claude on Anthropic's API only; both ways with a Claude model:
    ``test_claude_tool_loop_thinking``)."""
    signed = {"anthropic": Reasoning("t", signature="s", provider="anthropic"),
              "gemini": Reasoning("t", signature="s", provider="gemini"),
              "bedrock": Reasoning("t", signature="s", provider="bedrock")}
    for row in signed:
        for producer, part in signed.items():
            sent = json.dumps(body(row, _history(part)))
            claudes = row == "anthropic" and producer == "bedrock"
            assert ('"s"' in sent) == (producer == row or claudes), (row, producer)


def test_a_streamed_no_argument_call_replays_as_valid_json_on_openai() -> None:
    # Anthropic streams a tool call without arguments as a tool_use block with no input deltas.
    req = ChatRequest("claude-sonnet-4-5", [Message.user("ping?")], tools=[Tool("ping")], stream=True)
    stream = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in [
        {"type": "message_start", "message": {"id": "msg_1", "model": "claude-sonnet-4-5", "usage": {"input_tokens": 5}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": "ping", "input": {}}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        {"type": "message_stop"},
    ])
    anthropic = get_adapter(get_spec("anthropic"))
    dec = anthropic.stream_decoder(req)
    acc = StreamAccumulator(req.model, anthropic.name)
    for ev in dec.feed(stream) + dec.close():
        acc.add(ev)
    answer = acc.response()
    assert answer.tool_calls[0].arguments == {} and answer.finish_reason == "tool_calls"
    follow_up = ChatRequest("gpt-4o", [Message.user("ping?"), answer.to_message(),
                                       Message.tool("toolu_1", "pong")], tools=[Tool("ping")])
    call = body("openai", follow_up)["messages"][1]["tool_calls"][0]
    assert call["function"] == {"name": "ping", "arguments": "{}"}
