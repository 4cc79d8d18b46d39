"""Claude's thinking controls as the Anthropic adapter sends them: adaptive thinking and
``output_config.effort`` as the caller gave them (on models that have them), a budget for
older models, and portable reasoning requests fitted to a model that takes adaptive thinking only."""

from __future__ import annotations

from typing import Any

import pytest

from cloverleaf._types import ChatRequest, Message, ReasoningConfig, ResponseFormat, ToolCall
from cloverleaf.providers.anthropic.adapter import AnthropicAdapter
from cloverleaf.providers.base import ProviderConfig
from cloverleaf.providers.registry import get_spec

ADAPTER = AnthropicAdapter(get_spec("anthropic"))
CFG = ProviderConfig("anthropic", "anthropic", "https://api.anthropic.com", api_key="sk-ant-test")
HI = [Message.user("hi")]


def body(model: str, reasoning: ReasoningConfig | None, **fields: Any) -> dict[str, Any]:
    req = ChatRequest(model, fields.pop("messages", HI), reasoning=reasoning, max_tokens=32000, **fields)
    return ADAPTER.build_chat(req, CFG).json()  # type: ignore[no-any-return]


def thinking_and_effort(sent: dict[str, Any]) -> tuple[Any, Any]:
    return sent.get("thinking"), sent.get("output_config")


@pytest.mark.parametrize("model", ["claude-opus-4-6", "claude-sonnet-4-6", "claude-opus-4-8",
                                   "us.anthropic.claude-opus-4-7", "claude-mythos-preview"])
@pytest.mark.parametrize("effort", ["low", "high", "xhigh", "max"])
def test_adaptive_thinking_and_effort_are_sent_as_given(model: str, effort: str) -> None:
    """Claude Code's ``thinking: adaptive`` + ``output_config.effort`` reach a model that has
    adaptive thinking (4.6 and later, or one whose version cannot be read) unchanged."""
    cfg = ReasoningConfig(effort="high", adaptive=True, native_effort=effort)
    assert thinking_and_effort(body(model, cfg)) == ({"type": "adaptive"}, {"effort": effort})
    assert thinking_and_effort(body(model, ReasoningConfig(effort="medium", adaptive=True))) == (
        {"type": "adaptive"}, None)


def test_adaptive_thinking_on_an_older_model_is_a_budget() -> None:
    """Sonnet and Opus 4.5 and older refuse adaptive thinking: they get the budget for the effort."""
    cfg = ReasoningConfig(effort="medium", adaptive=True)
    assert thinking_and_effort(body("claude-sonnet-4-5", cfg)) == ({"type": "enabled", "budget_tokens": 8192}, None)


def test_effort_alone_is_sent_without_thinking() -> None:
    """``output_config.effort`` without ``thinking`` (effort steers text and tool calls too) is
    not turned into a thinking budget."""
    cfg = ReasoningConfig(effort="high", native_effort="max")
    assert thinking_and_effort(body("claude-opus-4-6", cfg)) == (None, {"effort": "max"})


def test_a_budget_with_an_effort_keeps_both() -> None:
    cfg = ReasoningConfig(effort="low", budget_tokens=4096, native_effort="low")
    assert thinking_and_effort(body("claude-opus-4-5", cfg)) == (
        {"type": "enabled", "budget_tokens": 4096}, {"effort": "low"})


def test_effort_and_native_structured_output_share_output_config() -> None:
    fmt = ResponseFormat(schema={"type": "object", "properties": {"a": {"type": "string"}}})
    sent = body("claude-opus-4-6", ReasoningConfig(effort="high", adaptive=True, native_effort="high"),
                response_format=fmt)
    assert sent["output_config"] == {"effort": "high", "format": {"type": "json_schema", "schema": {
        "type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}}}


@pytest.mark.parametrize(("reasoning", "effort"), [
    (ReasoningConfig(effort="high"), "high"), (ReasoningConfig(effort="minimal"), "low"),
    (ReasoningConfig(budget_tokens=2048), "low"), (ReasoningConfig(effort="medium", summary=True), "medium")])
def test_a_portable_request_on_a_model_with_adaptive_thinking_only(reasoning: ReasoningConfig, effort: str) -> None:
    """Opus 4.7 and later refuse a thinking budget: an SDK ``reasoning=`` or an OpenAI-style
    ``reasoning_effort`` becomes adaptive thinking at that effort."""
    assert thinking_and_effort(body("claude-opus-4-7", reasoning)) == ({"type": "adaptive"}, {"effort": effort})
    assert thinking_and_effort(body("claude-opus-4-7", ReasoningConfig(budget_tokens=0))) == (None, None)


def test_a_portable_request_on_older_models_is_unchanged() -> None:
    assert thinking_and_effort(body("claude-sonnet-4-5", ReasoningConfig(effort="high"))) == (
        {"type": "enabled", "budget_tokens": 16384}, None)
    assert thinking_and_effort(body("claude-opus-4-6", ReasoningConfig(budget_tokens=2048))) == (
        {"type": "enabled", "budget_tokens": 2048}, None)


def test_adaptive_thinking_stays_on_after_a_tool_call_without_thinking() -> None:
    """In adaptive mode thinking is optional: a tool-calling turn without a thinking block is
    valid history, so adaptive thinking is not dropped as a budget would be."""
    history = [Message.user("weather?"), Message.assistant([ToolCall("toolu_1", "weather", {})]),
               Message.tool("toolu_1", "sunny")]
    cfg = ReasoningConfig(effort="high", adaptive=True, native_effort="high")
    assert thinking_and_effort(body("claude-opus-4-6", cfg, messages=history)) == (
        {"type": "adaptive"}, {"effort": "high"})


@pytest.mark.parametrize("model", ["claude-opus-4-7", "claude-opus-4-8", "claude-sonnet-5", "claude-opus-5",
                                   "claude-fable-5-1", "us.anthropic.claude-opus-4-7"])
@pytest.mark.parametrize("reasoning", [None, ReasoningConfig(effort="high")])
def test_claude_4_7_and_later_get_no_temperature_or_top_p(model: str, reasoning: ReasoningConfig | None) -> None:
    """They refuse both ("`temperature` is deprecated for this model", a 400), thinking or not,
    while every OpenAI-style client sends a temperature: it is left out."""
    sent = body(model, reasoning, temperature=0.2, top_p=0.9)
    assert "temperature" not in sent and "top_p" not in sent


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-4-5", "claude-3-5-sonnet-latest"])
def test_older_claude_models_keep_temperature(model: str) -> None:
    assert body(model, None, temperature=0.2)["temperature"] == 0.2
