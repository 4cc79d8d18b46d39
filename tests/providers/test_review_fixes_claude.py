"""Claude on Anthropic's API and on Bedrock, request by request: context edits with and without
thinking, an effort beside disabled thinking, and parallel calls of a cut Responses answer. Each
case was found in review of the day's merges; each failed before its fix."""

from __future__ import annotations

from typing import Any

from cloverleaf._types import ChatRequest, ChatResponse, Message, ReasoningConfig, Role, StreamEvent, ToolCall, Usage
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.registry import check_config_keys, get_adapter, get_spec
from cloverleaf.server.anthropic_wire import parse_messages_request
from cloverleaf.server.responses.stream import ResponsesStreamEncoder
from cloverleaf.server.responses.wire import completed_object, parse_request

ANTHROPIC = get_adapter(get_spec("anthropic"))
BEDROCK = get_adapter(get_spec("bedrock"))
ANTHROPIC_CFG = ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", api_key="sk-ant-test")
EDITS: Any = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}


def _lost_thinking_loop(model: str) -> ChatRequest:
    """A tool loop whose client sent the assistant turn back without its signed thinking."""
    history = [Message.user("weather?"), Message(Role.ASSISTANT, parts=[ToolCall("toolu_1", "w", {})]),
               Message.tool("toolu_1", "sunny")]
    return ChatRequest(model, history, reasoning=ReasoningConfig(budget_tokens=4096), max_tokens=8000,
                       context_management=EDITS)


def test_a_thinking_edit_is_left_out_when_the_call_goes_without_thinking_on_bedrock_too() -> None:
    """Without thinking the API refuses a clear_thinking edit; the field goes when nothing is left."""
    anthropic = ANTHROPIC.build_chat(_lost_thinking_loop("claude-sonnet-4-5"), ANTHROPIC_CFG).json()
    assert "thinking" not in anthropic and "context_management" not in anthropic
    body: Any = BEDROCK.converse_body(_lost_thinking_loop("us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
                                      ProviderConfig("bedrock", "bedrock", None, extra={"region": "us-east-1"}))
    fields = body.get("additionalModelRequestFields", {})
    assert "thinking" not in fields and "context_management" not in fields


def test_an_effort_beside_disabled_thinking_still_reaches_claude() -> None:
    base: Any = {"model": "claude-opus-4-6", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}],
                 "output_config": {"effort": "low"}}
    for body in (base, {**base, "thinking": {"type": "disabled"}}):
        sent = ANTHROPIC.build_chat(parse_messages_request(dict(body)), ANTHROPIC_CFG).json()
        assert sent.get("output_config") == {"effort": "low"} and "thinking" not in sent


def test_a_cut_answer_marks_only_the_call_it_was_writing_incomplete_whole_and_streamed() -> None:
    req = parse_request({"model": "m", "input": "x", "max_output_tokens": 50})
    resp = ChatResponse(parts=[ToolCall("call_a", "f", {"x": 1}, raw_arguments='{"x": 1}'),
                               ToolCall("call_b", "g", {}, raw_arguments='{"y": ')],
                        model="m", provider="p", finish_reason="length", usage=Usage())
    whole = completed_object(req, resp, response_id="resp_1", model="m", created_at=1, completed_at=2)
    enc = ResponsesStreamEncoder(req, response_id="resp_1", model="m", created_at=1)
    enc.start()
    for ev in [StreamEvent("tool_call_delta", index=0, id="call_a", name="f", arguments='{"x": 1}'),
               StreamEvent("tool_call_delta", index=1, id="call_b", name="g", arguments='{"y": '),
               StreamEvent("done", finish_reason="length")]:
        enc.encode(ev)
    streamed = enc.complete(2)
    expected = [("call_a", "completed"), ("call_b", "incomplete")]
    assert [(i["call_id"], i["status"]) for i in whole["output"]] == expected
    assert [(i["call_id"], i["status"]) for i in streamed["output"]] == expected


def test_mistral_tool_ids_takes_only_true_or_false() -> None:
    import pytest

    from cloverleaf._errors import ConfigError

    with pytest.raises(ConfigError, match="mistral_tool_ids"):
        check_config_keys("vllm", "openai", {"mistral_tool_ids": "false"}, "cloverleaf.toml [providers.vllm]")


def test_text_of_another_block_is_a_part_of_its_own_so_a_late_citation_finds_its_text() -> None:
    """A streamed answer has a part per content block, as the whole one does: a citation that
    comes after its block's text (the order is not a contract) marks only that block's text."""
    from cloverleaf._types import Citation
    from cloverleaf.streams.accumulate import StreamAccumulator

    cite = Citation(type="char_location", cited_text="x", document_index=0, start=0, end=1)
    acc = StreamAccumulator("m", "bedrock")
    for ev in [StreamEvent("text", text="Intro ", index=0), StreamEvent("text", text="cited", index=1),
               StreamEvent("citation", index=1, citation=cite), StreamEvent("text", text=" outro", index=2)]:
        acc.add(ev)
    parts = acc.response().parts
    assert [(p.text, p.citations) for p in parts] == [("Intro ", None), ("cited", [cite]), (" outro", None)]  # type: ignore[union-attr]
