"""Anthropic's context edits (``ChatRequest.context_management``) per provider, and system
messages in the middle of a conversation for the providers that take the system prompt apart:
Claude (on Anthropic's API or Bedrock) applies the edits; every other provider drops the
thinking edits (it keeps no thinking across turns) and refuses the rest before sending."""

from __future__ import annotations

from typing import Any

import pytest

from cloverleaf._context_edits import for_target
from cloverleaf._errors import InvalidRequestError
from cloverleaf._types import ChatRequest, Message
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.bedrock.adapter import BedrockAdapter
from cloverleaf.providers.registry import get_adapter, get_spec
from tests.providers.test_gemini_support import adapter as gemini
from tests.providers.test_gemini_support import config as gemini_config

CLEAR_THINKING: Any = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
CLEAR_TOOL_USES: Any = {"edits": [{"type": "clear_thinking_20251015"}, {"type": "clear_tool_uses_20250919"}]}
BEDROCK = BedrockAdapter(get_spec("bedrock"))
BEDROCK_CFG = ProviderConfig(name="bedrock", kind="bedrock", base_url="", extra={
    "region": "us-east-1", "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "s"})
SONNET = "us.anthropic.claude-sonnet-4-20250514-v1:0"
NOVA = "us.amazon.nova-micro-v1:0"
MID_SYSTEM = [Message.system("be brief"), Message.user("hi"), Message.system("agents: ..."), Message.user("go")]


def request(model: str, context_management: Any) -> ChatRequest:
    return ChatRequest(model, [Message.user("hi")], context_management=context_management)


def test_claude_gets_the_edits_as_given() -> None:
    anthropic = get_adapter(get_spec("anthropic"))
    req = request("claude-sonnet-4-5", CLEAR_TOOL_USES)
    assert for_target(req, anthropic, req.model) is req
    assert for_target(req, BEDROCK, SONNET) is req


@pytest.mark.parametrize("provider, model", [("openai", "gpt-4o"), ("gemini", "gemini-2.5-flash"),
                                             ("bedrock", NOVA)])
def test_thinking_edits_are_dropped_elsewhere(provider: str, model: str) -> None:
    adapter = BEDROCK if provider == "bedrock" else get_adapter(get_spec(provider))
    assert for_target(request(model, CLEAR_THINKING), adapter, model).context_management is None


@pytest.mark.parametrize("provider, model", [("openai", "gpt-4o"), ("bedrock", NOVA)])
def test_other_edits_are_refused_elsewhere_naming_the_edit_and_who_applies_it(provider: str, model: str) -> None:
    adapter = BEDROCK if provider == "bedrock" else get_adapter(get_spec(provider))
    with pytest.raises(InvalidRequestError, match="clear_tool_uses_20250919.*anthropic provider.*bedrock"):
        for_target(request(model, CLEAR_TOOL_USES), adapter, model)


def test_claude_on_bedrock_gets_the_edits_with_their_beta() -> None:
    body = BEDROCK.converse_body(request(SONNET, CLEAR_THINKING), BEDROCK_CFG)
    assert body["additionalModelRequestFields"] == {"context_management": CLEAR_THINKING,
                                                    "anthropic_beta": ["context-management-2025-06-27"]}
    extras = ChatRequest(SONNET, [Message.user("hi")], context_management=CLEAR_THINKING,
                         extra_body={"additionalModelRequestFields": {"anthropic_beta": ["context-1m-2025-08-07"]}})
    fields = BEDROCK.converse_body(extras, BEDROCK_CFG)["additionalModelRequestFields"]
    assert fields["anthropic_beta"] == ["context-1m-2025-08-07", "context-management-2025-06-27"]
    assert "additionalModelRequestFields" not in BEDROCK.converse_body(request(SONNET, None), BEDROCK_CFG)


def test_bedrock_and_gemini_read_a_mid_conversation_system_message_as_system_prompt_in_order() -> None:
    body = BEDROCK.converse_body(ChatRequest(SONNET, MID_SYSTEM), BEDROCK_CFG)
    assert body["system"] == [{"text": "be brief"}, {"text": "agents: ..."}]
    assert [m["role"] for m in body["messages"]] == ["user"]
    sent = gemini().build_chat(ChatRequest("gemini-2.5-flash", MID_SYSTEM), gemini_config()).json()
    assert sent["systemInstruction"] == {"parts": [{"text": "be brief\n\nagents: ..."}]}
    assert [c["role"] for c in sent["contents"]] == ["user"]
