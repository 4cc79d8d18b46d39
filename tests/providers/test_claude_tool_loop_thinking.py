"""Claude's thinking rule for tool loops, on Anthropic's API and on Bedrock: with thinking on, the
last assistant turn that calls tools must start with its signed thinking. A client that cannot
carry the signature back (Chat Completions) sends that turn without it, so such a request goes
without thinking instead of being refused (``claude_rules.history_allows_thinking``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloverleaf._types import ChatRequest, Message, Reasoning, ReasoningConfig, Role, Tool, ToolChoice
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
