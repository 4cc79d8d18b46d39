"""What Claude Code sends that the Anthropic adapter carries: ``context_management`` (sent as
given, the applied edits of the answer kept, whole or streamed) and system messages in the
middle of the conversation (in place under the ``mid-conversation-system-*`` beta, else part of
the top-level ``system``, in order)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from cloverleaf._http import HttpResponse
from cloverleaf._types import ChatRequest, Message, Role, Text
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.registry import get_spec

ADAPTER = AnthropicAdapter(get_spec("anthropic"))
CFG = ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", api_key="sk-ant-test")
EDITS: Any = {"edits": [{"type": "clear_tool_uses_20250919", "trigger": {"type": "input_tokens", "value": 30000}}]}
APPLIED = {"applied_edits": [{"type": "clear_tool_uses_20250919", "cleared_tool_uses": 3}]}
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
           "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 10, "output_tokens": 5}}
MID_SYSTEM = [Message.system("be brief"), Message.user("hi"), Message.assistant("hello"),
              Message(Role.SYSTEM, parts=[Text("agents: ...", cache_control={"type": "ephemeral"})]),
              Message.user("go")]


def body(req: ChatRequest, cfg: ProviderConfig = CFG) -> dict[str, Any]:
    return ADAPTER.build_chat(req, cfg).json()  # type: ignore[no-any-return]


def test_context_management_is_sent_as_given() -> None:
    assert body(ChatRequest("claude-sonnet-4-5", [Message.user("hi")], context_management=EDITS))[
        "context_management"] == EDITS
    assert "context_management" not in body(ChatRequest("claude-sonnet-4-5", [Message.user("hi")]))


def test_the_applied_edits_are_kept_whole_and_streamed() -> None:
    req = ChatRequest("claude-sonnet-4-5", [Message.user("hi")], context_management=EDITS)
    resp = ADAPTER.parse_chat(HttpResponse(200, {}, json.dumps({**MESSAGE, "context_management": APPLIED}).encode()),
                              req)
    assert resp.metadata.extra["context_management"] == APPLIED
    events = [{"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None}},
              {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
               "usage": {"output_tokens": 1}, "context_management": APPLIED},
              {"type": "message_stop"}]
    dec = ADAPTER.stream_decoder(dataclasses.replace(req, stream=True))
    out = dec.feed("".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode())
    done = [e for e in out if e.type == "done"]
    assert done and done[0].extra == {"context_management": APPLIED}


def test_a_mid_conversation_system_message_stays_in_place_under_its_beta() -> None:
    sent = body(ChatRequest("claude-sonnet-4-5", MID_SYSTEM),
                dataclasses.replace(CFG, extra={"beta": "mid-conversation-system-2026-04-07"}))
    assert sent["system"] == "be brief"
    assert sent["messages"][2:] == [
        {"role": "system", "content": [{"type": "text", "text": "agents: ...", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": [{"type": "text", "text": "go"}]}]


def test_without_the_beta_every_system_message_is_the_system_prompt_in_order() -> None:
    sent = body(ChatRequest("claude-sonnet-4-5", MID_SYSTEM))
    assert sent["system"] == [{"type": "text", "text": "be brief"},
                              {"type": "text", "text": "agents: ...", "cache_control": {"type": "ephemeral"}}]
    assert [t["role"] for t in sent["messages"]] == ["user", "assistant", "user"]


def test_thinking_edits_are_left_out_when_the_gateway_sends_the_call_without_thinking() -> None:
    """A tool loop whose client lost its signed thinking goes without thinking, and the API
    refuses a clear_thinking edit then; other edits stay."""
    from cloverleaf._types import ReasoningConfig, Role, ToolCall

    edits = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}, {"type": "clear_tool_uses_20250919"}]}
    call = ToolCall("toolu_1", "read", {"path": "a"})
    history = [Message.user("read a"), Message(Role.ASSISTANT, parts=[call]), Message.tool("toolu_1", "text of a")]
    sent = body(ChatRequest("claude-sonnet-4-5", history, reasoning=ReasoningConfig(budget_tokens=2048),
                            max_tokens=8192, context_management=edits))
    assert "thinking" not in sent and sent["context_management"] == {"edits": [{"type": "clear_tool_uses_20250919"}]}
    with_thinking = body(ChatRequest("claude-sonnet-4-5", [Message.user("hi")], max_tokens=8192,
                                     reasoning=ReasoningConfig(budget_tokens=2048), context_management=edits))
    assert with_thinking["context_management"] == edits
