"""Claude's thinking rule for tool loops, on Anthropic's API and on Bedrock: with thinking on, the
last assistant turn that calls tools must start with its signed thinking. A client that cannot
carry the signature back (Chat Completions) sends that turn without it, so such a request goes
without thinking instead of being refused (``claude_rules.history_allows_thinking``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloverleaf._types import ChatRequest, Message, Reasoning, ReasoningConfig, Role, Tool, ToolCall, ToolChoice
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.bedrock.adapter import BedrockAdapter
from cloverleaf.providers.claude_rules import default_max_tokens
from cloverleaf.providers.registry import get_spec
from tests.wire import cassette

ANTHROPIC = AnthropicAdapter(get_spec("anthropic"))
BEDROCK = BedrockAdapter(get_spec("bedrock"))
ANTHROPIC_REC = "pydantic-ai/tests/models/cassettes/test_anthropic/"
BEDROCK_REC = "pydantic-ai/tests/models/cassettes/test_bedrock/"
BEDROCK_CFG = ProviderConfig(name="bedrock", kind="bedrock", base_url="", extra={
    "region": "us-east-1", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "s"})
SONNET37 = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"


def body(req: ChatRequest) -> dict[str, Any]:
    cfg = ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", api_key="sk-ant-test")
    return json.loads(ANTHROPIC.build_chat(req, cfg).body or b"")  # type: ignore[no-any-return]


def bedrock_body(req: ChatRequest) -> dict[str, Any]:
    return json.loads(BEDROCK.build_chat(req, BEDROCK_CFG).body or b"")  # type: ignore[no-any-return]


def test_anthropic_tool_loop_that_lost_its_signed_thinking_is_sent_without_thinking(
        caplog: pytest.LogCaptureFixture) -> None:
    """An OpenAI-style client (Chat Completions has no field for the signature) sends the tool
    loop's assistant turn back without its thinking block: Anthropic refuses such a request while
    thinking is on, so it goes without thinking (said in the debug log), the sampling rules of a
    call without thinking apply, and the next turn with nothing pending thinks again."""
    first, second = cassette(ANTHROPIC_REC + "test_anthropic_tool_with_thinking.yaml")
    rec0, rec1 = first.request_json, second.request_json
    tool = Tool("get_user_country", "", rec0["tools"][0]["input_schema"])
    question = Message.user(rec0["messages"][0]["content"][0]["text"])
    req = ChatRequest("claude-sonnet-4-0", [question], tools=[tool], tool_choice=ToolChoice("auto"),
                      reasoning=ReasoningConfig(effort="low"), temperature=0.2)
    resp = ANTHROPIC.parse_chat(first.response, req)
    unsigned = Message(Role.ASSISTANT, parts=[Reasoning(resp.reasoning or "")] + resp.tool_calls)
    req.messages += [unsigned, Message.tool(resp.tool_calls[0].id, "Mexico")]
    with caplog.at_level("DEBUG", logger="cloverleaf.providers"):
        got = body(req)
    assert "thinking" not in got and got["max_tokens"] == default_max_tokens("claude-sonnet-4-0") and got["temperature"] == 0.2
    assert got["messages"][1] == {"role": "assistant", "content": [rec1["messages"][1]["content"][-1]]}
    assert got["messages"][1]["content"][0]["type"] == "tool_use"
    assert "thinking left out" in caplog.text and "claude-sonnet-4-0" in caplog.text
    # signed, as an Anthropic client sends it back: thinking stays on
    req.messages[1] = resp.to_message()
    assert body(req)["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    # the tool loop over, the user asks again: the last assistant turn calls no tool, thinking is on
    req.messages += [Message.assistant("Mexico City."), Message.user("And its population?")]
    req.messages[1] = unsigned
    assert body(req)["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_bedrock_tool_loop_that_lost_its_signed_thinking_is_sent_without_thinking() -> None:
    """The tool loop's assistant turn back without its signed reasoning (an OpenAI-style client
    cannot carry it): Claude on Bedrock refuses it with thinking on, so thinking is left out."""
    first, second = cassette(BEDROCK_REC + "test_bedrock_anthropic_tool_with_thinking.yaml")
    tool = Tool("get_user_country", None, {"additionalProperties": False, "properties": {}, "type": "object"})
    question = Message.user("What is the largest city in the user country?")
    req = ChatRequest(SONNET37, [question], tools=[tool], reasoning=ReasoningConfig(budget_tokens=1024))
    out = BEDROCK.parse_chat(first.response, req)
    unsigned = Message(Role.ASSISTANT, parts=[p for p in out.parts if not isinstance(p, Reasoning)])
    follow = ChatRequest(SONNET37, [question, unsigned, Message.tool(out.tool_calls[0].id, "Mexico")],
                         tools=[tool], reasoning=ReasoningConfig(budget_tokens=1024), temperature=0.3)
    sent = bedrock_body(follow)
    assert "additionalModelRequestFields" not in sent
    assert sent["inferenceConfig"] == {"temperature": 0.3}
    recorded = json.loads(second.request_body or b"")["messages"][1]["content"]
    assert [b for b in recorded if "reasoningContent" not in b] == sent["messages"][1]["content"]
    assert "toolChoice" not in sent["toolConfig"]
    # signed, as the first answer gave it: thinking stays on
    follow.messages[1] = out.to_message()
    assert bedrock_body(follow)["additionalModelRequestFields"] == {"thinking": {"type": "enabled",
                                                                                 "budget_tokens": 1024}}


def _tool_loop(model: str, signed: Reasoning) -> ChatRequest:
    call = ToolCall("toolu_1", "get_weather", {"city": "Paris"})
    return ChatRequest(model, [Message.user("Weather?"), Message(Role.ASSISTANT, parts=[signed, call]),
                               Message.tool("toolu_1", "sunny")],
                       tools=[Tool("get_weather", None, {"type": "object"})], reasoning=ReasoningConfig(budget_tokens=2000),
                       max_tokens=8000)


def test_claudes_signed_thinking_goes_back_to_claude_wherever_it_runs() -> None:
    """Claude's signature is the model's: thinking signed on Anthropic's API (as a ``/v1/messages``
    client sends it back, tagged Anthropic's) reaches Claude on Bedrock, and Bedrock's reaches
    Anthropic's API, with thinking kept on; it was dropped as another vendor's, and the tool
    loop then went on without thinking."""
    from_anthropic = Reasoning("Need weather.", signature="SIGanthropic", provider="anthropic")
    sent = bedrock_body(_tool_loop("us.anthropic.claude-sonnet-4-5-20250929-v1:0", from_anthropic))
    assert sent["messages"][1]["content"][0] == {
        "reasoningContent": {"reasoningText": {"text": "Need weather.", "signature": "SIGanthropic"}}}
    assert sent["additionalModelRequestFields"]["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    redacted = Reasoning("", redacted="REDACTEDdata", provider="anthropic")
    assert bedrock_body(_tool_loop(SONNET37, redacted))["messages"][1]["content"][0] == {
        "reasoningContent": {"redactedContent": "REDACTEDdata"}}
    from_bedrock = Reasoning("Need weather.", signature="SIGbedrock", provider="bedrock")
    got = body(_tool_loop("claude-sonnet-4-5", from_bedrock))
    assert got["messages"][1]["content"][0] == {"type": "thinking", "thinking": "Need weather.",
                                                "signature": "SIGbedrock"}
    assert got["thinking"] == {"type": "enabled", "budget_tokens": 2000}


def test_another_vendors_or_models_reasoning_still_stays_behind() -> None:
    gemini = Reasoning("Plan.", signature="thoughtSig", provider="gemini")
    assert bedrock_body(_tool_loop(SONNET37, gemini))["messages"][1]["content"][0] == {
        "toolUse": {"toolUseId": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}}
    assert body(_tool_loop("claude-sonnet-4-5", gemini))["messages"][1]["content"][0]["type"] == "tool_use"
    # Claude's signature means nothing to another model on Bedrock
    claude = Reasoning("Plan.", signature="SIGanthropic", provider="anthropic")
    nova = ChatRequest("us.amazon.nova-premier-v1:0", _tool_loop(SONNET37, claude).messages,
                       tools=[Tool("get_weather", None, {"type": "object"})])
    assert all("reasoningContent" not in b for b in bedrock_body(nova)["messages"][1]["content"])


@pytest.mark.parametrize("choice", [ToolChoice("required"), ToolChoice("tool", "get_weather")])
def test_a_forced_tool_is_kept_and_the_thinking_budget_left_out(choice: ToolChoice,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Claude refuses a thinking budget beside a forced tool ("Thinking may not be enabled when
    tool_choice forces tool use"), and both were sent, on Anthropic's API and on Bedrock: the
    forced tool is the caller's instruction, so it stays and the budget goes (debug log)."""
    tools = [Tool("get_weather", None, {"type": "object"})]
    forced = ChatRequest("claude-sonnet-4-5", [Message.user("Weather?")], tools=tools, tool_choice=choice,
                         reasoning=ReasoningConfig(effort="high"), max_tokens=30000)
    with caplog.at_level("DEBUG", logger="cloverleaf.providers"):
        got = body(forced)
    assert "thinking" not in got and got["tool_choice"]["type"] == ("any" if choice.mode == "required" else "tool")
    assert "forces tool use" in caplog.text
    forced.model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    on_bedrock = bedrock_body(forced)
    assert "additionalModelRequestFields" not in on_bedrock
    assert on_bedrock["toolConfig"]["toolChoice"] == (
        {"any": {}} if choice.mode == "required" else {"tool": {"name": "get_weather"}})
    # adaptive thinking allows forcing: both stay; auto keeps the budget
    forced.model, forced.reasoning = "claude-opus-4-6", ReasoningConfig(adaptive=True)
    assert body(forced)["thinking"] == {"type": "adaptive"} and body(forced)["tool_choice"]["type"] != "auto"
    forced.model, forced.tool_choice, forced.reasoning = "claude-sonnet-4-5", ToolChoice("auto"), ReasoningConfig(
        effort="high")
    assert body(forced)["thinking"] == {"type": "enabled", "budget_tokens": 16384}
